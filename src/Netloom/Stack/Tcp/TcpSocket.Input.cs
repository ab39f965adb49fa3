using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>Segment arrival (RFC 9293 §3.10.7), one method per state family.</summary>
internal sealed partial class TcpSocket
{
    private const long PawsIdleNs = 24L * 24 * 3600 * 1_000_000_000; // RFC 7323 §5.5: TS.Recent older than 24 days is invalid

    internal void Process(ref TcpSegmentIn seg)
    {
        SegmentsIn++;
        _lastHeardAt = Now.Nanoseconds;
        _keepProbes = 0;
        switch (State)
        {
            case TcpState.SynSent: InSynSent(ref seg); break;
            case TcpState.TimeWait: InTimeWait(ref seg); break;
            case TcpState.Closed or TcpState.Listen: return;
            default: InSynchronized(ref seg); break;
        }
        if (State == TcpState.Closed) return;
        AfterEvent();
    }

    /// <summary>§3.10.7.3: our SYN is out; a SYN-ACK completes the handshake, a bare SYN is a simultaneous open.</summary>
    private void InSynSent(ref TcpSegmentIn seg)
    {
        bool ackOk = false;
        if (seg.HasAck)
        {
            if (Seq.Le(seg.Ack, Iss) || Seq.Gt(seg.Ack, SndMax))
            {
                if (!seg.Rst) SendControl(seg.Ack, 0, TcpFlags.Rst);
                return;
            }
            ackOk = true;
        }
        if (seg.Rst)
        {
            if (ackOk) Finish(TcpError.Refused); // RFC 5961 §3.2: only a RST acknowledging our SYN counts
            return;
        }
        if (!seg.Syn) return;
        Irs = seg.Seq;
        RcvNxt = seg.Seq + 1;
        _rcvAdvEdge = RcvNxt + (uint)Math.Min(65535, _rcvWndLimit); // what our SYN offered, now that RCV.NXT is known
        NegotiateOptions(seg.PeerMss, seg.PeerWindowScale, seg.Header.SackPermitted, seg.HasTimestamp);
        if (_tsOk) { _tsRecent = seg.TsVal; _tsRecentAge = Now.Nanoseconds; }
        SndWnd = seg.Window; // a SYN's window is never scaled
        MaxSndWnd = SndWnd;
        SndWl1 = seg.Seq;
        SndWl2 = seg.Ack;
        if (ackOk)
        {
            SndUna = seg.Ack;
            TakeRttSample(seg.Ack);
            _rtoAt = 0;
            _retries = 0;
            State = TcpState.Established;
            _unackedSince = 0;
            Raise(SocketEvents.Connected | SocketEvents.Writable);
            _ackNow = true;
            if (!seg.Payload.IsEmpty || seg.Fin) { seg.Seq++; ReceiveText(ref seg); }
        }
        else
        {
            State = TcpState.SynReceived; // simultaneous open: answer with a SYN-ACK on the same ISS
            SendSyn(ack: true);
        }
    }

    /// <summary>§3.10.7.4: every synchronized state except TIME-WAIT.</summary>
    private void InSynchronized(ref TcpSegmentIn seg)
    {
        // PAWS (RFC 7323 §5.3): an old timestamp marks an old duplicate.
        if (_tsOk && seg.HasTimestamp && !seg.Rst && Seq.Lt(seg.TsVal, _tsRecent) && Now.Nanoseconds - _tsRecentAge < PawsIdleNs)
        {
            _table.Counters.Drop(StackDrop.TcpPaws);
            _ackNow = true;
            return;
        }
        // First: is the segment in the window?
        if (!Acceptable(seg.Seq, seg.Length))
        {
            _table.Counters.Drop(StackDrop.TcpOutOfWindow);
            if (!seg.Rst) _ackNow = true;
            return;
        }
        // Second: RST. RFC 5961 §3.2: reset only on an exact match, challenge anything else in window.
        if (seg.Rst)
        {
            if (seg.Seq == RcvNxt) ResetByPeer();
            else ChallengeAck();
            return;
        }
        // Fourth: a SYN in a synchronized state is answered with a challenge ACK (RFC 5961 §4.2).
        if (seg.Syn)
        {
            ChallengeAck();
            return;
        }
        // Fifth: the ACK field.
        if (!seg.HasAck) return;
        if (_tsOk && seg.HasTimestamp && Seq.Ge(seg.TsVal, _tsRecent) && Seq.Le(seg.Seq, _lastAckSent))
        {
            _tsRecent = seg.TsVal; // RFC 7323 §4.3
            _tsRecentAge = Now.Nanoseconds;
        }
        if (!ProcessAck(ref seg)) return;
        // Seventh and eighth: the text and the FIN.
        ReceiveText(ref seg);
    }

