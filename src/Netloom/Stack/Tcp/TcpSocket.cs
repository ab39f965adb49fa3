using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// One TCP connection (RFC 9293's TCB): the state machine, the send and receive buffers,
/// retransmission, congestion and flow control. It takes parsed segments in
/// (<see cref="TcpSegmentIn"/>) and hands segments out through its <see cref="TcpTable"/>
/// (<see cref="TcpSegmentOut"/>); it knows no IP version and no frame layout, so IPv4 and IPv6
/// run the same socket. Used on the stack's owner thread (or with the stack lock held);
/// <see cref="Send"/> and <see cref="Receive"/> never block. Input, output and timers live in the
/// partial files of the same name.
/// </summary>
internal sealed partial class TcpSocket
{
    private readonly TcpTable _table;
    private readonly TcpSocketOptions _options;
    private readonly SendQueue _sendBuffer;
    private readonly ByteRing _recvBuffer;
    private uint _zeroCopyNext;      // the number of the next zero-copy send (the kernel's sk_zckey)
    private readonly Assembler _outOfOrder = new();
    private readonly SackScoreboard _scoreboard = new();
    private readonly RttEstimator _rtt;
    private CongestionControl _cc;
    private readonly TcpEndpoint _local, _remote;

    // Send sequence variables (RFC 9293 §3.3.1). SND.MAX is the highest sequence sent; after a
    // timeout SND.NXT goes back to SND.UNA and climbs again (go-back-N, skipping SACKed data).
    internal uint Iss, SndUna, SndNxt, SndMax, SndWl1, SndWl2;
    internal uint SndWnd, MaxSndWnd;
    private uint _sndBufSeq;         // sequence number of the send buffer's first byte
    private uint _sndSml;            // end of the last short segment sent (Nagle, Minshall's variant)
    private byte _sndShift, _rcvShift;
    private int _mss = 536;          // payload bytes per segment, options excluded
    private int _peerMss = 536;

    // Receive sequence variables.
    internal uint Irs, RcvNxt;
    private uint _rcvAdvEdge;        // RCV.NXT + the window last advertised: never moved back
    private int _rcvWndLimit;        // autotuned cap on the offered window
    private long _rcvTuneStart, _rcvTuneCopied;

    // Options in force.
    private bool _tsOk, _sackOk;
    private uint _tsRecent, _tsOffset, _lastAckSent;
    private long _tsRecentAge;

    // Closing.
    private bool _finQueued, _finSent, _finReceived, _finPending;
    private uint _finSeq, _peerFinSeq;

    // Loss recovery (RFC 6582 NewReno without SACK, RFC 6675 with it).
    private int _dupAcks, _recoveryInflation;
    private bool _inRecovery, _newRenoRetransmit, _timeoutRecover;
    private uint _recover, _highRxt;

    // Round-trip timing of one segment at a time (Karn's rule: never a retransmitted one).
    private bool _rttTiming;
    private uint _rttSeq;
    private long _rttStart;

    // Timer deadlines in nanoseconds; 0 when off. One wheel timer covers the earliest.
    private long _rtoAt, _ackAt, _persistAt, _keepAt, _closeAt, _timerDue;
    private int _retries, _keepProbes, _persistBackoff;
    private long _lastHeardAt, _unackedSince;
    private int _quickAcks, _unackedSegments;
    private bool _ackNow, _swsOverride;
    private SocketEvents _pendingEvents;

    // Segments the device refused that no later event would send again: owed until the table's
    // retry after the next flush (the device-full contract, see RetryAfterFlush).
    [Flags]
    private enum Owed : byte { None = 0, Syn = 1, Persist = 2, KeepAlive = 4, Control = 8 }
    private Owed _owed;
    private uint _owedControlSeq, _owedControlAck;
    private TcpFlags _owedControlFlags;
    private TcpState _owedControlState;

