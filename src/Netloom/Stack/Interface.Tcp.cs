using System.Buffers.Binary;
using System.Security.Cryptography;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

internal sealed partial class Interface
{
    private const byte TimerTcp = 3, TimerListener = 4;

    private readonly record struct TcpKey(uint Remote, ushort RemotePort, ushort LocalPort);

    private readonly Dictionary<TcpKey, TcpSocket> _tcp;
    private readonly TcpSocket?[] _tcpSlots;
    private readonly int[] _tcpTimers;
    private readonly Stack<int> _freeTcpSlots;
    private readonly TcpListenSocket?[] _listeners;
    private readonly int[] _listenerTimers;
    private readonly ulong _secret0, _secret1; // per-stack key for ISNs, SYN cookies and timestamp offsets
    private double _challengeTokens;
    private long _challengeRefilled;

    /// <summary>Connections in the table (TIME_WAIT included).</summary>
    public int TcpConnectionCount => _tcp.Count;
    internal Instant Now => _now;

    /// <summary>Moves the stack's clock forward for calls made between polls (the socket layer's threads).</summary>
    public void Advance(Instant now)
    {
        if (now > _now) _now = now;
    }

    /// <summary>Listens on <paramref name="port"/> (RFC 9293 §3.10.1 passive OPEN).</summary>
    public TcpListenSocket Listen(ushort port, int backlog = 128, TcpSocketOptions? options = null, int synQueue = 0)
    {
        if (port == 0) throw new ArgumentException("listen needs a port", nameof(port));
        if (backlog < 1) throw new ArgumentOutOfRangeException(nameof(backlog), backlog, "backlog must be at least 1");
        if (FindListener(port) is not null) throw new InvalidOperationException($"TCP port {port} is already listening");
        int free = Array.IndexOf(_listeners, null);
        if (free < 0) throw new InvalidOperationException($"all {_listeners.Length} TCP listeners are in use; raise StackOptions.TcpListeners");
        options ??= _o.Tcp;
        options.Validate();
        var l = new TcpListenSocket(this, port, backlog, synQueue > 0 ? synQueue : Math.Max(backlog, 128), options) { Index = free };
        l.Timer = _listenerTimers[free];
        _listeners[free] = l;
        return l;
    }

    internal void CloseListener(TcpListenSocket l)
    {
        if (l.Index >= 0 && _listeners[l.Index] == l)
        {
            _timers.Cancel(l.Timer);
            _listeners[l.Index] = null;
        }
        l.IsOpen = false;
    }

