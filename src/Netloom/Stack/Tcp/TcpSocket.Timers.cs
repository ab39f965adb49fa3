using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>Retransmission (RFC 6298), persist, keep-alive, delayed ACK and TIME-WAIT timers.</summary>
internal sealed partial class TcpSocket
{
    internal void OnTimer()
    {
        long now = Now.Nanoseconds;
        _timerDue = 0;
        if (_closeAt != 0 && now >= _closeAt) { Finish(TcpError.None); return; }
        if (_rtoAt != 0 && now >= _rtoAt)
        {
            _rtoAt = 0;
            OnRetransmitTimeout();
            if (State == TcpState.Closed) return;
        }
        if (_persistAt != 0 && now >= _persistAt)
        {
            _persistAt = 0;
            OnPersist();
        }
        if (_keepAt != 0 && now >= _keepAt)
        {
            _keepAt = 0;
            OnKeepAlive();
            if (State == TcpState.Closed) return;
        }
        if (_ackAt != 0 && now >= _ackAt)
        {
            _ackAt = 0;
            if (_unackedSegments > 0) _ackNow = true;
        }
        if (_ackNow) SendAck();
        Reschedule();
        Notify();
    }

    private void OnRetransmitTimeout()
    {
        Timeouts++;
        if (State is TcpState.SynSent or TcpState.SynReceived)
        {
            if (++_retries > _options.SynRetries) { Finish(TcpError.TimedOut); return; }
            _rtt.OnTimeout();
            _rttTiming = false;
            SendSyn(ack: State == TcpState.SynReceived);
            ArmRto();
            return;
        }
        if (SndUna == SndMax) return;
        if (SndWnd == 0 && SndMax - SndUna <= 1) { ArmPersist(); return; } // a closed window is probed, not timed out
        bool userTimedOut = _options.UserTimeout > Time.Duration.Zero && _unackedSince != 0 && Now.Nanoseconds - _unackedSince >= _options.UserTimeout.Nanoseconds;
        if (_retries >= _options.MaxRetransmissions || userTimedOut)
        {
            SendControl(SndMax, RcvNxt, TcpFlags.Rst | TcpFlags.Ack);
            Finish(TcpError.TimedOut);
            return;
        }
        _retries++;
        _rtt.OnTimeout();                                  // RFC 6298 §5.5
        _cc.OnTimeout((int)(SndMax - SndUna), Now);
        _inRecovery = false;
        _newRenoRetransmit = false;
        _recoveryInflation = 0;
        _dupAcks = 0;
        _recover = SndMax;                                 // RFC 6582 §4: no fast retransmit for the go-back-N's duplicates
        _timeoutRecover = true;
        if (_retries >= 2) _scoreboard.Clear();            // twice timed out: the peer may have reneged (RFC 2018 §8)
        SndNxt = SndUna;
        _highRxt = SndUna;
        _rttTiming = false;
        Output();                                          // cwnd is one segment: the first hole goes again
        if (_rtoAt == 0) ArmRto();
    }

    /// <summary>The peer's window is closed: send one byte past it to learn when it opens (RFC 9293 §3.8.6.1).</summary>
    private void OnPersist()
    {
        if (!Seq.Lt(SndUna, DataEnd) || State is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.LastAck or TcpState.Closing))
        {
            _persistBackoff = 0;
            return;
        }
        if (SndWnd != 0)
        {
            // The window is open but too small for sender SWS avoidance, and nothing is in flight
            // to bring a larger one: the override timeout sends what fits (RFC 9293 §3.8.6.2.1).
            _swsOverride = true;
            Output();
            _swsOverride = false;
            return;
        }
        var h = Header(SndUna, RcvNxt, TcpFlags.Ack, WindowToAdvertise());
        h.PayloadLength = 1;
        AddTimestamp(ref h);
        if (!Emit(h, (int)(SndUna - _sndBufSeq))) { Owe(Owed.Persist); return; } // no sequence space taken, no backoff
        _owed &= ~Owed.Persist;
        SegmentsOut++;
        AckSent();
        if (Seq.Lt(SndNxt, SndUna + 1)) SndNxt = SndUna + 1;
        if (Seq.Lt(SndMax, SndUna + 1)) SndMax = SndUna + 1;
        _persistBackoff++;
        ArmPersist();
    }

    private void OnKeepAlive()
    {
        if (!_options.KeepAlive || State is not (TcpState.Established or TcpState.CloseWait)) return;
        long now = Now.Nanoseconds, idle = now - _lastHeardAt;
        if (_keepProbes == 0 && idle < _options.KeepAliveIdle.Nanoseconds) return; // Reschedule sets the next check
        if (_keepProbes >= _options.KeepAliveProbes)
        {
            SendControl(SndMax, RcvNxt, TcpFlags.Rst | TcpFlags.Ack);
            Finish(TcpError.TimedOut);
            return;
        }
        // A probe is an old sequence number with no data: any live peer must ACK it (RFC 1122 §4.2.3.6).
        var h = Header(SndUna - 1, RcvNxt, TcpFlags.Ack, WindowToAdvertise());
        AddTimestamp(ref h);
        if (!Emit(h))
        {
            Owe(Owed.KeepAlive);                              // not a probe the peer failed to answer
            _keepAt = now + _options.KeepAliveInterval.Nanoseconds; // the retry, not this timer, sends it
            return;
        }
        _owed &= ~Owed.KeepAlive;
        SegmentsOut++;
        _keepProbes++;
        _keepAt = now + _options.KeepAliveInterval.Nanoseconds;
    }

    private void ArmRto() => _rtoAt = (Now + _rtt.Rto).Nanoseconds;

    private void ArmPersist()
    {
        if (_persistAt != 0) return;
        long t = Math.Clamp(_rtt.Rto.Nanoseconds << Math.Min(_persistBackoff, 16), 200_000_000L, 60_000_000_000L);
        _persistAt = Now.Nanoseconds + t;
    }

    /// <summary>Points the connection's wheel timer at its earliest deadline.</summary>
    internal void Reschedule()
    {
        if (_options.KeepAlive && _keepAt == 0 && State is TcpState.Established or TcpState.CloseWait)
            _keepAt = _lastHeardAt + _options.KeepAliveIdle.Nanoseconds;
        long due = 0;
        Earliest(ref due, _rtoAt);
        Earliest(ref due, _ackAt);
        Earliest(ref due, _persistAt);
        Earliest(ref due, _keepAt);
        Earliest(ref due, _closeAt);
        if (due == _timerDue) return;
        _timerDue = due;
        _table.Schedule(this, due);
    }

    private static void Earliest(ref long due, long t)
    {
        if (t != 0 && (due == 0 || t < due)) due = t;
    }
}