    internal TcpSocket(TcpTable table, TcpSocketOptions options, TcpEndpoint local, TcpEndpoint remote, int slot)
    {
        _table = table;
        _options = options;
        _local = local;
        _remote = remote;
        Slot = slot;
        _sendBuffer = new SendQueue(TcpSocketOptions.RoundUp(options.SendBufferSize));
        _recvBuffer = new ByteRing(options.ReceiveCapacity);
        _rtt = new RttEstimator(options.InitialRto, options.MinRto, options.MaxRto);
        _cc = CongestionControl.Create(options.Congestion, _mss, options.InitialWindowSegments);
        _rcvWndLimit = options.InitialWindowLimit;
        _rcvShift = options.ReceiveWindowShift;
        _quickAcks = options.QuickAcks;
        NoDelay = options.NoDelay;
    }

    /// <summary>The table's handle for this connection (its slot).</summary>
    internal int Slot { get; }
    internal TcpEndpoint Local => _local;
    internal TcpEndpoint Remote => _remote;
    public ushort LocalPort => _local.Port;
    public ushort RemotePort => _remote.Port;
    /// <summary>The local address of an IPv4 connection (the IPv4 socket API's view of the opaque endpoint).</summary>
    public Ipv4Address LocalAddress => _local.Address.Ipv4;
    /// <summary>The remote address of an IPv4 connection (the IPv4 socket API's view of the opaque endpoint).</summary>
    public Ipv4Address RemoteAddress => _remote.Address.Ipv4;
    public TcpState State { get; private set; }
    public TcpError Error { get; private set; }
    public bool NoDelay { get; set; }
    /// <summary>Told about this connection's events (the socket layer's hook).</summary>
    public ISocketObserver? Observer { get; set; }
    /// <summary>Whatever the owner wants to keep with the connection.</summary>
    public object? UserState { get; set; }

    public string CongestionControlName => _cc.Name;
    public int CongestionWindow => _cc.Cwnd;
    public int SlowStartThreshold => _cc.Ssthresh;
    public Duration SmoothedRtt => _rtt.Smoothed;
    public int MaxSegmentSize => _mss;
    public bool TimestampsEnabled => _tsOk;
    public bool SackEnabled => _sackOk;
    public int SendWindowScale => _sndShift;
    public int ReceiveWindowScale => _rcvShift;
    public int ReceiveWindowLimit => _rcvWndLimit;
    public uint SendWindow => SndWnd;

    public long SegmentsIn { get; private set; }
    public long SegmentsOut { get; private set; }
    /// <summary>Segments sent again; each one is added to the stack's TcpRetransmits counter as well.</summary>
    public long Retransmits { get => _retransmits; private set { _table.Counters.TcpRetransmits += value - _retransmits; _retransmits = value; } }
    private long _retransmits;
    public long BytesSent { get; private set; }
    public long BytesReceived { get; private set; }
    public long Timeouts { get; private set; }
    public long FastRecoveries { get; private set; }

    /// <summary>Bytes waiting to be read.</summary>
    public int Available => _recvBuffer.Count;
    /// <summary>Bytes <see cref="Send"/> would take now.</summary>
    public int SendSpace => CanSend ? _sendBuffer.Free : 0;
    /// <summary>Bytes queued to send and not yet acknowledged.</summary>
    public int SendQueued => _sendBuffer.Count;
    /// <summary>The peer finished sending and every byte has been read: reads return 0 from now on.</summary>
    public bool ReceiveFinished => (_finReceived || State == TcpState.Closed) && _recvBuffer.IsEmpty;
    public bool IsConnected => State is TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.FinWait2;
    private bool CanSend => State is TcpState.Established or TcpState.CloseWait or TcpState.SynSent or TcpState.SynReceived && !_finQueued;

    private Instant Now => _table.Now;

