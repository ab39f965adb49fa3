using Netloom.Interop;
using static Netloom.Interop.Xsk;

namespace Netloom.Rings;

internal sealed unsafe partial class XdpPort
{
    /// <summary>How many times one TX sync kicks the kernel (sendto) while its TX ring still holds frames; copy mode sends at most 32 per kick.</summary>
    private const int MaxKicks = 64;

    private uint _fillPublished; // the fill producer index the kernel has seen

    /// <summary>
    /// The buffer whose first byte is at UMEM offset <paramref name="offset"/>, or 0 when no
    /// buffer starts there (a descriptor we never produced).
    /// </summary>
    private uint BufferAt(ulong offset)
    {
        ulong stride = (ulong)Pool.Stride;
        ulong b = offset / stride;
        return b * stride == offset && b != 0 && b < (ulong)Pool.Count ? (uint)b : 0;
    }

    /// <summary>An RX descriptor's address is a UMEM offset, plus (unaligned mode) an offset in its top 16 bits.</summary>
    private static ulong DataOffset(ulong addr) => (addr & ((1UL << XSK_UNALIGNED_BUF_OFFSET_SHIFT) - 1)) + (addr >> XSK_UNALIGNED_BUF_OFFSET_SHIFT);

    public override void TxSync()
    {
        var tx = _tx;
        uint n = (uint)tx.Size, head = tx.Head, k = _txHwCur;
        if (head >= n) return;
        long invalid = 0;

        // 1. Buffers the kernel has sent come back on the completion ring: into the stash.
        uint done = _completion.Available();
        for (uint i = 0; i < done; i++)
        {
            uint b = BufferAt(_completion.Address(_completion.Local++));
            if (b != 0 && _stashCount < _stash.Length) _stash[_stashCount++] = b;
            else invalid++; // an address we never put on the TX ring
        }
        if (done != 0) _completion.PublishConsumer();

        // 2. Slots the user handed over go on the TX ring; each slot gets a stash buffer in place of the one sent.
        long sent = 0, bytes = 0;
        uint room = _txq.Free();
        while (k != head && room != 0 && _stashCount != 0)
        {
            ref Slot s = ref tx.Slots[k];
            // IsSendable: a buffer of the pool and 1 to 2048 bytes, so never longer than the UMEM frame.
            if (Pool.IsSendable(s))
            {
                ref Desc d = ref _txq.Descriptor(_txq.Local++);
                d.Addr = (ulong)s.BufferIndex * (ulong)Pool.Stride;
                d.Len = s.Length;
                d.Options = 0;
                s.BufferIndex = _stash[--_stashCount];
                s.Flags = SlotFlags.BufferChanged;
                room--;
                sent++;
                bytes += s.Length;
            }
            else invalid++;
            k = k + 1 == n ? 0 : k + 1;
        }
        if (sent != 0) _txq.PublishProducer();

        // 3. Copy mode sends in the sendto call, at most 32 frames per call; zero-copy drivers
        //    send on their own unless the ring asks for a wake-up.
        long drops = 0;
        for (int kick = 0; kick < MaxKicks && _txq.Pending() != 0 && (!ZeroCopy || _txq.NeedsWakeup); kick++)
        {
            if (SendTo(_fd, null, 0, MSG_DONTWAIT, null, 0) >= 0) continue;
            int e = Libc.Errno;
            if (e is Errno.EAGAIN) continue;          // the batch limit: more to send
            if (e is Errno.EBUSY or Errno.ENOBUFS) break; // the device queue is full: try at the next sync
            drops++;                                  // ENETDOWN, ENXIO: the link went away
            break;
        }

        _txHwCur = k;
        tx.SetTail((k + n - 1) % n);
        tx.Counters.Record(sent, bytes, drops, invalid);
    }

