using System.Net.Sockets;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>An ICMP or ICMPv6 error the network sent about a datagram of this socket, with the destination the quoted datagram had.</summary>
internal readonly record struct IcmpError(byte Type, byte Code, IpAddr From, IpAddr OriginalDestination, ushort OriginalPort)
{
    /// <summary>
    /// The error a connected socket's next call reports for it, or <see cref="SocketError.Success"/>
    /// for a soft error that is only kept. As Linux's icmp_err_convert and icmpv6_err_convert
    /// (reported without IP_RECVERR only when "fatal"): port unreachable is ECONNREFUSED
    /// (RFC 1122 §4.1.3.3, RFC 4443 §3.1), protocol unreachable ENOPROTOOPT, an administrative
    /// prohibition EACCES; net and host unreachable and time exceeded are soft.
    /// </summary>
    public SocketError HardError => OriginalDestination.IsIpv4
        ? Type == (byte)IcmpType.DestinationUnreachable ? Code switch
        {
            (byte)UnreachableCode.Port => SocketError.ConnectionRefused,
            (byte)UnreachableCode.Protocol => SocketError.ProtocolOption,
            _ => SocketError.Success,
        } : SocketError.Success
        : Type == (byte)Icmpv6Type.DestinationUnreachable ? Code switch
        {
            (byte)Icmpv6UnreachableCode.Port => SocketError.ConnectionRefused,
            (byte)Icmpv6UnreachableCode.AdministrativelyProhibited or (byte)Icmpv6UnreachableCode.SourcePolicy or (byte)Icmpv6UnreachableCode.RejectRoute => SocketError.AccessDenied,
            _ => SocketError.Success,
        } : SocketError.Success;
}

/// <summary>
/// A UDP socket of one <see cref="Interface"/>, used on the stack's owner thread. Datagrams wait
/// in a bounded queue with their source; a full queue drops and counts. ICMP errors about
/// datagrams it sent are kept (the last few) in <see cref="TryTakeError"/>; a hard one about a
/// datagram to the connected peer also becomes <see cref="TakePendingError"/>, which the
/// socket's next call reports (ECONNREFUSED on Linux), for either IP version.
/// </summary>
internal sealed partial class UdpBinding
{
    private readonly Interface _stack;
    private readonly DatagramQueue _queue;
    private readonly RecentQueue<IcmpError> _errors = new(8);
    private IpAddr? _remote;
    private SocketError _pending;

    internal UdpBinding(Interface stack, ushort port, int receiveBytes, int receiveCount)
    {
        _stack = stack;
        LocalPort = port;
        _queue = new DatagramQueue(receiveBytes, receiveCount);
    }

    public ushort LocalPort { get; }
    /// <summary>Told (with <see cref="SocketEvents.Readable"/>) when a datagram is queued.</summary>
    public ISocketObserver? Observer { get; set; }
    /// <summary>The connected peer's address, IPv4 or IPv6 (an IPv4 peer is IPv4-mapped); null when not connected.</summary>
    public IpAddr? Remote => _remote;
    /// <summary>The connected peer when it is IPv4.</summary>
    public Ipv4Address? RemoteAddress => _remote is { IsIpv4: true } r ? r.Ipv4 : null;
    public ushort RemotePort { get; private set; }
    public bool IsOpen { get; internal set; } = true;
    public long ReceivedDatagrams { get; private set; }
    public long DroppedDatagrams { get; private set; }
    public int QueuedDatagrams => _queue.Count;

    /// <summary>Fixes the peer: sends go there, and only datagrams from it are accepted.</summary>
    public void Connect(Ipv4Address address, ushort port) => Connect(IpAddr.FromIpv4(address), port);

    /// <summary>Fixes an IPv6 peer (an IPv4-mapped address is the IPv4 peer).</summary>
    public void Connect(Ipv6Address address, ushort port) => Connect(IpAddr.FromIpv6(address), port);

    internal void Connect(IpAddr address, ushort port)
    {
        _remote = address;
        RemotePort = port;
        _pending = SocketError.Success;
    }

