using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// TCP over IPv4: the interface owns a <see cref="TcpTable"/>, hands it the segments that arrive
/// (parsed into <see cref="TcpRepr"/>, checksum checked) and, as its <see cref="ITcpOutput"/>,
/// wraps the segments TCP hands out in IPv4 and Ethernet.
/// </summary>
internal sealed partial class Interface : ITcpOutput
{
    private readonly TcpTable _tcp;
    private ILoanDevice? _loans;
    private bool _loansChecked;
    private readonly Dictionary<uint, ILoanHolder> _loanHolders = [];

    /// <summary>Segments whose frame was a loan buffer, sent with no copy (first sends and retransmissions).</summary>
    internal long LoanFramesOut { get; private set; }
    /// <summary>Segments of loan runs that took the copy path (headers of another size, a retransmission while the port still held the buffer, IPv6, ARP pending).</summary>
    internal long LoanFramesCopied { get; private set; }

    /// <summary>The device's loan buffers, if it offers them; the port's hand-backs reach the queue that holds the buffer.</summary>
    ILoanDevice? ITcpOutput.Loans
    {
        get
        {
            if (!_loansChecked)
            {
                _loansChecked = true;
                if (_device is ILoanDevice { LoanBufferSize: > 0 } d)
                {
                    _loans = d;
                    d.LoanReturned = OnLoanReturned;
                }
            }
            return _loans;
        }
    }

    /// <summary>The device's loan buffers, or null (see <see cref="ILoanDevice"/>).</summary>
    internal ILoanDevice? LoanDevice => ((ITcpOutput)this).Loans;

    private void OnLoanReturned(uint buffer)
    {
        if (_loanHolders.Remove(buffer, out var holder)) holder.LoanReturned(buffer);
    }

    /// <summary>
    /// Sends a UDP datagram whose payload sits in loan buffer <paramref name="buffer"/> after
    /// <see cref="UdpBinding.LoanHeadroom"/>, as that buffer: headers written in front, no copy.
    /// False when that cannot be done now (next hop unresolved, above the MTU, device full, no
    /// loan buffers); the caller then copies.
    /// </summary>
    internal bool TrySendUdpLoan(UdpBinding from, uint buffer, int length, Ipv4Address to, ushort port)
    {
        const int ipAt = EthernetField.HeaderLength, udpAt = ipAt + Ipv4Field.MinHeaderLength;
        int udpLength = UdpRepr.HeaderLength + length, total = udpAt + udpLength;
        if (LoanDevice is not { } loans || total > _o.Mtu + EthernetField.HeaderLength || loans.IsAtPort(buffer)) return false;
        if (NextHop(to) is not { } hop || !_neighbors.TryLookup(hop, out var mac)) return false;
        var f = loans.LoanBuffer(buffer)[..total];
        new EthernetRepr(_o.Mac, mac, EtherType.Ipv4).Emit(f);
        new Ipv4Repr(_o.Address, to, IpProtocol.Udp, udpLength, _o.Ttl) { Identification = _ipId }.Emit(f[ipAt..]);
        bool partial = PartialOut;
        if (partial)
        {
            new UdpRepr(from.LocalPort, port, length).EmitPartial(f[udpAt..], _o.Address, to);
            MarkPartial();
        }
        else new UdpRepr(from.LocalPort, port, length).Emit(f[udpAt..], _o.Address, to);
        if (!loans.TryTransmitLoan(buffer, total)) { Unmark(partial); return false; }
        _ipId++;
        _loanHolders[buffer] = from;
        LoanFramesOut++;
        Counters.UdpOut++;
        Counters.Ipv4Out++;
        Counters.FramesOut++;
        return true;
    }

    /// <summary>Connections in the table (TIME_WAIT included).</summary>
    public int TcpConnectionCount => _tcp.Count;
    internal Instant Now => _now;