    public override void RxSync()
    {
        var rx = _rx;
        uint n = (uint)rx.Size, head = rx.Head, t = rx.Tail;
        if (head >= n) return;
        long invalid = 0;

        // 1. RX slots the user released: their buffers go on the fill ring for the kernel to write.
        uint k = _rxFree, room = _fill.Free();
        while (k != head)
        {
            ref Slot s = ref rx.Slots[k];
            if (Pool.IsValid(s.BufferIndex))
            {
                if (room == 0) break; // the fill ring is full: the rest go at the next sync
                _fill.Address(_fill.Local++) = FillAddress(Pool, s.BufferIndex);
                room--;
            }
            else invalid++; // the user's swap left no buffer of the pool here: nothing to give back
            s.BufferIndex = 0;
            k = k + 1 == n ? 0 : k + 1;
        }
        _rxFree = k;

        // 2. Received frames: each descriptor's buffer goes into the next RX slot, up to the
        //    slot before the first one whose buffer has not gone back yet.
        long got = 0, bytes = 0;
        uint ready = _rxq.Available(), used = 0;
        while (used < ready && (t + 1 == n ? 0 : t + 1) != _rxFree)
        {
            ref Desc d = ref _rxq.Descriptor(_rxq.Local + used++);
            uint b = BufferAt(DataOffset(d.Addr));
            uint len = d.Len;
            if (b == 0) { invalid++; continue; }       // outside the pool, or not at a buffer's start: the buffer is lost to the port
            if (len == 0 || len > (uint)Pool.BufferSize)
            {
                invalid++;                             // longer than the buffer: never read; the buffer goes straight back
                if (room != 0) { _fill.Address(_fill.Local++) = FillAddress(Pool, b); room--; }
                continue;
            }
            ref Slot s = ref rx.Slots[t];
            s.BufferIndex = b;
            s.Length = (ushort)len;
            s.Flags = SlotFlags.BufferChanged;
            got++;
            bytes += len;
            t = t + 1 == n ? 0 : t + 1;
        }
        if (used != 0)
        {
            _rxq.Local += used;
            _rxq.PublishConsumer();
        }
        // Publish only a moved index: a store, even of the same value, takes the cache line from
        // the core where the kernel reads it (a busy-polling switch syncs millions of times a second).
        if (_fill.Local != _fillPublished)
        {
            _fill.PublishProducer();
            _fillPublished = _fill.Local;
            if (_fill.NeedsWakeup) RecvFrom(_fd, null, 0, MSG_DONTWAIT, null, null);
        }
        rx.SetTail(t);
        rx.Counters.Record(got, bytes, invalid: invalid);
        if ((rx.Counters.Syncs & 4095) == 0) ReadKernelStatistics();
    }

    /// <summary>
    /// Sleeps in poll(2) on the socket. RX: until the RX ring has frames. TX: until the kernel's
    /// TX ring has room; but when the stash is empty the slots wait for buffers from the
    /// completion ring, for which poll has no event, so the wait kicks the kernel and sleeps a
    /// millisecond instead.
    /// </summary>
    protected override bool Block(bool rx, long timeoutNs, bool interruptible)
    {
        if (rx) return PollDescriptor(_fd, rx: true, timeoutNs);
        if (_txq.Pending() != 0) SendTo(_fd, null, 0, MSG_DONTWAIT, null, 0);
        if (_stashCount != 0) return PollDescriptor(_fd, rx: false, timeoutNs);
        Thread.Sleep(1);
        return true;
    }

    /// <summary>
    /// For tests: puts a descriptor on the RX ring as the kernel would (entry, then producer), so a
    /// test can hand RxSync one the kernel should never write. The kernel's own next frame then
    /// lands on the same entry and is lost; use it on a quiet link.
    /// </summary>
    internal void InjectRxDescriptor(ulong addr, uint len)
    {
        uint p = Volatile.Read(ref *_rxq.Producer);
        ref Desc d = ref _rxq.Descriptor(p);
        d.Addr = addr;
        d.Len = len;
        Volatile.Write(ref *_rxq.Producer, p + 1);
    }

    /// <summary>Every buffer the port can find in its slots, stash and the four rings (at dispose, after the program is detached).</summary>
    private uint[] HeldBuffers()
    {
        var held = new HashSet<uint>(); // a set: the kernel publishes its fill consumer late, so an entry may show twice
        for (uint i = 0; i < (uint)_tx.Size; i++) if (Pool.IsValid(_tx.Slots[i].BufferIndex)) held.Add(_tx.Slots[i].BufferIndex);
        foreach (uint b in _stash.AsSpan(0, _stashCount)) held.Add(b);
        // RX slots from the first not yet returned to the fill ring up to tail hold buffers.
        for (uint i = _rxFree; i != _rx.Tail; i = _rx.Next(i)) if (Pool.IsValid(_rx.Slots[i].BufferIndex)) held.Add(_rx.Slots[i].BufferIndex);
        // Each ring between its two indexes, never more than one ring's worth (the indexes are shared memory).
        for (uint i = Volatile.Read(ref *_fill.Consumer), c = 0; i != _fill.Local && c < _fill.Size; i++, c++) Add(held, _fill.Address(i) + XDP_PACKET_HEADROOM);
        for (uint i = _rxq.Local, c = 0; i != Volatile.Read(ref *_rxq.Producer) && c < _rxq.Size; i++, c++) Add(held, DataOffset(_rxq.Descriptor(i).Addr));
        for (uint i = _completion.Local, c = 0; i != Volatile.Read(ref *_completion.Producer) && c < _completion.Size; i++, c++) Add(held, _completion.Address(i));
        for (uint i = Volatile.Read(ref *_txq.Consumer), c = 0; i != _txq.Local && c < _txq.Size; i++, c++) Add(held, _txq.Descriptor(i).Addr);
        return [.. held];

        void Add(HashSet<uint> set, ulong offset)
        {
            uint b = BufferAt(offset);
            if (b != 0) set.Add(b);
        }
    }
}
