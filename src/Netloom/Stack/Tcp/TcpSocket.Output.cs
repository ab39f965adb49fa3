using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>What to send: new data, retransmissions, FIN, ACKs and window updates.</summary>
internal sealed partial class TcpSocket
{
    private const int DupThresh = 3;

    /// <summary>Sends everything the receive window, the congestion window and Nagle allow.</summary>
    internal void Output()
    {
        if (State is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck)) return;
        if (_newRenoRetransmit)
        {
            _newRenoRetransmit = false;
            Retransmit(SndUna);
        }
        for (int i = 0; i < 4096; i++)
        {
            if (_inRecovery && _sackOk && SendLostSegment()) continue;
            if (!SendNext()) break;
        }
    }

    private uint DataEnd => _sndBufSeq + (uint)_sendBuffer.Count;

    /// <summary>
    /// Bytes in the network. During SACK recovery RFC 6675's pipe: outstanding data not SACKed
    /// and not deemed lost, plus what was retransmitted. After a timeout, what was re-sent since.
    /// </summary>
    private int FlightSize()
    {
        if (_inRecovery && _sackOk)
        {
            uint boundary = _scoreboard.LossBoundary(SndUna, DupThresh, _mss);
            long lostUnsent = _scoreboard.UnsackedBytes(Seq.Max(_highRxt, SndUna), boundary);
            return (int)Math.Max(0, SndMax - SndUna - _scoreboard.SackedBytes - lostUnsent);
        }
        if (Seq.Lt(SndNxt, SndMax)) return (int)(SndNxt - SndUna);
        return (int)Math.Max(0, SndMax - SndUna - _scoreboard.SackedBytes);
    }

    private int CongestionRoom => Math.Max(0, _cc.Cwnd + _recoveryInflation - FlightSize());

    /// <summary>RFC 6675 NextSeg rule 1: the first unSACKed hole below the loss boundary not yet retransmitted.</summary>
    private bool SendLostSegment()
    {
        if (CongestionRoom < _mss) return false;
        uint boundary = _scoreboard.LossBoundary(SndUna, DupThresh, _mss);
        uint from = Seq.Max(_highRxt, SndUna);
        if (!Seq.Lt(from, boundary)) return false;
        uint seq = _scoreboard.SkipSacked(from, out uint runEnd);
        if (!Seq.Lt(seq, boundary)) { _highRxt = boundary; return false; }
        int len = (int)Math.Min(PayloadLimit, Seq.Min(runEnd, boundary) - seq);
        len = (int)Math.Min(len, Math.Max(0, (int)(DataEnd - seq)));
        bool fin = _finSent && seq + (uint)len == _finSeq;
        if (len == 0 && !fin) { _highRxt = boundary; return false; }
        if (!SendSegment(seq, len, fin)) return false;
        Retransmits++;
        _rttTiming = false;
        _highRxt = seq + (uint)len + (fin ? 1u : 0);
        return true;
    }

    /// <summary>One segment from SND.NXT (new data, or go-back-N after a timeout), if the windows and Nagle allow.</summary>
    private bool SendNext()
    {
        uint dataEnd = DataEnd;
        uint seq = SndNxt, runEnd = seq + int.MaxValue;
        bool retransmit = Seq.Lt(seq, SndMax);
        if (retransmit)
        {
            seq = _scoreboard.SkipSacked(seq, out runEnd);
            SndNxt = seq;
            retransmit = Seq.Lt(seq, SndMax);
        }
        int avail = Seq.Lt(seq, dataEnd) ? (int)(dataEnd - seq) : 0;
        bool finToSend = _finQueued && (!_finSent || Seq.Le(seq, _finSeq));
        if (avail == 0 && !finToSend) return false;

        int windowRoom = Math.Max(0, (int)(SndUna + SndWnd - seq));
        int congestionRoom = CongestionRoom;
        int limit = PayloadLimit;
        int len = Math.Min(Math.Min(avail, limit), Math.Min(windowRoom, congestionRoom));
        if (retransmit) len = (int)Math.Min(len, runEnd - seq);
        bool fin = finToSend && seq + (uint)len == dataEnd && (len > 0 || congestionRoom > 0 || retransmit);
        if (len == 0 && !fin)
        {
            if (windowRoom == 0 && SndUna == SndMax) ArmPersist();
            return false;
        }
        // Nagle (RFC 896, RFC 9293 §3.7.4) and sender-side SWS avoidance (§3.8.6.2.1): a short
        // segment goes only when it carries everything queued and nothing is outstanding (or
        // NoDelay), or when it fills half the largest window the peer has offered.
        if (!retransmit && !fin && len < limit && !_swsOverride)
        {
            bool allQueued = len == avail;
            bool idle = SndMax == SndUna;
            if (!(allQueued && (NoDelay || idle)) && len < (int)(MaxSndWnd / 2))
            {
                if (idle) ArmPersist(); // nothing will come back to clock us: the persist timer overrides
                return false;
            }
        }
        if (!SendSegment(seq, len, fin)) return false;
        uint end = seq + (uint)len + (fin ? 1u : 0);
        SndNxt = end;
        if (Seq.Gt(end, SndMax)) SndMax = end;
        if (fin) { _finSent = true; _finSeq = seq + (uint)len; }
        if (retransmit) { Retransmits++; _rttTiming = false; }
        else { BytesSent += len; StartRttTiming(seq); }
        if (_rtoAt == 0) ArmRto();
        if (_unackedSince == 0) _unackedSince = Now.Nanoseconds;
        return true;
    }

    /// <summary>Re-sends one segment at <paramref name="seq"/> (NewReno's fast retransmit).</summary>
    private void Retransmit(uint seq)
    {
        uint dataEnd = DataEnd;
        int len = Seq.Lt(seq, dataEnd) ? (int)Math.Min(PayloadLimit, dataEnd - seq) : 0;
        bool fin = _finSent && seq + (uint)len == _finSeq;
        if (len == 0 && !fin) return;
        if (!SendSegment(seq, len, fin)) { _newRenoRetransmit = true; return; }
        Retransmits++;
        _rttTiming = false;
    }

    /// <summary>
    /// Payload bytes a segment sent now may carry: the MSS less the SACK blocks it will carry
    /// (as Linux's tcp_current_mss), so a full segment sent while data is missing still fits the MTU.
    /// </summary>
    private int PayloadLimit => _sackOk && !_outOfOrder.IsEmpty ? _mss - (4 + 8 * Math.Min(_tsOk ? 3 : 4, _outOfOrder.Count)) : _mss;

    /// <summary>Emits one segment carrying the current ACK, window and options; false when the device is full (retried later).</summary>
    private bool SendSegment(uint seq, int len, bool fin)
    {
        var o = SegmentOptions();
        if (_sackOk && !_outOfOrder.IsEmpty) AddSackBlocks(ref o);
        var flags = TcpFlags.Ack;
        if (fin) flags |= TcpFlags.Fin;
        if (len > 0 && seq + (uint)len == DataEnd) flags |= TcpFlags.Psh;
        ushort window = WindowToAdvertise();
        if (!_stack.SendTcp(this, seq, RcvNxt, flags, window, o, len > 0 ? (int)(seq - _sndBufSeq) : 0, len))
        {
            _stack.BlockedOnDevice(this);
            if (len == 0 && !fin) _ackNow = true;
            return false;
        }
        SegmentsOut++;
        AckSent();
        return true;
    }

    /// <summary>The options every segment after the handshake carries: the timestamp, when in use.</summary>
    private TcpOutOptions SegmentOptions()
    {
        var o = TcpOutOptions.None;
        if (_tsOk) { o.HasTimestamp = true; o.TsVal = TsNow(); o.TsEcr = _tsRecent; }
        return o;
    }

    /// <summary>
    /// After an event (a segment in, or the device making room): send what is allowed, the ACK
    /// owed now or a delayed one later, point the timer at the next deadline, tell the observer.
    /// </summary>
    internal void AfterEvent()
    {
        Output();
        if (_ackNow) SendAck();
        else if (_unackedSegments > 0 && _ackAt == 0) _ackAt = (Now + _options.DelayedAck).Nanoseconds;
        Reschedule();
        Notify();
    }

    /// <summary>A segment with no data: the ACK, with SACK blocks when data is missing.</summary>
    internal void SendAck()
    {
        if (State is TcpState.Closed or TcpState.Listen or TcpState.SynSent) return;
        // Sequence: SND.MAX, never below what the peer has seen (Linux's tcp_acceptable_seq).
        SendSegment(SndMax, 0, false);
    }

    private void AckSent()
    {
        _ackNow = false;
        _ackAt = 0;
        _unackedSegments = 0;
        _lastAckSent = RcvNxt;
    }

    /// <summary>A bare control segment (RST) with no options.</summary>
    private void SendControl(uint seq, uint ack, TcpFlags flags)
    {
        _stack.SendTcp(this, seq, ack, flags, 0, TcpOutOptions.None, 0, 0);
        SegmentsOut++;
        if ((flags & TcpFlags.Rst) != 0) _stack.Counters.TcpResetsOut++;
    }

    /// <summary>SACK blocks for the out-of-order data, the latest first (RFC 2018 §4); 3 fit beside timestamps.</summary>
    private void AddSackBlocks(ref TcpOutOptions o)
    {
        int max = o.HasTimestamp ? 3 : 4;
        int latest = _outOfOrder.Latest;
        if (latest >= 0)
        {
            var (s, e) = _outOfOrder[latest];
            o.Sack.TryAdd(new SackBlock(RcvNxt + (uint)s, RcvNxt + (uint)e));
        }
        for (int i = _outOfOrder.Count - 1; i >= 0 && o.Sack.Count < max; i--)
        {
            if (i == latest) continue;
            var (s, e) = _outOfOrder[i];
            o.Sack.TryAdd(new SackBlock(RcvNxt + (uint)s, RcvNxt + (uint)e));
        }
    }

    private int OfferableWindow() => Math.Min(_recvBuffer.Free, _rcvWndLimit);

    /// <summary>
    /// The window to put in a segment: the free buffer within the autotuned limit, never moving
    /// the right edge back (RFC 9293 §3.8.6), and growing only in steps of at least one segment or
    /// half the buffer (receiver SWS avoidance, §3.8.6.2.2).
    /// </summary>
    private ushort WindowToAdvertise()
    {
        uint edge = RcvNxt + (uint)OfferableWindow();
        if (Seq.Lt(edge, _rcvAdvEdge)) edge = _rcvAdvEdge;
        else if (edge - _rcvAdvEdge < Math.Min(_recvBuffer.Capacity / 2, _mss) && Seq.Gt(_rcvAdvEdge, RcvNxt)) edge = _rcvAdvEdge;
        uint wnd = Seq.Gt(edge, RcvNxt) ? edge - RcvNxt : 0;
        uint scaled = Math.Min(wnd >> _rcvShift, 65535u);
        _rcvAdvEdge = Seq.Max(_rcvAdvEdge, RcvNxt + (scaled << _rcvShift));
        return (ushort)scaled;
    }
}