    /// <summary>
    /// Queues as much of <paramref name="data"/> as fits and sends what the windows allow.
    /// Returns the bytes taken (0 when the buffer is full). Throws once the sending side is shut
    /// or the connection failed.
    /// </summary>
    public int Send(ReadOnlySpan<byte> data)
    {
        if (Error != TcpError.None) ThrowFailed();
        if (!CanSend) throw new InvalidOperationException($"cannot send in {State}{(_finQueued ? " after shutdown" : "")}");
        int n = _sendBuffer.Write(data);
        if (n > 0 && IsConnected) { Output(); AfterCall(); }
        return n;
    }

    /// <summary>Zero-copy sends shorter than this are copied into the send buffer instead (see <see cref="TcpSocketOptions.ZeroCopyThreshold"/>).</summary>
    public int ZeroCopyThreshold => _options.ZeroCopyThreshold;

    /// <summary>
    /// One piece of a zero-copy send: queues as much of <paramref name="data"/> as fits, by
    /// reference (the stack reads the caller's memory until the peer acknowledges it; segments and
    /// retransmissions copy from it straight into frames), or copied into the send buffer when
    /// <paramref name="copy"/>. A reference shorter than the threshold is not taken while more
    /// than that remains, so lent memory comes in few, large pieces. Returns the bytes taken; end
    /// the send with <see cref="EndZeroCopySend"/>.
    /// </summary>
    public int SendReferenced(ReadOnlyMemory<byte> data, bool copy)
    {
        if (Error != TcpError.None) ThrowFailed();
        if (!CanSend) throw new InvalidOperationException($"cannot send in {State}{(_finQueued ? " after shutdown" : "")}");
        int n;
        if (copy) n = _sendBuffer.Write(data.Span);
        else if (_sendBuffer.Free < Math.Min(data.Length, ZeroCopyThreshold)) n = 0;
        else n = _sendBuffer.Reference(data, null);
        if (n > 0 && IsConnected) { Output(); AfterCall(); }
        return n;
    }

    /// <summary>
    /// Ends a zero-copy send whose bytes <see cref="SendReferenced"/> queued: it gets the next
    /// number, and its completion (with <paramref name="owner"/> disposed) follows the
    /// acknowledgment of its last byte, or the end of the connection. Call it only when bytes were taken.
    /// </summary>
    public uint EndZeroCopySend(bool copied, IDisposable? owner = null)
    {
        uint id = _zeroCopyNext++;
        _sendBuffer.MarkSend(id, copied, owner);
        return id;
    }

    /// <summary>
    /// Bytes in front of the payload in a loan buffer: Ethernet, IPv4 and this connection's TCP
    /// header on data segments (20, and 12 for timestamps). Fixed once the connection is open.
    /// </summary>
    public int LoanHeadroom => 14 + 20 + 20 + (_tsOk ? 12 : 0);

    /// <summary>Payload bytes one loan buffer carries: one full segment (0 when the device has no loan buffers).</summary>
    public int LoanCapacity => _table.Loans is { LoanBufferSize: > 0 } l && IsConnected ? Math.Min(l.LoanBufferSize - LoanHeadroom, PayloadLimitNoSack) : 0;

    private int PayloadLimitNoSack => _mss;

    /// <summary>
    /// A loan buffer of the device for the application to fill (<see cref="LoanPayload"/>) and
    /// send with <see cref="SendLoan"/>, with no copy at all: the buffer becomes the frame. False
    /// when the device has none or all are taken.
    /// </summary>
    public bool TryRentLoan(out uint buffer)
    {
        buffer = 0;
        return LoanCapacity > 0 && _table.Loans!.TryRentLoan(out buffer);
    }

    /// <summary>The payload part of a loan buffer: <see cref="LoanCapacity"/> bytes after the headroom.</summary>
    public Span<byte> LoanPayload(uint buffer) => _table.Loans!.LoanBuffer(buffer).Slice(LoanHeadroom, LoanCapacity);

    /// <summary>Gives a rented buffer back for good (it must not be queued).</summary>
    public void ReturnLoan(uint buffer) => _table.Loans!.ReturnLoan(buffer);