    private TcpListenSocket? FindListener(ushort port)
    {
        foreach (var l in _listeners) if (l is not null && l.LocalPort == port) return l;
        return null;
    }

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
        options ??= _o.Tcp;
        options.Validate();
        if (localPort == 0)
        {
            int range = 65536 - EphemeralFirst, start = _random.Next(range);
            for (int i = 0; i < range && localPort == 0; i++)
            {
                ushort candidate = (ushort)(EphemeralFirst + (start + i) % range);
                if (!_tcp.ContainsKey(new TcpKey(remote.Value, port, candidate)) && FindListener(candidate) is null) localPort = candidate;
            }
            if (localPort == 0) throw new InvalidOperationException($"no ephemeral port is free towards {remote}:{port}");
        }
        else if (_tcp.TryGetValue(new TcpKey(remote.Value, port, localPort), out var existing))
        {
            if (existing.State != TcpState.TimeWait) throw new InvalidOperationException($"{_o.Address}:{localPort} -> {remote}:{port} is in use");
            existing.EndTimeWait(); // reuse: our new ISS is ahead of the old connection's
        }
        var s = CreateTcp(options, localPort, remote, port)
            ?? throw new InvalidOperationException($"all {_tcpSlots.Length} TCP connections are in use; raise StackOptions.TcpConnections");
        Counters.TcpActiveOpens++;
        s.Connect(NewIss(localPort, remote, port));
        _device.Flush();
        return s;
    }

    internal TcpSocket? CreateTcp(TcpSocketOptions options, ushort localPort, Ipv4Address remote, ushort remotePort)
    {
        if (!_freeTcpSlots.TryPop(out int slot)) { Counters.Drop(StackDrop.TcpTableFull); return null; }
        var s = new TcpSocket(this, options, localPort, remote, remotePort) { Slot = slot, Timer = _tcpTimers[slot] };
        _tcpSlots[slot] = s;
        _tcp[new TcpKey(remote.Value, remotePort, localPort)] = s;
        return s;
    }

    internal void ReleaseTcp(TcpSocket s)
    {
        if (s.Slot < 0) return;
        _timers.Cancel(s.Timer);
        _tcp.Remove(new TcpKey(s.RemoteAddress.Value, s.RemotePort, s.LocalPort));
        _tcpSlots[s.Slot] = null;
        _freeTcpSlots.Push(s.Slot);
        s.Slot = -1;
    }

    internal void ScheduleTcpTimer(TcpSocket s, long due)
    {
        if (s.Slot < 0) return;
        if (due == 0) _timers.Cancel(s.Timer);
        else _timers.Schedule(s.Timer, new Instant(due));
    }

    internal void ScheduleListenerTimer(TcpListenSocket l, long due)
    {
        if (!l.IsOpen) return;
        if (due == 0) _timers.Cancel(l.Timer);
        else _timers.Schedule(l.Timer, new Instant(due));
    }

    private void TcpTimer(int slot) => _tcpSlots[slot]?.OnTimer();

    private void ListenerTimer(int index) => _listeners[index]?.OnTimer();

    internal void FlushTcp() => _device.Flush();

    /// <summary>Hands frames queued by calls made between polls to the device.</summary>
    public void FlushOutput() => _device.Flush();

    /// <summary>RFC 5961 §7: challenge ACKs are rate-limited across the stack.</summary>
    internal bool TakeChallengeAckToken()
    {
        double elapsed = (_now.Nanoseconds - _challengeRefilled) / 1e9;
        _challengeRefilled = _now.Nanoseconds;
        _challengeTokens = Math.Min(_o.ChallengeAcksPerSecond, _challengeTokens + elapsed * _o.ChallengeAcksPerSecond);
        if (_challengeTokens < 1) return false;
        _challengeTokens -= 1;
        return true;
    }

    /// <summary>RFC 6528: ISN = M + F(4-tuple, secret), M a 4 µs clock and F a keyed hash.</summary>
    internal uint NewIss(ushort localPort, Ipv4Address remote, ushort remotePort) =>
        IssOverride?.Invoke() ?? (uint)(_now.Nanoseconds / 4000) + (uint)TupleHash(localPort, remote, remotePort, 0, 0);

    /// <summary>Tests pick initial sequence numbers (to cross the 2^32 wrap, say).</summary>
    internal Func<uint>? IssOverride;

    internal uint TimestampOffset(ushort localPort, Ipv4Address remote, ushort remotePort) =>
        (uint)(TupleHash(localPort, remote, remotePort, 1, 0) >> 32);

    internal uint CookieHash(ushort localPort, Ipv4Address remote, ushort remotePort, uint irs, long counter) =>
        (uint)TupleHash(localPort, remote, remotePort, irs, counter);

    private ulong TupleHash(ushort localPort, Ipv4Address remote, ushort remotePort, uint extra, long counter)
    {
        Span<byte> b = stackalloc byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(b, _o.Address.Value);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], remote.Value);
        BinaryPrimitives.WriteUInt16LittleEndian(b[8..], localPort);
        BinaryPrimitives.WriteUInt16LittleEndian(b[10..], remotePort);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], extra);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], counter);
        return SipHash.Hash(_secret0, _secret1, b);
    }

    private static (ulong, ulong) NewSecret(int seed)
    {
        if (seed != 0) { var r = new Random(seed * 7919); return ((ulong)r.NextInt64(), (ulong)r.NextInt64()); }
        Span<byte> key = stackalloc byte[16];
        RandomNumberGenerator.Fill(key);
        return (BinaryPrimitives.ReadUInt64LittleEndian(key), BinaryPrimitives.ReadUInt64LittleEndian(key[8..]));
    }

    private void ProcessTcp(ReadOnlySpan<byte> header, Ipv4Address source, ReadOnlySpan<byte> segment, bool broadcast)
    {
        if (broadcast || source.IsBroadcast || source.IsMulticast || source.IsUnspecified) { Counters.Drop(StackDrop.NotForUs); return; } // TCP is unicast only
        if (!TcpSegment.TryParse(segment, out var tcp, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        if (!tcp.ChecksumValid(source, _o.Address)) { Counters.Drop(StackDrop.BadChecksum); return; }
        if (!TcpInput.TryRead(tcp, out var seg)) { Counters.Drop(StackDrop.Malformed); return; }
        Counters.TcpIn++;
        if (_tcp.TryGetValue(new TcpKey(source.Value, seg.SourcePort, seg.DestinationPort), out var s))
        {
            if (!(s.State == TcpState.TimeWait && seg.Syn && !seg.Ack_ && !seg.Rst && s.TimeWaitAcceptsSyn(seg)))
            {
                s.Process(ref seg);
                return;
            }
            s.EndTimeWait(); // RFC 6191: a SYN beyond the old connection may reopen the 4-tuple
        }
        if (FindListener(seg.DestinationPort) is { } listener)
        {
            listener.Process(source, ref seg);
            return;
        }
        Counters.Drop(StackDrop.ClosedPort);
        SendReset(source, seg);
    }

    /// <summary>The RST for a segment that belongs to no connection (RFC 9293 §3.10.7.1).</summary>
    internal void SendReset(Ipv4Address to, in TcpInput seg)
    {
        if (seg.Rst) return;
        if (seg.Ack_) SendTcpRaw(to, seg.DestinationPort, seg.SourcePort, seg.Ack, 0, TcpFlags.Rst, 0, TcpOutOptions.None, null, 0, 0);
        else SendTcpRaw(to, seg.DestinationPort, seg.SourcePort, 0, seg.Seq + seg.Length, TcpFlags.Rst | TcpFlags.Ack, 0, TcpOutOptions.None, null, 0, 0);
        Counters.TcpResetsOut++;
    }

    private void TcpIcmpError(in IcmpMessage icmp, ReadOnlySpan<byte> quotedTransport, Ipv4Address quotedDestination)
    {
        if (quotedTransport.Length < 4 || icmp.Type != (byte)IcmpType.DestinationUnreachable) return;
        var key = new TcpKey(quotedDestination.Value, ReadU16(quotedTransport[2..]), ReadU16(quotedTransport));
        if (_tcp.TryGetValue(key, out var s)) s.IcmpUnreachable(icmp.Code);
    }

    internal bool SendTcp(TcpSocket s, uint seq, uint ack, TcpFlags flags, ushort window, in TcpOutOptions o, int dataOffset, int length) =>
        SendTcpRaw(s.RemoteAddress, s.LocalPort, s.RemotePort, seq, ack, flags, window, o, length > 0 ? s.SendRing : null, dataOffset, length);

    /// <summary>
    /// Builds one segment. With the next hop's address known it is written straight into the
    /// device's frame (headers, then the payload copied once from the send buffer); otherwise it
    /// goes through IPv4's path and waits for ARP. False when the device has no transmit buffer:
    /// the connection holds the segment back and retries after the next flush, instead of losing it.
    /// </summary>
    internal bool SendTcpRaw(Ipv4Address to, ushort sourcePort, ushort destinationPort, uint seq, uint ack, TcpFlags flags,
        ushort window, in TcpOutOptions o, ByteRing? data, int dataOffset, int length)
    {
        int hl = 20 + o.Length;
        if (NextHop(to) is not { } hop) { Counters.Drop(StackDrop.NoRoute); return true; }
        if (_neighbors.TryLookup(hop, out var mac))
        {
            int total = 14 + 20 + hl + length;
            var frame = _device.TryAllocateTransmit(total);
            if (frame.IsEmpty) { Counters.TcpTransmitBlocked++; return false; }
            Counters.TcpOut++;
            new EthernetRepr(_o.Mac, mac, EtherType.Ipv4).Emit(frame);
            var ip = new Ipv4Repr(_o.Address, to, IpProtocol.Tcp, hl + length, _o.Ttl) { Identification = _ipId++, DontFragment = true };
            ip.Emit(frame[14..]);
            var segment = frame.Slice(34, hl + length);
            WriteTcp(segment, hl, sourcePort, destinationPort, seq, ack, flags, window, o, data, dataOffset, length, to);
            Commit(total);
            Counters.Ipv4Out++;
            return true;
        }
        Counters.TcpOut++;
        var t = Transport(hl + length).AsSpan(0, hl + length);
        WriteTcp(t, hl, sourcePort, destinationPort, seq, ack, flags, window, o, data, dataOffset, length, to);
        SendIpv4(to, IpProtocol.Tcp, t);
        return true;
    }

    private List<TcpSocket> _txBlocked = [], _txRetrying = [];

    /// <summary>A connection could not get a transmit buffer: it goes again after the next flush.</summary>
    internal void BlockedOnDevice(TcpSocket s)
    {
        if (s.TxBlocked) return;
        s.TxBlocked = true;
        _txBlocked.Add(s);
    }

    private void RetryBlockedTcp()
    {
        (_txBlocked, _txRetrying) = (_txRetrying, _txBlocked);
        foreach (var s in _txRetrying)
        {
            s.TxBlocked = false;
            if (s.Slot >= 0) s.AfterEvent();
        }
        _txRetrying.Clear();
    }

    private void WriteTcp(Span<byte> segment, int hl, ushort sourcePort, ushort destinationPort, uint seq, uint ack, TcpFlags flags,
        ushort window, in TcpOutOptions o, ByteRing? data, int dataOffset, int length, Ipv4Address to)
    {
        var w = new TcpWriter(segment)
        {
            SourcePort = sourcePort, DestinationPort = destinationPort, SequenceNumber = seq, AcknowledgmentNumber = ack,
            Window = window, UrgentPointer = 0,
        };
        w.SetHeaderLengthAndFlags(hl, flags);
        o.Write(segment[20..hl]);
        if (length > 0) data!.Peek(dataOffset, segment.Slice(hl, length));
        w.FillChecksum(_o.Address, to);
    }
}