    /// <summary>The four cases of RFC 9293 §3.10.7.4's acceptability test.</summary>
    private bool Acceptable(uint seq, uint length)
    {
        uint window = _rcvAdvEdge - RcvNxt;
        if (Seq.Lt(_rcvAdvEdge, RcvNxt)) window = 0;
        if (length == 0) return window == 0 ? seq == RcvNxt : Seq.InWindow(seq, RcvNxt, window + 1); // the right edge too, as Linux (no ACK wars)
        if (window == 0) return seq == RcvNxt; // zero window: still take its ACK (and RST), not its data
        return Seq.InWindow(seq, RcvNxt, window) || Seq.InWindow(seq + length - 1, RcvNxt, window);
    }

    private void ResetByPeer()
    {
        _table.Counters.TcpResetsIn++;
        switch (State)
        {
            case TcpState.SynReceived: Finish(TcpError.Refused); break;
            case TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait: Finish(TcpError.Reset); break;
            default: Finish(TcpError.None); break; // CLOSING, LAST-ACK
        }
    }

    private void ChallengeAck()
    {
        if (_table.TakeChallengeAckToken()) { _table.Counters.TcpChallengeAcks++; _ackNow = true; }
    }

    /// <summary>The ACK field (§3.10.7.4 fifth, RFC 5961 §5.2). False when the segment is done with.</summary>
    private bool ProcessAck(ref TcpSegmentIn seg)
    {
        uint ack = seg.Ack;
        if (State == TcpState.SynReceived)
        {
            if (!(Seq.Lt(SndUna, ack) && Seq.Le(ack, SndMax)))
            {
                SendControl(ack, 0, TcpFlags.Rst);
                return false;
            }
            State = TcpState.Established;
            _retries = 0;
            SndWnd = (uint)seg.Window << _sndShift;
            MaxSndWnd = Math.Max(MaxSndWnd, SndWnd);
            SndWl1 = seg.Seq;
            SndWl2 = ack;
            Raise(SocketEvents.Connected | SocketEvents.Writable);
        }
        if (Seq.Gt(ack, SndMax)) { _ackNow = true; return false; }          // acknowledges what we never sent
        if (Seq.Lt(ack, SndUna - Math.Max(MaxSndWnd, 65535)))            // far too old: RFC 5961 §5.2
        {
            ChallengeAck();
            return false;
        }

        uint window = (uint)seg.Window << _sndShift;
        bool windowChanged = window != SndWnd;
        bool newSack = false;
        if (_sackOk)
            for (int i = 0; i < seg.Header.Sack.Count; i++)
                newSack |= _scoreboard.Add(seg.Header.Sack[i].Left, seg.Header.Sack[i].Right, ack, SndMax);

        if (Seq.Gt(ack, SndUna)) NewAck(ack);
        else if (ack == SndUna && SndMax != SndUna && seg.Payload.IsEmpty && !seg.Fin && window != 0 && (!windowChanged || newSack))
            DuplicateAck(newSack);

        // Window update from the newest segment only (SND.WL1/SND.WL2, §3.10.7.4).
        if (Seq.Lt(SndWl1, seg.Seq) || (SndWl1 == seg.Seq && Seq.Le(SndWl2, ack)))
        {
            bool opened = SndWnd == 0 && window > 0;
            SndWnd = window;
            MaxSndWnd = Math.Max(MaxSndWnd, window);
            SndWl1 = seg.Seq;
            SndWl2 = ack;
            if (opened) { _persistAt = 0; _persistBackoff = 0; }
        }

        bool finAcked = _finSent && Seq.Gt(ack, _finSeq);
        switch (State)
        {
            case TcpState.FinWait1 when finAcked:
                State = TcpState.FinWait2;
                break;
            case TcpState.Closing when finAcked:
                EnterTimeWait();
                return false;
            case TcpState.LastAck when finAcked:
                Finish(TcpError.None);
                return false;
        }
        return true;
    }

