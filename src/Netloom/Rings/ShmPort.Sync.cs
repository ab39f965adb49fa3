namespace Netloom.Rings;

internal sealed unsafe partial class ShmPort
{
    // Syncs and the control thread's session reset exclude each other; uncontended, this costs
    // one lock per batch, not per packet.
    private readonly Lock _syncLock = new();

    protected override (nint Word, nint Flag) RxWaitWord => ((nint)(&_rxShared->Tail), (nint)(&_rxShared->UserWaiting));
    protected override (nint Word, nint Flag) TxWaitWord => ((nint)(&_txShared->Head), (nint)(&_txShared->BackendWaiting));

    /// <summary>Both private rings back to their start: TX all free, RX empty.</summary>
    private void ResetPrivate()
    {
        _tx.Head = _tx.Cur = 0;
        _tx.SetTail(_size - 1);
        _rx.Head = _rx.Cur = 0;
        _rx.SetTail(0);
        _txProd = _rxHwCur = _rxScan = _rxPrivTail = 0;
        _txCons = 0;
        _txReturnAll = true; // the peer that held them is gone (or this is the start): they are all back
    }

    /// <summary>Loan buffers of this side's direction (0 unless the server's options asked for some).</summary>
    internal int LoanCount => (int)_loans;
    /// <summary>The first of this side's loan buffer indexes; the rest follow.</summary>
    internal uint LoanBase => _txLoanBase;
    /// <summary>A loan buffer of this side, whole (the frame starts at its first byte).</summary>
    internal Span<byte> LoanBuffer(uint index)
    {
        if (index - _txLoanBase >= _loans) throw new ArgumentOutOfRangeException(nameof(index), index, $"not one of this side's loan buffers ({_txLoanBase}..{_txLoanBase + _loans - 1})");
        return _region.Pool.Buffer(index);
    }

    /// <summary>
    /// Called on the syncing thread, inside a TX sync, for each loan buffer the peer has consumed:
    /// from then on nothing on the peer's side reads it (the completion ring of this port).
    /// </summary>
    internal Action<uint>? LoanReturned { get; set; }

    /// <summary>
    /// Queues loan buffer <paramref name="index"/> as the next TX frame, <paramref name="length"/>
    /// bytes from its start: the frame is the buffer, nothing is copied. False when the TX ring has
    /// no free slot (sync and retry). The buffer is the peer's to read until
    /// <see cref="LoanReturned"/> names it.
    /// </summary>
    internal bool TransmitLoan(uint index, int length, SlotFlags flags = SlotFlags.None)
    {
        if (index - _txLoanBase >= _loans) throw new ArgumentOutOfRangeException(nameof(index), index, "not one of this side's loan buffers");
        if (length <= 0 || length > _region.BufferSize) throw new ArgumentOutOfRangeException(nameof(length), length, $"a frame is 1..{_region.BufferSize} bytes");
        var tx = _tx;
        if (tx.IsEmpty) return false;
        uint head = tx.Head;
        tx[head].Length = (ushort)length;
        tx[head].Flags = flags;
        _txLoan[head] = index;
        tx.Release(1);
        return true;
    }

    /// <summary>Hands back the loan buffers in the slots the peer consumed since the last look.</summary>
    private void ReturnLoans(uint cons)
    {
        if (_loans == 0) return;
        var returned = LoanReturned;
        if (_txReturnAll)
        {
            _txReturnAll = false;
            for (uint i = 0; i < _size; i++)
                if (_txLoan[i] != 0) { uint b = _txLoan[i]; _txLoan[i] = 0; returned?.Invoke(b); }
            _txCons = cons;
            return;
        }
        for (uint p = _txCons; p != cons; p = p + 1 == _size ? 0 : p + 1)
        {
            uint b = _txLoan[p];
            if (b == 0) continue;
            _txLoan[p] = 0;
            returned?.Invoke(b);
        }
        _txCons = cons;
    }

    private void Fail(string reason)
    {
        _failure ??= reason;
        try { _peer?.Shutdown(System.Net.Sockets.SocketShutdown.Both); } catch (ObjectDisposedException) { }
    }