    /// <summary>
    /// One zero-copy send piece from a loan buffer: queues its first <paramref name="length"/>
    /// payload bytes whole, or nothing (0) when the send buffer has no room. The connection sends
    /// them as one segment whose frame is the buffer (headers written into its headroom), and
    /// retransmits from it the same way. The buffer is the application's again only after the
    /// send's completion, which waits for both the peer's acknowledgment and the port handing
    /// the buffer back. End the send with <see cref="EndZeroCopySend"/>.
    /// </summary>
    public int SendLoan(uint buffer, int length)
    {
        if (Error != TcpError.None) ThrowFailed();
        if (!CanSend) throw new InvalidOperationException($"cannot send in {State}{(_finQueued ? " after shutdown" : "")}");
        if ((uint)length > (uint)LoanCapacity || length == 0) throw new ArgumentOutOfRangeException(nameof(length), length, $"a loan buffer carries 1..{LoanCapacity} payload bytes here");
        int n = _sendBuffer.ReferenceLoan(_table.Loans!, buffer, LoanHeadroom, length);
        if (n > 0 && IsConnected) { Output(); AfterCall(); }
        return n;
    }

    /// <summary>Replaces references to the caller's memory not yet acknowledged with the stack's own copies (when nobody will read completions any more).</summary>
    public void CopyLentMemory() => _sendBuffer.CopyLent();

    /// <summary>Completions waiting to be read (coalesced ranges of send numbers).</summary>
    public bool TryTakeZeroCopyCompletion(out ZeroCopyCompletion completion) => _sendBuffer.Completions.TryTake(out completion);

    /// <summary>Zero-copy sends not yet completed.</summary>
    public int ZeroCopyOutstanding => _sendBuffer.PendingSends;
    /// <summary>Bytes of the caller's memory the connection still references.</summary>
    public long ZeroCopyLentBytes => _sendBuffer.LentBytes;
    /// <summary>Completions are waiting to be read.</summary>
    public bool HasZeroCopyCompletions => !_sendBuffer.Completions.IsEmpty;

    /// <summary>Copies received bytes out; 0 when none are waiting (see <see cref="ReceiveFinished"/>).</summary>
    public int Receive(Span<byte> buffer)
    {
        int n = _recvBuffer.Read(buffer);
        if (n > 0) AfterRead(n);
        return n;
    }

    /// <summary>The waiting bytes as two spans, for readers that parse in place; then <see cref="Consume"/>.</summary>
    public void PeekReceived(out ReadOnlySpan<byte> first, out ReadOnlySpan<byte> second) => _recvBuffer.GetReadable(out first, out second);

    public void Consume(int count)
    {
        _recvBuffer.Consume(count);
        if (count > 0) AfterRead(count);
    }

    /// <summary>Shuts the sending side: a FIN follows the queued data (RFC 9293 §3.10.4).</summary>
    public void Shutdown()
    {
        switch (State)
        {
            case TcpState.SynSent:
                Finish(TcpError.None);
                break;
            case TcpState.SynReceived or TcpState.Established:
                _finQueued = true;
                State = TcpState.FinWait1;
                Output(); AfterCall();
                break;
            case TcpState.CloseWait:
                _finQueued = true;
                State = TcpState.LastAck;
                Output(); AfterCall();
                break;
        }
    }

    /// <summary>
    /// Closes: like <see cref="Shutdown"/>, except that unread received data aborts the connection
    /// with a RST so the peer learns it was not read (RFC 2525 §2.17).
    /// </summary>
    public void Close()
    {
        if (!_recvBuffer.IsEmpty && State is TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.FinWait2) Abort();
        else Shutdown();
    }

    /// <summary>Resets the connection at once (RFC 9293 §3.10.5): a RST, buffers discarded.</summary>
    public void Abort()
    {
        if (State is TcpState.Closed or TcpState.TimeWait) { if (State == TcpState.TimeWait) Finish(TcpError.None); return; }
        if (State != TcpState.SynSent) SendControl(SndNxt, RcvNxt, TcpFlags.Rst | TcpFlags.Ack);
        Finish(TcpError.Aborted);
        Flush();
    }

