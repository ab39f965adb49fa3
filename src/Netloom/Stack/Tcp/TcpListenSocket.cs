using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// A passive open on one port (RFC 9293 §3.10.1 LISTEN). A SYN takes a small entry in a bounded
/// SYN queue (no buffers: a half-open connection costs tens of bytes); the final ACK turns it
/// into a <see cref="TcpSocket"/> on the accept queue. When the SYN queue is full, SYNs are
/// answered with cookies (RFC 4987 §3.6) and the state comes back inside the ACK.
/// </summary>
internal sealed class TcpListenSocket
{
    /// <summary>Which IP versions a listener takes SYNs from.</summary>
    internal enum IpVersions : byte { Both, Ipv4, Ipv6 }

    private struct SynEntry
    {
        public bool Used;
        public TcpEndpoint Remote, Local;
        public SynParameters P;
        public long SentAt, DueAt;
        public byte Retries;
        public bool Owed; // the device refused its SYN-ACK: the next timer turn sends it, not counted as a retry
    }

    private static readonly ushort[] CookieMss = [536, 1024, 1220, 1300, 1400, 1440, 1460, 8960];
    private const int SynAckRetries = 5;

    private readonly TcpTable _table;
    private readonly SynEntry[] _syn;
    private readonly Queue<TcpSocket> _accept;
    private int _synCount;
    private long _lastCookieAt = long.MinValue;
    internal readonly int Index; // the table's handle
    private long _timerDue;

    internal TcpListenSocket(TcpTable table, ushort port, int backlog, int synQueue, TcpSocketOptions options, int index)
    {
        _table = table;
        Index = index;
        LocalPort = port;
        Backlog = backlog;
        Options = options;
        _syn = new SynEntry[synQueue];
        _accept = new Queue<TcpSocket>(backlog);
    }

    public ushort LocalPort { get; }
    public int Backlog { get; }
    public TcpSocketOptions Options { get; }
    public int SynQueueLength => _syn.Length;
    public bool IsOpen { get; internal set; } = true;
    public ISocketObserver? Observer { get; set; }
    /// <summary>
    /// The versions whose SYNs reach this listener (a socket API's AF_INET or IPV6_V6ONLY
    /// listener takes one); to the other the port is closed, as in Linux, unless another
    /// listener on the port takes that version.
    /// </summary>
    internal IpVersions Versions { get; init; }

    internal bool Takes(IpAddr source) => Versions switch
    {
        IpVersions.Ipv4 => source.IsIpv4,
        IpVersions.Ipv6 => !source.IsIpv4,
        _ => true,
    };
    /// <summary>Handshakes completed and waiting for <see cref="TryAccept"/>.</summary>
    public int Pending => _accept.Count;
    /// <summary>Half-open connections in the SYN queue.</summary>
    public int HalfOpen => _synCount;
    public long SynsReceived { get; private set; }
    public long SynCookiesSent { get; private set; }
    public long SynCookiesAccepted { get; private set; }
    public long Dropped { get; private set; }

    public bool TryAccept(out TcpSocket socket)
    {
        while (_accept.TryDequeue(out socket!))
            if (socket.State != TcpState.Closed || socket.Available > 0) return true; // reset while queued: skip it
        socket = null!;
        return false;
    }

    /// <summary>Stops listening: half-open entries are forgotten and unaccepted connections reset.</summary>
    public void Close()
    {
        if (!IsOpen) return;
        while (_accept.TryDequeue(out var s)) s.Abort();
        Array.Clear(_syn);
        _synCount = 0;
        _table.CloseListener(this);
    }

    private Instant Now => _table.Now;

    internal void Process(ref TcpSegmentIn seg)
    {
        var from = new TcpEndpoint(seg.Source, seg.SourcePort);
        var local = new TcpEndpoint(seg.Destination, LocalPort);
        int e = Find(from);
        if (seg.Rst)
        {
            if (e >= 0 && seg.Seq == _syn[e].P.Irs + 1) Remove(e); // RFC 9293: RST in SYN-RECEIVED from LISTEN
            return;
        }
        if (seg.HasAck)
        {
            if (!seg.Syn)
            {
                if (e >= 0 && seg.Ack == _syn[e].P.Iss + 1) { Complete(local, from, e, _syn[e].P, ref seg); return; }
                if (e < 0 && TryCookie(local, from, ref seg)) return;
            }
            _table.SendReset(in seg);
            return;
        }
        if (!seg.Syn) return;
        SynsReceived++;
        if (_accept.Count >= Backlog) { Dropped++; _table.Counters.Drop(StackDrop.TcpAcceptQueueFull); return; } // as Linux: let the peer retry
        if (e >= 0)
        {
            if (seg.Seq == _syn[e].P.Irs) { SendSynAck(ref _syn[e]); return; } // a retransmitted SYN
            Remove(e);
        }
        var p = FromSyn(local, from, seg);
        int free = FreeEntry();
        if (free < 0)
        {
            if (_table.Options.SynCookies) SendCookie(local, from, p);
            else { Dropped++; _table.Counters.Drop(StackDrop.TcpSynQueueFull); }
            return;
        }
        ref var entry = ref _syn[free];
        entry = new SynEntry { Used = true, Remote = from, Local = local, P = p };
        _synCount++;
        SendSynAck(ref entry);
        Reschedule();
    }