    /// <summary>SND.UNA advances: free buffer, time the round trip, grow the window or leave recovery.</summary>
    private void NewAck(uint ack)
    {
        int flight = (int)(SndMax - SndUna);
        uint dataEnd = _sndBufSeq + (uint)_sendBuffer.Count;
        int freed = (int)(Seq.Min(ack, dataEnd) - _sndBufSeq);
        if (freed > 0)
        {
            _sendBuffer.Consume(freed);
            _sndBufSeq += (uint)freed;
            Raise(SocketEvents.Writable);
        }
        int acked = (int)(ack - SndUna);
        SndUna = ack;
        if (Seq.Lt(SndNxt, SndUna)) SndNxt = SndUna;
        _scoreboard.AdvanceTo(ack);
        TakeRttSample(ack);
        _retries = 0;
        _unackedSince = SndUna == SndMax ? 0 : Now.Nanoseconds;

        if (_timeoutRecover && Seq.Ge(ack, _recover)) _timeoutRecover = false;
        if (_inRecovery)
        {
            if (Seq.Ge(ack, _recover))
            {
                _inRecovery = false;                               // RFC 6582 §3.2 step 3: full acknowledgment
                _recoveryInflation = 0;
                _cc.OnRecoveryEnd((int)(SndMax - SndUna));
                _dupAcks = 0;
            }
            else if (!_sackOk)
            {
                // Partial acknowledgment (RFC 6582 §3.2 step 4): the next hole is lost too.
                _newRenoRetransmit = true;
                _recoveryInflation = Math.Max(0, _recoveryInflation - acked + _mss);
                ArmRto();
            }
        }
        else
        {
            _dupAcks = 0;
            // Grow only a window that is in use (RFC 7661's spirit): an application- or
            // receiver-limited sender would otherwise inflate cwnd without bound.
            if (flight >= _cc.Cwnd / 2) _cc.OnAck(acked, flight, Now, _rtt.MinRtt);
        }
        if (SndUna == SndMax) _rtoAt = 0;                          // RFC 6298 §5.2
        else ArmRto();                                            // §5.3
    }

    /// <summary>RFC 5681 §3.2 / RFC 6675 §5: count duplicates; three, or SACKed data past the loss threshold, start recovery.</summary>
    private void DuplicateAck(bool newSack)
    {
        _dupAcks++;
        if (_inRecovery)
        {
            if (!_sackOk) _recoveryInflation += _mss; // RFC 6582 step 3: each further duplicate lets a segment out
            return;
        }
        bool lossBySack = _sackOk && newSack && Seq.Gt(_scoreboard.LossBoundary(SndUna, 3, _mss), SndUna);
        if (_dupAcks < 3 && !lossBySack) return;
        if (_timeoutRecover && Seq.Lt(SndUna, _recover)) return; // RFC 6582 §3.2 step 2: duplicates of a timeout's go-back-N, not a loss
        _inRecovery = true;
        FastRecoveries++;
        _recover = SndMax;
        _highRxt = SndUna;
        _cc.OnLoss((int)(SndMax - SndUna), Now);
        if (!_sackOk) { _newRenoRetransmit = true; _recoveryInflation = 3 * _mss; }
    }

    private void TakeRttSample(uint ack)
    {
        if (_rttTiming && Seq.Gt(ack, _rttSeq))
        {
            _rtt.Sample(Now - new Time.Instant(_rttStart));
            _rttTiming = false;
        }
    }

    private void StartRttTiming(uint seq)
    {
        if (_rttTiming) return;
        _rttTiming = true;
        _rttSeq = seq;
        _rttStart = Now.Nanoseconds;
    }

    /// <summary>Seventh and eighth steps: place the data, then the FIN, and decide how soon to ACK.</summary>
    private void ReceiveText(ref TcpSegmentIn seg)
    {
        var payload = seg.Payload;
        uint seq = seg.Seq;
        if (!payload.IsEmpty && State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 && !_finReceived)
        {
            if (Seq.Lt(seq, RcvNxt))
            {
                int skip = (int)(RcvNxt - seq);
                if (skip >= payload.Length) { payload = default; _ackNow = true; }   // all old: a D-SACK-worthy duplicate
                else { payload = payload[skip..]; seq = RcvNxt; }
            }
            if (!payload.IsEmpty) PlaceData(seq, payload);
        }
        if (seg.Fin)
        {
            uint finSeq = seg.Seq + (uint)seg.Payload.Length;
            if (finSeq == RcvNxt) ReceiveFin();
            else if (Seq.Gt(finSeq, RcvNxt) && !_finReceived) { _finPending = true; _peerFinSeq = finSeq; _ackNow = true; }
        }
    }

