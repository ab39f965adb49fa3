using System.Buffers.Binary;
using System.Security.Cryptography;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// Everything TCP's connections and listeners share, between the IP layer and the sockets:
/// demultiplexing (4-tuple to connection, port to listener), the fixed slots and their wheel
/// timers, the keys for ISNs, SYN cookies and timestamp offsets, the challenge-ACK budget
/// (RFC 5961 §7), and the retries of sockets the device refused. The IP layer hands it parsed
/// segments (<see cref="Process"/>) and its clock; sockets hand segments out through it to an
/// <see cref="ITcpOutput"/>. It knows no IP version: addresses are opaque <see cref="IpAddr"/>s.
/// </summary>
internal sealed class TcpTable
{
    /// <summary>The timer kinds it creates on the owner's wheel (the owner hands them back to <see cref="OnTimer"/>).</summary>
    public const byte TimerConnection = 3, TimerListener = 4;
    public const ushort EphemeralFirst = 49152; // RFC 6335 §6: the dynamic port range

    private readonly record struct Key(IpAddr Remote, ushort RemotePort, ushort LocalPort);

    private readonly StackOptions _o;
    private readonly ITcpOutput _output;
    private readonly TimerWheel _timers;
    private readonly Random _random;
    private readonly Dictionary<Key, TcpSocket> _connections;
    private readonly TcpSocket?[] _slots;
    private readonly int[] _slotTimers;
    private readonly bool[] _slotBlocked;
    private readonly Stack<int> _free;
    private readonly TcpListenSocket?[] _listeners;
    private readonly int[] _listenerTimers;
    private readonly ulong _secret0, _secret1; // per-stack key for ISNs, SYN cookies and timestamp offsets
    private double _challengeTokens;
    private long _challengeRefilled;
    private List<TcpSocket> _blocked = [], _retrying = [];

    public TcpTable(StackOptions options, ITcpOutput output, StackCounters counters, TimerWheel timers, Random random, int seed)
    {
        _o = options;
        _output = output;
        Counters = counters;
        _timers = timers;
        _random = random;
        _connections = new Dictionary<Key, TcpSocket>(Math.Min(options.TcpConnections, 4096));
        _slots = new TcpSocket?[options.TcpConnections];
        _slotTimers = new int[options.TcpConnections];
        _slotBlocked = new bool[options.TcpConnections];
        _free = new Stack<int>(options.TcpConnections);
        for (int i = options.TcpConnections - 1; i >= 0; i--) { _slotTimers[i] = timers.Create(TimerConnection, i); _free.Push(i); }
        _listeners = new TcpListenSocket?[options.TcpListeners];
        _listenerTimers = new int[options.TcpListeners];
        for (int i = 0; i < options.TcpListeners; i++) _listenerTimers[i] = timers.Create(TimerListener, i);
        (_secret0, _secret1) = NewSecret(seed);
        _challengeTokens = options.ChallengeAcksPerSecond;
    }

    public StackOptions Options => _o;
    public StackCounters Counters { get; }
    /// <summary>The owner's clock (set by the owner before every entry point): every event runs at this time.</summary>
    public Instant Now { get; set; }
    /// <summary>Connections in the table (TIME_WAIT included).</summary>
    public int Count => _connections.Count;
    /// <summary>Tests pick initial sequence numbers (to cross the 2^32 wrap, say).</summary>
    public Func<uint>? IssOverride;

    /// <summary>The owner's first poll: the challenge-ACK budget starts full at <paramref name="now"/>.</summary>
    public void Start(Instant now) => _challengeRefilled = now.Nanoseconds;

    // ---- the segment path ----

    /// <summary>
    /// A received segment, checksum already verified by the IP layer: to its connection, else to
    /// the listener on its port, else answered with a RST (RFC 9293 §3.10.7.1).
    /// </summary>
    public void Process(ref TcpSegmentIn seg)
    {
        Counters.TcpIn++;
        if (_connections.TryGetValue(new Key(seg.Source, seg.SourcePort, seg.DestinationPort), out var s))
        {
            if (!(s.State == TcpState.TimeWait && seg.Syn && !seg.HasAck && !seg.Rst && s.TimeWaitAcceptsSyn(seg)))
            {
                s.Process(ref seg);
                return;
            }
            s.EndTimeWait(); // RFC 6191: a SYN beyond the old connection may reopen the 4-tuple
        }
        if (FindListener(seg.DestinationPort, seg.Source) is { } listener)
        {
            listener.Process(ref seg);
            return;
        }
        Counters.Drop(StackDrop.ClosedPort);
        SendReset(seg);
    }