    private SynParameters FromSyn(TcpEndpoint local, TcpEndpoint from, in TcpSegmentIn seg)
    {
        var o = Options;
        return new SynParameters
        {
            Irs = seg.Seq,
            Iss = _table.NewIss(local, from),
            PeerMss = seg.PeerMss,
            PeerWindow = seg.Window,
            PeerWindowScale = o.WindowScaling ? seg.PeerWindowScale : (sbyte)-1,
            SackPermitted = o.SelectiveAck && seg.Header.SackPermitted,
            Timestamps = o.Timestamps && seg.HasTimestamp,
            TsRecent = seg.TsVal,
            TsOffset = _table.TimestampOffset(local, from),
            WindowOffered = (uint)Math.Min(65535, o.InitialWindowLimit),
        };
    }

    private int Find(TcpEndpoint from)
    {
        if (_synCount == 0) return -1;
        for (int i = 0; i < _syn.Length; i++)
            if (_syn[i].Used && _syn[i].Remote == from) return i;
        return -1;
    }

    private int FreeEntry()
    {
        if (_synCount == _syn.Length) return -1;
        for (int i = 0; i < _syn.Length; i++) if (!_syn[i].Used) return i;
        return -1;
    }

    private void Remove(int e)
    {
        _syn[e] = default;
        _synCount--;
    }

    private void Complete(TcpEndpoint local, TcpEndpoint from, int entry, SynParameters p, ref TcpSegmentIn ack)
    {
        if (_accept.Count >= Backlog) { Dropped++; _table.Counters.Drop(StackDrop.TcpAcceptQueueFull); return; } // the peer retransmits its ACK or data
        if (entry >= 0)
        {
            if (_syn[entry].Retries == 0 && !_syn[entry].Owed) p.HandshakeRtt = Now - new Instant(_syn[entry].SentAt);
            Remove(entry);
        }
        var socket = _table.Create(Options, local, from);
        if (socket is null) { Dropped++; return; }
        _table.Counters.TcpPassiveOpens++;
        socket.AcceptHandshake(p, ref ack);
        if (socket.State == TcpState.Closed) return;
        _accept.Enqueue(socket);
        Observer?.OnSocketEvents(this, SocketEvents.Acceptable);
    }

    private void SendSynAck(ref SynEntry e)
    {
        ref var p = ref e.P;
        if (!SendSynAck(e.Local, e.Remote, p, (uint)(Now.Nanoseconds / 1_000_000) + p.TsOffset))
        {
            e.Owed = true;                 // the device-full contract: nothing left, so nothing is timed
            e.DueAt = Now.Nanoseconds;     // due at once: the next poll's timers try again
            return;
        }
        e.Owed = false;
        e.SentAt = Now.Nanoseconds;
        e.DueAt = (Now + Duration.FromSeconds(1L << e.Retries)).Nanoseconds; // 1, 2, 4, 8, 16 s
    }

    /// <summary>A SYN-ACK with our MSS and what the SYN offered that we take (window scale, SACK, timestamps).</summary>
    private bool SendSynAck(TcpEndpoint local, TcpEndpoint remote, in SynParameters p, uint tsVal)
    {
        var h = new TcpRepr
        {
            SourcePort = local.Port, DestinationPort = remote.Port, SequenceNumber = p.Iss, AcknowledgmentNumber = p.Irs + 1,
            Flags = TcpFlags.Syn | TcpFlags.Ack, Window = (ushort)p.WindowOffered,
            MaxSegmentSize = (ushort)Math.Min(65535, _table.MaxSegmentSize(remote.Address)),
            SackPermitted = p.SackPermitted,
        };
        if (p.PeerWindowScale >= 0) h.WindowScale = Options.ReceiveWindowShift;
        if (p.Timestamps) h.Timestamp = new TcpTimestamp(tsVal, p.TsRecent);
        return _table.TrySend(new TcpSegmentOut(local.Address, remote.Address, h));
    }