    /// <summary>Tests pick initial sequence numbers (to cross the 2^32 wrap, say).</summary>
    internal Func<uint>? IssOverride { get => _tcp.IssOverride; set => _tcp.IssOverride = value; }

    /// <summary>Moves the stack's clock forward for calls made between polls (the socket layer's threads).</summary>
    public void Advance(Instant now)
    {
        if (now > _now) _now = now;
        _tcp.Now = _now;
    }

    /// <summary>Listens on <paramref name="port"/> (RFC 9293 §3.10.1 passive OPEN).</summary>
    public TcpListenSocket Listen(ushort port, int backlog = 128, TcpSocketOptions? options = null, int synQueue = 0,
        TcpListenSocket.IpVersions versions = TcpListenSocket.IpVersions.Both) =>
        _tcp.Listen(port, backlog, options ?? _o.Tcp, synQueue, versions);

    /// <summary>
    /// Opens a connection (active OPEN): the SYN goes out now, and the socket reports
    /// <see cref="SocketEvents.Connected"/> or fails with <see cref="TcpError.Refused"/> or
    /// <see cref="TcpError.TimedOut"/>. The local port is random (RFC 6056 §3.3.1) unless given.
    /// Timers start from the stack's clock: call <see cref="Poll"/> or <see cref="Advance"/> first.
    /// </summary>
    public TcpSocket Connect(Ipv4Address remote, ushort port, TcpSocketOptions? options = null, ushort localPort = 0)
    {
        if (port == 0) throw new ArgumentException("connect needs a destination port", nameof(port));
        if (remote.IsUnspecified || remote.IsBroadcast || remote.IsMulticast) throw new ArgumentException($"cannot connect to {remote}", nameof(remote));
        if (NextHop(remote) is null) throw new InvalidOperationException($"no route to {remote}: it is off {_o.Address}/{_o.PrefixLength} and there is no gateway");
        return _tcp.Connect(new TcpEndpoint(IpAddr.FromIpv4(_o.Address), localPort), new TcpEndpoint(IpAddr.FromIpv4(remote), port), options ?? _o.Tcp);
    }

    /// <summary>Hands frames queued by calls made between polls to the device.</summary>
    public void FlushOutput() => _device.Flush();