    /// <summary>The RST for a segment that belongs to no connection (RFC 9293 §3.10.7.1). Counted only if it left.</summary>
    public void SendReset(in TcpSegmentIn seg)
    {
        if (seg.Rst) return;
        var h = new TcpRepr { SourcePort = seg.DestinationPort, DestinationPort = seg.SourcePort };
        if (seg.HasAck) { h.SequenceNumber = seg.Ack; h.Flags = TcpFlags.Rst; }
        else { h.AcknowledgmentNumber = seg.Seq + seg.Length; h.Flags = TcpFlags.Rst | TcpFlags.Ack; }
        if (_output.TrySend(new TcpSegmentOut(seg.Destination, seg.Source, h))) Counters.TcpResetsOut++;
    }

    /// <summary>The IP layer learned that <paramref name="remote"/> cannot be reached (ICMP); <paramref name="hard"/> for port or protocol unreachable.</summary>
    public void Unreachable(IpAddr remote, ushort remotePort, ushort localPort, bool hard)
    {
        if (_connections.TryGetValue(new Key(remote, remotePort, localPort), out var s)) s.Unreachable(hard);
    }

    /// <summary>
    /// The path MTU to <paramref name="remote"/> went down (a Packet Too Big): every connection to
    /// it takes the smaller effective send MSS now (RFC 9293 §3.7.2, RFC 8201 §5.4), so no
    /// segment it sends needs fragmenting; new connections get it from <see cref="MaxSegmentSize"/>.
    /// </summary>
    public void PathMtuLowered(IpAddr remote)
    {
        int mss = _output.MaxSegmentSize(remote);
        foreach (var s in _slots)
            if (s is not null && s.Remote.Address == remote) s.PathMssLowered(mss);
    }

    /// <summary>Hands one segment to the layer below; false when the device is full (see <see cref="ITcpOutput.TrySend"/>).</summary>
    public bool TrySend(in TcpSegmentOut segment) => _output.TrySend(segment);

    public int MaxSegmentSize(IpAddr remote) => _output.MaxSegmentSize(remote);

    /// <summary>The device's loan buffers, when it has them (<see cref="ILoanDevice"/>).</summary>
    public ILoanDevice? Loans => _output.Loans;

    public void Flush() => _output.Flush();

    // ---- the device-full contract ----

    /// <summary>
    /// The device refused one of <paramref name="s"/>'s segments: it gets another turn once the
    /// owner has flushed (<see cref="RetryBlocked"/>), and sends again whatever is still owed.
    /// </summary>
    public void RetryAfterFlush(TcpSocket s)
    {
        if (!IsLive(s) || _slotBlocked[s.Slot]) return;
        _slotBlocked[s.Slot] = true;
        _blocked.Add(s);
    }

    /// <summary>Sockets wait for a turn after the device refused them: the owner polls again at once.</summary>
    public bool HasBlocked => _blocked.Count > 0;

    /// <summary>Gives every refused socket its turn (call after flushing the device).</summary>
    public void RetryBlocked()
    {
        (_blocked, _retrying) = (_retrying, _blocked);
        foreach (var s in _retrying)
        {
            if (!IsLive(s)) continue;
            _slotBlocked[s.Slot] = false;
            s.RetryAfterFlush();
        }
        _retrying.Clear();
    }

    // ---- connections ----