    private void ThrowFailed() => throw new InvalidOperationException(Error switch
    {
        TcpError.Refused => $"connection to {_remote} was refused",
        TcpError.Reset => $"connection to {_remote} was reset by the peer",
        TcpError.TimedOut => $"connection to {_remote} timed out",
        _ => $"connection to {_remote} was aborted",
    });

    /// <summary>The user read <paramref name="n"/> bytes: autotune the window and offer more when worthwhile.</summary>
    private void AfterRead(int n)
    {
        _rcvTuneCopied += n;
        long now = Now.Nanoseconds, rtt = Math.Max(_rtt.HasSample ? _rtt.Smoothed.Nanoseconds : 0, 1_000_000);
        if (now - _rcvTuneStart >= rtt)
        {
            // Dynamic right-sizing: a reader that drains half the window per round trip gets twice as much.
            if (_rcvTuneCopied * 2 >= _rcvWndLimit) _rcvWndLimit = (int)Math.Min(_recvBuffer.Capacity, Math.Max(_rcvWndLimit, 2 * _rcvTuneCopied));
            _rcvTuneStart = now;
            _rcvTuneCopied = 0;
        }
        if (State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2)
        {
            uint edge = RcvNxt + (uint)OfferableWindow();
            // Tell the peer when the window grew by two segments or half the buffer (RFC 9293 §3.8.6.2.2).
            if (Seq.Gt(edge, _rcvAdvEdge) && edge - _rcvAdvEdge >= Math.Min(_recvBuffer.Capacity / 2, 2 * _mss))
            {
                SendAck();
                AfterCall();
            }
        }
    }

    private void Raise(SocketEvents e) => _pendingEvents |= e;

    /// <summary>Hands accumulated events to the observer.</summary>
    internal void Notify()
    {
        if (_pendingEvents == SocketEvents.None) return;
        var e = _pendingEvents;
        _pendingEvents = SocketEvents.None;
        Observer?.OnSocketEvents(this, e);
    }

    private void Flush() => _table.Flush();

    /// <summary>After a call from the owner: timers follow what was sent, frames go out.</summary>
    private void AfterCall()
    {
        if (State != TcpState.Closed) Reschedule();
        Flush();
    }

    /// <summary>Enters CLOSED (or TIME_WAIT's end) and gives the connection's slot back.</summary>
    private void Finish(TcpError error)
    {
        if (error != TcpError.None && Error == TcpError.None) Error = error;
        if (error is TcpError.Reset or TcpError.Aborted or TcpError.Refused or TcpError.TimedOut) _recvBuffer.Consume(_recvBuffer.Count);
        _sendBuffer.DropAll(); // nothing is sent again: lent memory goes back, zero-copy sends complete
        State = TcpState.Closed;
        _rtoAt = _ackAt = _persistAt = _keepAt = _closeAt = 0;
        _table.Release(this);
        Raise(SocketEvents.Closed | SocketEvents.Readable | SocketEvents.Writable);
        Notify();
    }

    public override string ToString() => $"{_local} -> {_remote} {State}";

    /// <summary>The connection's variables, for debugging and `netloom host` diagnostics.</summary>
    public string Describe() =>
        $"{this} una={SndUna - Iss} nxt={SndNxt - Iss} max={SndMax - Iss} wnd={SndWnd} cwnd={_cc.Cwnd} ssthresh={_cc.Ssthresh} queued={_sendBuffer.Count} " +
        $"rcvnxt={RcvNxt - Irs} adv={_rcvAdvEdge - RcvNxt} avail={_recvBuffer.Count} ooo={_outOfOrder.Count} recovery={_inRecovery} dup={_dupAcks} sacked={_scoreboard.SackedBytes} " +
        $"fin(q={_finQueued} sent={_finSent} rcvd={_finReceived}) rto={_rtoAt} persist={_persistAt} ack={_ackAt} due={_timerDue} retries={_retries}";
}
