using Netloom.Wire;

namespace Netloom.Stack;

internal sealed partial class TcpSocket
{
    /// <summary>Active open (RFC 9293 §3.10.1): send a SYN and enter SYN-SENT.</summary>
    internal void Connect(uint iss)
    {
        Iss = iss;
        SndUna = iss;
        SndNxt = SndMax = iss + 1;
        _sndBufSeq = _sndSml = iss + 1;
        _tsOffset = iss ^ 0x5bd1e995; // per-connection timestamp offset (RFC 7323 §7.1)
        State = TcpState.SynSent;
        _unackedSince = Now.Nanoseconds;
        SendSyn(ack: false);
        StartRttTiming(iss);
        ArmRto();
        Reschedule();
    }

    /// <summary>
    /// Passive open completing: the listener's SYN-RECEIVED entry (or a valid SYN cookie) met the
    /// handshake's final ACK. Takes the negotiated options, then processes that ACK.
    /// </summary>
    internal void AcceptHandshake(in SynParameters p, ref TcpSegmentIn ack)
    {
        Iss = p.Iss;
        Irs = p.Irs;
        SndUna = p.Iss;
        SndNxt = SndMax = p.Iss + 1;
        _sndBufSeq = _sndSml = p.Iss + 1;
        RcvNxt = p.Irs + 1;
        _tsOffset = p.TsOffset;
        NegotiateOptions(p.PeerMss, p.PeerWindowScale, p.SackPermitted, p.Timestamps);
        if (_tsOk) { _tsRecent = p.TsRecent; _tsRecentAge = Now.Nanoseconds; }
        _rcvAdvEdge = RcvNxt + p.WindowOffered;
        _lastAckSent = RcvNxt;
        SndWnd = p.PeerWindow; // from the SYN: never scaled
        SndWl1 = p.Irs;
        SndWl2 = p.Iss;
        State = TcpState.SynReceived;
        if (p.HandshakeRtt.Nanoseconds > 0) _rtt.Sample(p.HandshakeRtt);
        Process(ref ack);
    }

    /// <summary>Options both sides offered are in force (RFC 7323 §2.2, §3.2; RFC 2018 §2).</summary>
    /// <summary>
    /// RFC 9293 §3.7.2: the effective send MSS is the smaller of the peer's MSS and what the path
    /// MTU leaves. When a Packet Too Big lowers it mid-connection, the segments in flight above
    /// the new size were dropped by the router that sent it: send them again now, cut to the new
    /// size (go back to SND.UNA as after a timeout, but with the congestion window kept, since this
    /// is no congestion signal; Linux's tcp_simple_retransmit does the same).
    /// </summary>
    internal void PathMssLowered(int pathMaxSegmentSize)
    {
        if (State is TcpState.Closed or TcpState.Listen or TcpState.SynSent or TcpState.SynReceived or TcpState.TimeWait) return;
        int mss = Math.Max(64, Math.Min(_peerMss, pathMaxSegmentSize) - (_tsOk ? 12 : 0));
        if (mss >= _mss) return;
        _mss = mss;
        _cc.Mss = mss;
        if (Seq.Lt(SndUna, SndNxt))
        {
            SndNxt = SndUna;
            _rttTiming = false; // Karn: what comes back now may answer either copy
        }
        Output();
    }

    private void NegotiateOptions(ushort peerMss, sbyte peerWs, bool sackOk, bool tsOk)
    {
        _peerMss = peerMss == 0 ? 536 : peerMss; // RFC 9293 §3.7.1: 536 when not announced
        if (_options.WindowScaling && peerWs >= 0) _sndShift = (byte)peerWs;
        else { _sndShift = 0; _rcvShift = 0; }
        _sackOk = _options.SelectiveAck && sackOk;
        _tsOk = _options.Timestamps && tsOk;
        _mss = Math.Max(64, Math.Min(_peerMss, _table.MaxSegmentSize(_remote.Address)) - (_tsOk ? 12 : 0));
        _cc = CongestionControl.Create(_options.Congestion, _mss, _options.InitialWindowSegments);
        if (!_options.WindowScaling || peerWs < 0) _rcvWndLimit = Math.Min(_rcvWndLimit, 65535);
    }

    /// <summary>Sends our SYN (or SYN-ACK) with every option we offer.</summary>
    private void SendSyn(bool ack)
    {
        ushort window = (ushort)Math.Min(65535, _rcvWndLimit); // SYN windows are never scaled
        if (ack) _rcvAdvEdge = RcvNxt + window; // a bare SYN knows no RCV.NXT yet: InSynSent sets the edge
        var h = Header(Iss, ack ? RcvNxt : 0, ack ? TcpFlags.Syn | TcpFlags.Ack : TcpFlags.Syn, window);
        h.MaxSegmentSize = (ushort)Math.Min(65535, _table.MaxSegmentSize(_remote.Address));
        if (_options.WindowScaling) h.WindowScale = _rcvShift;
        h.SackPermitted = _options.SelectiveAck;
        if (_options.Timestamps) h.Timestamp = new TcpTimestamp(TsNow(), ack ? _tsRecent : 0);
        if (!Emit(h)) { Owe(Owed.Syn); return; }
        _owed &= ~Owed.Syn;
        SegmentsOut++;
    }

    /// <summary>Our timestamp clock: milliseconds plus the connection's offset (RFC 7323 §5.4).</summary>
    private uint TsNow() => (uint)(Now.Nanoseconds / 1_000_000) + _tsOffset;
}

/// <summary>What a listener learned from a SYN, handed to the connection the handshake creates.</summary>
internal struct SynParameters
{
    public uint Iss, Irs, TsRecent, TsOffset;
    public ushort PeerMss, PeerWindow;
    public sbyte PeerWindowScale;
    public bool SackPermitted, Timestamps;
    public uint WindowOffered;
    public Time.Duration HandshakeRtt;
}