    private void PlaceData(uint seq, ReadOnlySpan<byte> payload)
    {
        int offset = (int)(seq - RcvNxt);
        int room = _recvBuffer.Free - offset;
        if (room <= 0) { _table.Counters.Drop(StackDrop.TcpOutOfWindow); _ackNow = true; return; }
        if (payload.Length > room) payload = payload[..room];
        _recvBuffer.WriteAt(offset, payload);
        if (offset > 0)
        {
            // Out of order: keep it and say so at once, with SACK (RFC 5681 §4.2, RFC 2018).
            if (!_outOfOrder.Add(offset, offset + payload.Length)) _table.Counters.Drop(StackDrop.TcpOutOfOrderFull);
            _ackNow = true;
            return;
        }
        bool filledHole = !_outOfOrder.IsEmpty;
        int n = payload.Length;
        _recvBuffer.Advance(n);
        int more = _outOfOrder.Shift(n);
        if (more > 0) _recvBuffer.Advance(more);
        RcvNxt += (uint)(n + more);
        BytesReceived += n + more;
        Raise(SocketEvents.Readable);
        if (filledHole) _ackNow = true;                                 // RFC 5681 §4.2: a filled hole is acknowledged at once
        if (_finPending && RcvNxt == _peerFinSeq) ReceiveFin();
        if (++_unackedSegments >= 2 || _quickAcks > 0) _ackNow = true; // every second segment (RFC 5681 §4.2)
        if (_quickAcks > 0) _quickAcks--;
    }

    /// <summary>Eighth step: the peer has finished sending.</summary>
    private void ReceiveFin()
    {
        _finReceived = true;
        _finPending = false;
        RcvNxt++;
        _ackNow = true;
        Raise(SocketEvents.Readable);
        switch (State)
        {
            case TcpState.SynReceived or TcpState.Established: State = TcpState.CloseWait; break;
            case TcpState.FinWait1:
                if (_finSent && Seq.Gt(SndUna, _finSeq)) EnterTimeWait();
                else State = TcpState.Closing;
                break;
            case TcpState.FinWait2: EnterTimeWait(); break;
        }
    }

    private void EnterTimeWait()
    {
        State = TcpState.TimeWait;
        _rtoAt = _persistAt = _keepAt = 0;
        _closeAt = (Now + _table.Options.TimeWait).Nanoseconds;
        Raise(SocketEvents.Closed | SocketEvents.Readable);
    }

    /// <summary>TIME-WAIT: acknowledge a retransmitted FIN and restart the 2·MSL timer; RSTs are ignored (RFC 1337).</summary>
    private void InTimeWait(ref TcpSegmentIn seg)
    {
        if (seg.Rst) return;
        if (seg.Fin && seg.Seq + (uint)seg.Payload.Length + 1 == RcvNxt)
            _closeAt = (Now + _table.Options.TimeWait).Nanoseconds;
        _ackNow = true;
    }

    /// <summary>
    /// May a new SYN take over this TIME-WAIT connection's 4-tuple? Yes when its sequence number
    /// or timestamp is beyond anything of the old connection (RFC 9293 §3.6.1, RFC 6191).
    /// </summary>
    internal bool TimeWaitAcceptsSyn(in TcpSegmentIn syn) =>
        State == TcpState.TimeWait && (_tsOk && syn.HasTimestamp ? Seq.Gt(syn.TsVal, _tsRecent) : Seq.Gt(syn.Seq, RcvNxt));

    internal uint TimeWaitNextSeq => SndMax + 65536 * 2;

    internal void EndTimeWait() { if (State == TcpState.TimeWait) Finish(TcpError.None); }

    /// <summary>
    /// The IP layer says the destination is unreachable (ICMP): a hard error (port or protocol
    /// unreachable) is fatal only while the SYN is out; RFC 1122 §4.2.3.9 treats the rest as soft.
    /// </summary>
    internal void Unreachable(bool hard)
    {
        if (State == TcpState.SynSent && hard) Finish(TcpError.Refused);
    }
}