    /// <summary>Dissolves the association (connect with AF_UNSPEC): datagrams from anyone are accepted again.</summary>
    public void Disconnect()
    {
        _remote = null;
        RemotePort = 0;
        _pending = SocketError.Success;
    }

    /// <summary>Sends a datagram (fragmented above the MTU); false when the stack had to drop it (see its counters).</summary>
    public bool SendTo(ReadOnlySpan<byte> payload, Ipv4Address to, ushort port)
    {
        if (!IsOpen) throw new ObjectDisposedException(nameof(UdpBinding), "the socket is closed");
        return _stack.SendUdp(LocalPort, to, port, payload);
    }

    /// <summary>Sends a datagram to an IPv6 address (the stack needs <see cref="StackOptions.Ipv6"/>).</summary>
    public bool SendTo(ReadOnlySpan<byte> payload, Ipv6Address to, ushort port)
    {
        if (!IsOpen) throw new ObjectDisposedException(nameof(UdpBinding), "the socket is closed");
        if (to.IsIpv4Mapped) return SendTo(payload, new Ipv4Address((uint)to.Low), port);
        return _stack.SendUdp6(LocalPort, to, port, payload);
    }

    public bool Send(ReadOnlySpan<byte> payload)
    {
        if (_remote is not { } to) throw new InvalidOperationException("Send needs Connect first; use SendTo for an unconnected socket");
        return to.IsIpv4 ? SendTo(payload, to.Ipv4, RemotePort) : SendTo(payload, to.Ipv6, RemotePort);
    }

    /// <summary>Takes a datagram; an IPv6 sender shows as 0.0.0.0 here (use the <see cref="IpAddr"/> form to see it).</summary>
    public bool TryReceive(Span<byte> buffer, out int length, out Ipv4Address from, out ushort fromPort)
    {
        bool ok = _queue.TryDequeue(buffer, out length, out var a, out fromPort);
        from = a.IsIpv4 ? a.Ipv4 : Ipv4Address.Any;
        return ok;
    }

    public bool TryReceiveAny(Span<byte> buffer, out int length, out IpAddr from, out ushort fromPort) =>
        _queue.TryDequeue(buffer, out length, out from, out fromPort);

    public bool TryTakeError(out IcmpError error) => _errors.TryTake(out error);

    /// <summary>The hard error waiting for the connected socket's next call, cleared by taking it; <see cref="SocketError.Success"/> when none.</summary>
    public SocketError TakePendingError()
    {
        var e = _pending;
        _pending = SocketError.Success;
        return e;
    }

    /// <summary>True while a hard error waits (poll's POLLERR).</summary>
    public bool HasPendingError => _pending != SocketError.Success;

    public void Close() => _stack.CloseUdp(this);

    internal bool Accepts(Ipv4Address from, ushort port) => Accepts(IpAddr.FromIpv4(from), port);

    internal bool Accepts(IpAddr from, ushort port) =>
        _remote is not { } r || (r == from && RemotePort == port);

    internal bool Deliver(ReadOnlySpan<byte> payload, Ipv4Address from, ushort port) => Deliver(payload, IpAddr.FromIpv4(from), port);

    internal bool Deliver(ReadOnlySpan<byte> payload, IpAddr from, ushort port)
    {
        if (!_queue.TryEnqueue(payload, from, port)) { DroppedDatagrams++; return false; }
        ReceivedDatagrams++;
        Observer?.OnSocketEvents(this, SocketEvents.Readable);
        return true;
    }

    internal void DeliverError(in IcmpError e)
    {
        _errors.Add(e);
        // Linux (__udp4_lib_err, __udp6_lib_err): without IP_RECVERR only a connected socket hears of it, and only of a hard error about its peer.
        if (_remote == e.OriginalDestination && RemotePort == e.OriginalPort && e.HardError != SocketError.Success)
        {
            _pending = e.HardError;
            Observer?.OnSocketEvents(this, SocketEvents.Readable);
        }
    }
}