    /// <summary>
    /// Opens a connection from <paramref name="local"/> (port 0: a random ephemeral one, RFC 6056
    /// §3.3.1) to <paramref name="remote"/>: the SYN goes out now.
    /// </summary>
    public TcpSocket Connect(TcpEndpoint local, TcpEndpoint remote, TcpSocketOptions options)
    {
        options.Validate();
        ushort localPort = local.Port;
        if (localPort == 0)
        {
            int range = 65536 - EphemeralFirst, start = _random.Next(range);
            for (int i = 0; i < range && localPort == 0; i++)
            {
                ushort candidate = (ushort)(EphemeralFirst + (start + i) % range);
                if (!_connections.ContainsKey(new Key(remote.Address, remote.Port, candidate)) && FindListener(candidate) is null) localPort = candidate;
            }
            if (localPort == 0) throw new InvalidOperationException($"no ephemeral port is free towards {remote}");
        }
        else if (_connections.TryGetValue(new Key(remote.Address, remote.Port, localPort), out var existing))
        {
            if (existing.State != TcpState.TimeWait) throw new InvalidOperationException($"{local} -> {remote} is in use");
            existing.EndTimeWait(); // reuse: our new ISS is ahead of the old connection's
        }
        local = local with { Port = localPort };
        var s = Create(options, local, remote)
            ?? throw new InvalidOperationException($"all {_slots.Length} TCP connections are in use; raise StackOptions.TcpConnections");
        Counters.TcpActiveOpens++;
        s.Connect(NewIss(local, remote));
        Flush();
        return s;
    }

    /// <summary>A connection in a free slot, entered in the demultiplexer; null (counted) when the table is full.</summary>
    public TcpSocket? Create(TcpSocketOptions options, TcpEndpoint local, TcpEndpoint remote)
    {
        if (!_free.TryPop(out int slot)) { Counters.Drop(StackDrop.TcpTableFull); return null; }
        var s = new TcpSocket(this, options, local, remote, slot);
        _slots[slot] = s;
        _connections[new Key(remote.Address, remote.Port, local.Port)] = s;
        return s;
    }

    private bool IsLive(TcpSocket s) => (uint)s.Slot < (uint)_slots.Length && _slots[s.Slot] == s;

    /// <summary>The connection reached CLOSED: its timer stops, its 4-tuple and slot are free.</summary>
    public void Release(TcpSocket s)
    {
        if (!IsLive(s)) return;
        _timers.Cancel(_slotTimers[s.Slot]);
        _connections.Remove(new Key(s.Remote.Address, s.Remote.Port, s.Local.Port));
        if (_slotBlocked[s.Slot]) { _slotBlocked[s.Slot] = false; _blocked.Remove(s); }
        _slots[s.Slot] = null;
        _free.Push(s.Slot);
    }

    /// <summary>Points the connection's wheel timer at <paramref name="due"/> (nanoseconds; 0 cancels).</summary>
    public void Schedule(TcpSocket s, long due)
    {
        if (!IsLive(s)) return;
        if (due == 0) _timers.Cancel(_slotTimers[s.Slot]);
        else _timers.Schedule(_slotTimers[s.Slot], new Instant(due));
    }

    /// <summary>A wheel timer this table created expired.</summary>
    public void OnTimer(byte kind, int owner)
    {
        if (kind == TimerConnection) _slots[owner]?.OnTimer();
        else if (kind == TimerListener) _listeners[owner]?.OnTimer();
    }

    // ---- listeners ----

    /// <summary>Listens on <paramref name="port"/> (RFC 9293 §3.10.1 passive OPEN).</summary>
    /// <summary>
    /// A listener on <paramref name="port"/> for SYNs of <paramref name="versions"/>: a port may hold
    /// one listener per IP version (an IPv4 one and an IPv6-only one, as Linux lets AF_INET and
    /// IPV6_V6ONLY sockets share a port), or one for both.
    /// </summary>
    public TcpListenSocket Listen(ushort port, int backlog, TcpSocketOptions options, int synQueue,
        TcpListenSocket.IpVersions versions = TcpListenSocket.IpVersions.Both)
    {
        if (port == 0) throw new ArgumentException("listen needs a port", nameof(port));
        if (backlog < 1) throw new ArgumentOutOfRangeException(nameof(backlog), backlog, "backlog must be at least 1");
        foreach (var other in _listeners)
            if (other is not null && other.LocalPort == port && (other.Versions == versions || other.Versions == TcpListenSocket.IpVersions.Both || versions == TcpListenSocket.IpVersions.Both))
                throw new InvalidOperationException($"TCP port {port} is already listening");
        int free = Array.IndexOf(_listeners, null);
        if (free < 0) throw new InvalidOperationException($"all {_listeners.Length} TCP listeners are in use; raise StackOptions.TcpListeners");
        options.Validate();
        var l = new TcpListenSocket(this, port, backlog, synQueue > 0 ? synQueue : Math.Max(backlog, 128), options, free) { Versions = versions };
        _listeners[free] = l;
        return l;
    }

