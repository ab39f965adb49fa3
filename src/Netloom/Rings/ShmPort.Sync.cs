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
            uint head = tx.Head;
            if (head >= n) return; // the user's own mistake; nothing is sent
            uint prod = _txProd;
            uint pending = (head - prod + n) % n;
            uint free = (cons - prod - 1 + n) % n;
            uint count = Math.Min(pending, free);
            uint max = (uint)_region.BufferSize;
            long bytes = 0, invalid = 0;
            var priv = tx.Slots;
            for (uint i = 0; i < count; i++)
            {
                // Slot i of this direction always holds buffer base + i: only the length crosses.
                uint len = priv[prod].Length;
                if (len == 0 || len > max) { invalid++; len = 0; } // the receiver drops zero-length slots
                _txSharedSlots[prod].Length = (ushort)len;
                _txSharedSlots[prod].BufferIndex = 0;
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
            while (s != prod)
            {
                uint next = pt + 1 == n ? 0 : pt + 1;
                if (next == _rxHwCur) break; // private ring full: only a lying producer gets here
                uint len = Volatile.Read(ref _rxSharedSlots[s].Length); // read once: the peer may change it
                if (len == 0 || len > max)
                {
                    invalid++;
                }
                else
                {
                    priv[pt].BufferIndex = _rxBufferBase + s;
                    priv[pt].Length = (ushort)len;
                    priv[pt].Flags = SlotFlags.None;
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
