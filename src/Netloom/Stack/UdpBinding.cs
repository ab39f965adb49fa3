using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>An ICMP error the network sent about a datagram of this socket.</summary>
internal readonly record struct IcmpError(byte Type, byte Code, Ipv4Address From, Ipv4Address OriginalDestination, ushort OriginalPort);

/// <summary>
/// A UDP socket of one <see cref="Interface"/>, used on the stack's owner thread. Datagrams wait
/// in a bounded queue with their source; a full queue drops and counts. ICMP errors about
/// datagrams it sent are kept (the last few) in <see cref="TryTakeError"/>.
/// </summary>
internal sealed partial class UdpBinding
{
    private readonly Interface _stack;
    private readonly DatagramQueue _queue;
    private readonly RecentQueue<IcmpError> _errors = new(8);

    internal UdpBinding(Interface stack, ushort port, int receiveBytes, int receiveCount)
    {
        _stack = stack;
        LocalPort = port;
        _queue = new DatagramQueue(receiveBytes, receiveCount);
    }

    public ushort LocalPort { get; }
    /// <summary>Told (with <see cref="SocketEvents.Readable"/>) when a datagram is queued.</summary>
    public ISocketObserver? Observer { get; set; }
    public Ipv4Address? RemoteAddress { get; private set; }
    public ushort RemotePort { get; private set; }
    public bool IsOpen { get; internal set; } = true;
    public long ReceivedDatagrams { get; private set; }
    public long DroppedDatagrams { get; private set; }
    public int QueuedDatagrams => _queue.Count;

    /// <summary>Fixes the peer: sends go there, and only datagrams from it are accepted.</summary>
    public void Connect(Ipv4Address address, ushort port)
    {
        RemoteAddress = address;
        RemotePort = port;
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
        if (RemoteAddress is not { } to) throw new InvalidOperationException("Send needs Connect first; use SendTo for an unconnected socket");
        return SendTo(payload, to, RemotePort);
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

    public void Close() => _stack.CloseUdp(this);

    internal bool Accepts(Ipv4Address from, ushort port) => Accepts(IpAddr.FromIpv4(from), port);

    internal bool Accepts(IpAddr from, ushort port) =>
        RemoteAddress is not { } r || (IpAddr.FromIpv4(r) == from && RemotePort == port);

    internal bool Deliver(ReadOnlySpan<byte> payload, Ipv4Address from, ushort port) => Deliver(payload, IpAddr.FromIpv4(from), port);

    internal bool Deliver(ReadOnlySpan<byte> payload, IpAddr from, ushort port)
    {
        if (!_queue.TryEnqueue(payload, from, port)) { DroppedDatagrams++; return false; }
        ReceivedDatagrams++;
        Observer?.OnSocketEvents(this, SocketEvents.Readable);
        return true;
    }

    internal void DeliverError(in IcmpError e) => _errors.Add(e);
}