    private void ProcessTcp(Ipv4Address source, ReadOnlySpan<byte> segment, bool broadcast)
    {
        if (broadcast || source.IsBroadcast || source.IsMulticast || source.IsUnspecified) { Counters.Drop(StackDrop.NotForUs); return; } // TCP is unicast only
        if (!TcpSegment.TryParse(segment, out var tcp, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        if (!TrustedIn() && !tcp.ChecksumValid(source, _o.Address)) { Counters.Drop(StackDrop.BadChecksum); return; }
        var seg = new TcpSegmentIn(IpAddr.FromIpv4(source), IpAddr.FromIpv4(_o.Address), TcpRepr.FromSegment(tcp), tcp.Payload);
        _tcp.Process(ref seg);
    }

    private void TcpIcmpError(in IcmpMessage icmp, ReadOnlySpan<byte> quotedTransport, Ipv4Address quotedDestination)
    {
        if (quotedTransport.Length < 4 || icmp.Type != (byte)IcmpType.DestinationUnreachable) return;
        // RFC 1122 §4.2.3.9: port and protocol unreachable are hard errors, the rest soft.
        bool hard = icmp.Code is (byte)UnreachableCode.Port or (byte)UnreachableCode.Protocol;
        _tcp.Unreachable(IpAddr.FromIpv4(quotedDestination), ReadU16(quotedTransport[TcpField.DestinationPort..]), ReadU16(quotedTransport), hard);
    }

    int ITcpOutput.MaxSegmentSize(IpAddr remote) =>
        remote.IsIpv4 ? _o.Mtu - Ipv4Field.MinHeaderLength - TcpField.MinHeaderLength : MaxSegmentSize6(remote);

    void ITcpOutput.Flush() => _device.Flush();

    /// <summary>
    /// Sends one segment. With the next hop's address known it is written straight into the
    /// device's frame (headers, then the payload copied once from the send buffer); otherwise it
    /// goes through IPv4's path and waits for ARP. False when the device has no transmit buffer:
    /// TCP holds the segment back and retries after the next flush, instead of losing it.
    /// </summary>
    bool ITcpOutput.TrySend(in TcpSegmentOut s)
    {
        if (!s.Destination.IsIpv4) return TrySend6(s);
        var to = s.Destination.Ipv4;
        int hl = s.Header.HeaderLength, length = hl + s.Header.PayloadLength;
        if (NextHop(to) is not { } hop) { Counters.Drop(StackDrop.NoRoute); return true; }
        if (_neighbors.TryLookup(hop, out var mac))
        {
            const int ipAt = EthernetField.HeaderLength, tcpAt = ipAt + Ipv4Field.MinHeaderLength;
            int total = tcpAt + length;
            if (s.Header.PayloadLength > 0 && s.Payload is { LentBytes: > 0 } q && q.TryLoanRun(s.PayloadOffset, s.Header.PayloadLength, out uint loan, out int headroom))
            {
                if (headroom == tcpAt + hl && _loans is { } loans && !loans.IsAtPort(loan))
                {
                    // No copy: the loan buffer is the frame; its headroom takes the headers (again, on a retransmission).
                    var lf = loans.LoanBuffer(loan)[..total];
                    new EthernetRepr(_o.Mac, mac, EtherType.Ipv4).Emit(lf);
                    var lip = new Ipv4Repr(_o.Address, to, IpProtocol.Tcp, length, _o.Ttl) { Identification = _ipId, DontFragment = true };
                    lip.Emit(lf[ipAt..]);
                    bool partial = PartialOut;
                    if (partial)
                    {
                        s.Header.EmitPartial(lf.Slice(tcpAt, length), _o.Address, to);
                        MarkPartial();
                    }
                    else s.Header.Emit(lf.Slice(tcpAt, length), _o.Address, to);
                    if (!loans.TryTransmitLoan(loan, total)) { Counters.TcpTransmitBlocked++; Unmark(partial); return false; }
                    _ipId++;
                    _loanHolders[loan] = q;
                    LoanFramesOut++;
                    Counters.TcpOut++;
                    Counters.FramesOut++;
                    Counters.Ipv4Out++;
                    return true;
                }
                LoanFramesCopied++;
            }
            var frame = _device.TryAllocateTransmit(total);
            if (frame.IsEmpty) { Counters.TcpTransmitBlocked++; return false; }
            Counters.TcpOut++;
            new EthernetRepr(_o.Mac, mac, EtherType.Ipv4).Emit(frame);
            var ip = new Ipv4Repr(_o.Address, to, IpProtocol.Tcp, length, _o.Ttl) { Identification = _ipId++, DontFragment = true };
            ip.Emit(frame[ipAt..]);
            _markNext = PartialOut;
            WriteTcp(frame.Slice(tcpAt, length), hl, s, to, _markNext);
            Commit(total);
            Counters.Ipv4Out++;
            return true;
        }
        Counters.TcpOut++;
        var t = Transport(length).AsSpan(0, length);
        WriteTcp(t, hl, s, to, partial: false); // it may wait for ARP: a full checksum
        SendIpv4(to, IpProtocol.Tcp, t);
        return true;
    }

    /// <summary>The segment's payload, then its header with the checksum over the IPv4 pseudo-header (RFC 9293 §3.1).</summary>
    private void WriteTcp(Span<byte> segment, int headerLength, in TcpSegmentOut s, Ipv4Address to, bool partial)
    {
        s.CopyPayload(segment[headerLength..]);
        if (partial) s.Header.EmitPartial(segment, _o.Address, to);
        else s.Header.Emit(segment, _o.Address, to);
    }
}