    public void CloseListener(TcpListenSocket l)
    {
        if (l.Index >= 0 && _listeners[l.Index] == l)
        {
            _timers.Cancel(_listenerTimers[l.Index]);
            _listeners[l.Index] = null;
        }
        l.IsOpen = false;
    }

    public TcpListenSocket? FindListener(ushort port)
    {
        foreach (var l in _listeners) if (l is not null && l.LocalPort == port) return l;
        return null;
    }

    /// <summary>The listener on <paramref name="port"/> that takes SYNs from <paramref name="source"/>'s IP version.</summary>
    public TcpListenSocket? FindListener(ushort port, IpAddr source)
    {
        foreach (var l in _listeners) if (l is not null && l.LocalPort == port && l.Takes(source)) return l;
        return null;
    }

    public void ScheduleListener(TcpListenSocket l, long due)
    {
        if (!l.IsOpen) return;
        if (due == 0) _timers.Cancel(_listenerTimers[l.Index]);
        else _timers.Schedule(_listenerTimers[l.Index], new Instant(due));
    }

    // ---- shared budgets and keys ----

    /// <summary>RFC 5961 §7: challenge ACKs are rate-limited across the stack.</summary>
    public bool TakeChallengeAckToken()
    {
        double elapsed = (Now.Nanoseconds - _challengeRefilled) / 1e9;
        _challengeRefilled = Now.Nanoseconds;
        _challengeTokens = Math.Min(_o.ChallengeAcksPerSecond, _challengeTokens + elapsed * _o.ChallengeAcksPerSecond);
        if (_challengeTokens < 1) return false;
        _challengeTokens -= 1;
        return true;
    }

    /// <summary>RFC 6528: ISN = M + F(4-tuple, secret), M a 4 µs clock and F a keyed hash.</summary>
    public uint NewIss(TcpEndpoint local, TcpEndpoint remote) =>
        IssOverride?.Invoke() ?? (uint)(Now.Nanoseconds / 4000) + (uint)TupleHash(local, remote, 0, 0);

    public uint TimestampOffset(TcpEndpoint local, TcpEndpoint remote) => (uint)(TupleHash(local, remote, 1, 0) >> 32);

    public uint CookieHash(TcpEndpoint local, TcpEndpoint remote, uint irs, long counter) => (uint)TupleHash(local, remote, irs, counter);

    private ulong TupleHash(TcpEndpoint local, TcpEndpoint remote, uint extra, long counter)
    {
        // IPv4 pairs hash the 4-byte addresses (the layout ISNs have always had); others the 16-byte values.
        bool v4 = local.Address.IsIpv4 && remote.Address.IsIpv4;
        int a = v4 ? 4 : 16;
        Span<byte> b = stackalloc byte[2 * 16 + 16];
        if (v4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)local.Address.Bits);
            BinaryPrimitives.WriteUInt32LittleEndian(b[4..], (uint)remote.Address.Bits);
        }
        else
        {
            BinaryPrimitives.WriteUInt128LittleEndian(b, local.Address.Bits);
            BinaryPrimitives.WriteUInt128LittleEndian(b[16..], remote.Address.Bits);
        }
        var rest = b[(2 * a)..];
        BinaryPrimitives.WriteUInt16LittleEndian(rest, local.Port);
        BinaryPrimitives.WriteUInt16LittleEndian(rest[2..], remote.Port);
        BinaryPrimitives.WriteUInt32LittleEndian(rest[4..], extra);
        BinaryPrimitives.WriteInt64LittleEndian(rest[8..], counter);
        return SipHash.Hash(_secret0, _secret1, b[..(2 * a + 16)]);
    }

    private static (ulong, ulong) NewSecret(int seed)
    {
        if (seed != 0) { var r = new Random(seed * 7919); return ((ulong)r.NextInt64(), (ulong)r.NextInt64()); }
        Span<byte> key = stackalloc byte[16];
        RandomNumberGenerator.Fill(key);
        return (BinaryPrimitives.ReadUInt64LittleEndian(key), BinaryPrimitives.ReadUInt64LittleEndian(key[8..]));
    }
}
