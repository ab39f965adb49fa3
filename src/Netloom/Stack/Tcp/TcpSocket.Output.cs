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
        if (avail > 0 && _sendBuffer.LentBytes > 0)
        {
            // A loan run goes out as one segment of its own (its buffer is the frame): no segment
            // crosses into or out of one, and one the windows would cut short waits for them
            // while data is in flight (an ACK will come), rather than going out copied.
            int offset = (int)(seq - _sndBufSeq);
            len = Math.Min(len, _sendBuffer.SegmentLimit(offset));
            int run = _sendBuffer.LoanRunAt(offset);
            if (run > 0 && len < run && len < avail && SndMax != SndUna && run <= limit && run <= MaxSndWnd) return false;
        }
        bool fin = finToSend && seq + (uint)len == dataEnd && (len > 0 || congestionRoom > 0 || retransmit);
        if (len == 0 && !fin)
        {
            if (windowRoom == 0 && SndUna == SndMax) ArmPersist();
            return false;
        }
        // Nagle (RFC 896, RFC 9293 §3.7.4) and sender-side SWS avoidance (§3.8.6.2.1): a short
        // segment goes only when it carries everything queued and no short segment is
        // unacknowledged (or NoDelay), or when it fills half the largest window the peer has
        // offered. "No short segment" is Minshall's variant, as Linux has it: the tail of a
        // write longer than a segment follows the full ones at once instead of waiting for
        // their ACK, which a peer that delays its ACKs would hold back for its timer.
        if (!retransmit && !fin && len < limit && !_swsOverride)
        {
            bool allQueued = len == avail;
            bool idle = SndMax == SndUna;
            bool shortOutstanding = Seq.Gt(_sndSml, SndUna) && Seq.Le(_sndSml, SndNxt);
            if (!(allQueued && (NoDelay || !shortOutstanding)) && len < (int)(MaxSndWnd / 2))
            {
                if (idle) ArmPersist(); // nothing will come back to clock us: the persist timer overrides
                return false;
            }
        }
        if (!SendSegment(seq, len, fin)) return false;
        uint end = seq + (uint)len + (fin ? 1u : 0);
        if (len < limit && !retransmit) _sndSml = end;
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
        var flags = TcpFlags.Ack;
        if (fin) flags |= TcpFlags.Fin;
        if (len > 0 && seq + (uint)len == DataEnd) flags |= TcpFlags.Psh;
        var h = Header(seq, RcvNxt, flags, WindowToAdvertise());
        h.PayloadLength = len;
        AddTimestamp(ref h);
        if (_sackOk && !_outOfOrder.IsEmpty) AddSackBlocks(ref h);
        if (!Emit(h, len > 0 ? (int)(seq - _sndBufSeq) : 0))
        {
            _table.RetryAfterFlush(this);
            if (len == 0 && !fin) _ackNow = true;
            return false;
        }
        SegmentsOut++;
        AckSent();
        return true;
    }

    /// <summary>A header between this connection's ports, with no options yet.</summary>
    private TcpRepr Header(uint seq, uint ack, TcpFlags flags, ushort window) => new()
    {
        SourcePort = _local.Port, DestinationPort = _remote.Port, SequenceNumber = seq, AcknowledgmentNumber = ack, Flags = flags, Window = window,
    };

    /// <summary>The option every segment after the handshake carries: the timestamp, when in use (RFC 7323 §3.2).</summary>
    private void AddTimestamp(ref TcpRepr h)
    {
        if (_tsOk) h.Timestamp = new TcpTimestamp(TsNow(), _tsRecent);
    }

    /// <summary>Hands one segment (its payload, if any, from the send buffer at <paramref name="dataOffset"/>) to the table; false when the device is full.</summary>
    private bool Emit(in TcpRepr h, int dataOffset = 0) =>
        _table.TrySend(new TcpSegmentOut(_local.Address, _remote.Address, h, h.PayloadLength > 0 ? _sendBuffer : null, dataOffset));

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

    /// <summary>
    /// The device-full contract: a segment the device refused has changed nothing (no sequence
    /// space taken, no counter, no backoff). Data, FIN and ACKs are recomputed by <see cref="AfterEvent"/>;
    /// what only a timer or a reply would send (SYN, persist and keep-alive probes, RST replies) is
    /// owed, and sent here, on the table's turn after the next flush, if it is still due.
    /// </summary>
    internal void RetryAfterFlush()
    {
        if ((_owed & Owed.Syn) != 0)
        {
            _owed &= ~Owed.Syn;
            if (State is TcpState.SynSent or TcpState.SynReceived) SendSyn(ack: State == TcpState.SynReceived);
        }
        if ((_owed & Owed.Control) != 0)
        {
            _owed &= ~Owed.Control;
            if (State == _owedControlState) SendControl(_owedControlSeq, _owedControlAck, _owedControlFlags); // a reply to a state since left is stale
        }
        if ((_owed & Owed.Persist) != 0)
        {
            _owed &= ~Owed.Persist;
            OnPersist();
        }
        if ((_owed & Owed.KeepAlive) != 0)
        {
            _owed &= ~Owed.KeepAlive;
            OnKeepAlive();
            if (State == TcpState.Closed) return;
        }
        AfterEvent();
    }

    /// <summary>The device refused a segment only this socket's timers or replies would send: owe it and take a turn after the flush.</summary>
    private void Owe(Owed what)
    {
        _owed |= what;
        _table.RetryAfterFlush(this);
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

    /// <summary>A bare control segment (RST) with no options; owed when the device is full (lost if the connection then closes).</summary>
    private void SendControl(uint seq, uint ack, TcpFlags flags)
    {
        if (!Emit(Header(seq, ack, flags, 0)))
        {
            (_owedControlSeq, _owedControlAck, _owedControlFlags, _owedControlState) = (seq, ack, flags, State);
            Owe(Owed.Control);
            return;
        }
        SegmentsOut++;
        if ((flags & TcpFlags.Rst) != 0) _table.Counters.TcpResetsOut++;
    }

    /// <summary>SACK blocks for the out-of-order data, the latest first (RFC 2018 §4); 3 fit beside timestamps.</summary>
    private void AddSackBlocks(ref TcpRepr o)
    {
        int max = o.Timestamp.HasValue ? 3 : 4;
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