    internal void OnTimer()
    {
        _timerDue = 0;
        long now = Now.Nanoseconds;
        for (int i = 0; i < _syn.Length; i++)
        {
            ref var e = ref _syn[i];
            if (!e.Used || e.DueAt > now) continue;
            if (e.Owed) { SendSynAck(ref e); continue; }
            if (e.Retries >= SynAckRetries) { Remove(i); continue; }
            e.Retries++;
            SendSynAck(ref e);
        }
        Reschedule();
    }

    private void Reschedule()
    {
        long due = 0;
        if (_synCount > 0)
            foreach (ref readonly var e in _syn.AsSpan())
                if (e.Used && (due == 0 || e.DueAt < due)) due = e.DueAt;
        if (due == _timerDue) return;
        _timerDue = due;
        _table.ScheduleListener(this, due);
    }

    // SYN cookies (RFC 4987 §3.6): the ISS is 5 bits of a 64-second counter, 3 bits for the MSS
    // and 24 bits of a keyed hash over the 4-tuple, the peer's ISN and the counter. Window scale
    // and SACK-permitted ride in the low 6 bits of our timestamp, when the peer uses timestamps.

    private static long Counter(Instant now) => now.Nanoseconds / 64_000_000_000L;

    private void SendCookie(TcpEndpoint local, TcpEndpoint from, SynParameters p)
    {
        int mssIndex = 0;
        ushort peerMss = p.PeerMss == 0 ? (ushort)536 : p.PeerMss;
        for (int i = CookieMss.Length - 1; i >= 0; i--) if (CookieMss[i] <= peerMss) { mssIndex = i; break; }
        long counter = Counter(Now);
        uint hash = _table.CookieHash(local, from, p.Irs, counter);
        p.Iss = (uint)((counter & 31) << 27) | (uint)(mssIndex << 24) | (hash & 0xFFFFFF);
        uint ts = 0;
        if (p.Timestamps)
        {
            uint bits = (uint)(p.PeerWindowScale >= 0 ? p.PeerWindowScale : 15) | (p.SackPermitted ? 16u : 0) | 32u;
            uint now = (uint)(Now.Nanoseconds / 1_000_000) + p.TsOffset;
            ts = (now & ~63u) | bits;
            if (Seq.Gt(ts, now)) ts -= 64; // never ahead of the connection's clock, or the peer's PAWS would drop us later
        }
        else
        {
            // Without timestamps there is nowhere to keep window scale and SACK: the cookie offers neither.
            p.PeerWindowScale = -1;
            p.SackPermitted = false;
        }
        if (!SendSynAck(local, from, p, ts)) return; // stateless: the peer's retransmitted SYN gets another
        SynCookiesSent++;
        _table.Counters.TcpSynCookiesSent++;
        _lastCookieAt = Now.Nanoseconds;
    }

    private bool TryCookie(TcpEndpoint local, TcpEndpoint from, ref TcpSegmentIn ack)
    {
        if (!_table.Options.SynCookies || Now.Nanoseconds - _lastCookieAt > 128_000_000_000L) return false;
        uint cookie = ack.Ack - 1, irs = ack.Seq - 1;
        long counter = Counter(Now);
        for (long c = counter; c >= counter - 1; c--)
        {
            if ((cookie >> 27) != (uint)(c & 31)) continue;
            if ((_table.CookieHash(local, from, irs, c) & 0xFFFFFF) != (cookie & 0xFFFFFF)) continue;
            var p = new SynParameters
            {
                Iss = cookie, Irs = irs, PeerMss = CookieMss[(cookie >> 24) & 7], PeerWindowScale = -1,
                TsOffset = _table.TimestampOffset(local, from),
                WindowOffered = (uint)Math.Min(65535, Options.InitialWindowLimit),
                PeerWindow = ack.Window,
            };
            if (ack.HasTimestamp && (ack.TsEcr & 32) != 0 && Options.Timestamps)
            {
                uint ws = ack.TsEcr & 15;
                p.PeerWindowScale = ws == 15 || !Options.WindowScaling ? (sbyte)-1 : (sbyte)ws;
                p.SackPermitted = (ack.TsEcr & 16) != 0 && Options.SelectiveAck;
                p.Timestamps = true;
                p.TsRecent = ack.TsVal;
            }
            SynCookiesAccepted++;
            _table.Counters.TcpSynCookiesAccepted++;
            Complete(local, from, -1, p, ref ack);
            return true;
        }
        _table.Counters.Drop(StackDrop.TcpBadCookie);
        return false;
    }
}