    public override void TxSync()
    {
        lock (_syncLock)
        {
            var tx = _tx;
            uint n = _size;
            uint cons = Volatile.Read(ref _txShared->Head); // written by the peer: untrusted
            if (cons >= n) { Fail($"peer wrote consumer index {cons}; the ring has {n} slots"); return; }
            ReturnLoans(cons);
            uint head = tx.Head;
            if (head >= n) return; // the user's own mistake; nothing is sent
            uint prod = _txProd;
            uint pending = (head - prod + n) % n;
            uint free = (cons - prod - 1 + n) % n;
            uint count = Math.Min(pending, free);
            uint max = (uint)_region.BufferSize;
            long bytes = 0, invalid = 0;
            var priv = tx.Slots;
            // Only the checksum flag crosses, and only when both ends declared the capability.
            var passed = _csumBoth ? SlotFlags.ChecksumPartial : SlotFlags.None;
            for (uint i = 0; i < count; i++)
            {
                // Slot i of this direction always holds buffer base + i: only the length crosses.
                uint len = priv[prod].Length;
                if (len == 0 || len > max) { invalid++; len = 0; } // the receiver drops zero-length slots
                _txSharedSlots[prod].Length = (ushort)len;
                _txSharedSlots[prod].BufferIndex = _txLoan[prod]; // 0: the slot's own buffer
                _txSharedSlots[prod].Flags = priv[prod].Flags & passed;
                bytes += len;
                prod = prod + 1 == n ? 0 : prod + 1;
            }
            if (count > 0)
            {
                Volatile.Write(ref _txShared->Tail, prod);
                WakeIfWaiting(&_txShared->UserWaiting);
            }
            _txProd = prod;
            tx.SetTail((cons + n - 1) % n);
            tx.Counters.Record(count - invalid, bytes, invalid: invalid);
        }
    }

    public override void RxSync()
    {
        lock (_syncLock)
        {
            var rx = _rx;
            uint n = _size;
            uint head = rx.Head;
            if (head != _rxHwCur && head < n)
            {
                // Hand back what the user read: up to the shared slot behind the first unread private slot.
                _rxHwCur = head;
                uint consumer = head == _rxPrivTail ? _rxScan : _origin[head];
                Volatile.Write(ref _rxShared->Head, consumer);
                WakeIfWaiting(&_rxShared->BackendWaiting);
            }
            uint prod = Volatile.Read(ref _rxShared->Tail); // written by the peer: untrusted
            if (prod >= n) { Fail($"peer wrote producer index {prod}; the ring has {n} slots"); return; }
            uint s = _rxScan, pt = _rxPrivTail, max = (uint)_region.BufferSize;
            long packets = 0, bytes = 0, invalid = 0;
            var priv = rx.Slots;
            // A frame marked partial is passed up marked only if this end declared it accepts one.
            var accepted = _csumLocal ? SlotFlags.ChecksumPartial : SlotFlags.None;
            while (s != prod)
            {
                uint next = pt + 1 == n ? 0 : pt + 1;
                if (next == _rxHwCur) break; // private ring full: only a lying producer gets here
                uint len = Volatile.Read(ref _rxSharedSlots[s].Length); // read once: the peer may change it
                uint lent = Volatile.Read(ref _rxSharedSlots[s].BufferIndex); // 0, or one of the peer's loan buffers
                if (len == 0 || len > max || (lent != 0 && lent - _rxLoanBase >= _loans))
                {
                    invalid++;
                }
                else
                {
                    priv[pt].BufferIndex = lent != 0 ? lent : _rxBufferBase + s;
                    priv[pt].Length = (ushort)len;
                    priv[pt].Flags = _rxSharedSlots[s].Flags & accepted; // read once, masked: only the one flag passes
                    _origin[pt] = s;
                    pt = next;
                    packets++;
                    bytes += len;
                }
                s = s + 1 == n ? 0 : s + 1;
            }
            _rxScan = s;
            _rxPrivTail = pt;
            rx.SetTail(pt);
            rx.Counters.Record(packets, bytes, invalid: invalid);
        }
    }
}
