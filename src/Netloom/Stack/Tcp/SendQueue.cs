namespace Netloom.Stack;

/// <summary>
/// A connection's send queue: the bytes from SND.UNA's side of the buffer to the last byte the
/// application queued, in order. A byte lives either in the connection's own ring (written with
/// <see cref="Write"/>, copied) or in memory the application lent (<see cref="Reference"/>, not
/// copied: segments, first sends and retransmissions alike, read it straight into the frame). The
/// queue holds lent memory until <see cref="Consume"/> passes its last byte (the peer acknowledged
/// it) or the connection ends (<see cref="DropAll"/>); then it drops the reference, disposes the
/// owner and completes the zero-copy sends that ended there, in the order they were made.
/// Capacity bounds copied and lent bytes together, so a peer that stops reading stops the
/// application, whichever way it sends. Not thread-safe: the stack lock guards it.
/// </summary>
internal sealed class SendQueue : ILoanHolder
{
    private readonly ByteRing _ring;
    private long _ringHead;                 // ring position of the ring's first byte (grows with consumption)
    private long _ringTail;                 // ring position after its last byte
    private Chunk[] _chunks = new Chunk[8]; // circular, oldest first
    private int _first, _chunkCount, _findHint;
    private long _head, _tail;              // queue positions: first unacknowledged byte, end of queued data
    private Pending[] _pending = new Pending[8];
    private int _pendingFirst, _pendingCount;
    private ILoanDevice? _loans;            // where loan runs' buffers live (set by the first one)

    /// <summary>A run of bytes: in the ring from <see cref="RingStart"/>, or in lent <see cref="Memory"/>.</summary>
    private struct Chunk
    {
        public long Start;                  // queue position of its first byte
        public int Length;
        public bool Lent;
        public long RingStart;
        public ReadOnlyMemory<byte> Memory;
        public IDisposable? Owner;
        public uint Loan;                   // non-zero: a loan buffer of the device; the payload starts Headroom bytes in
        public int Headroom;
    }

    /// <summary>A zero-copy send waiting for the acknowledgment of its last byte.</summary>
    private readonly record struct Pending(long End, uint Id, bool Copied, IDisposable? Owner);

    public SendQueue(int capacity)
    {
        _ring = new ByteRing(capacity);
    }

    public int Capacity => _ring.Capacity;
    public int Count => (int)(_tail - _head);
    /// <summary>
    /// Room for more bytes. Lent memory counts until it is released, and a lent piece is
    /// released whole, so the acknowledged front of the oldest piece still counts: the memory the
    /// queue references never exceeds <see cref="Capacity"/>.
    /// </summary>
    public int Free => Capacity - Count - HeldAcknowledged;

    private int HeldAcknowledged => _chunkCount > 0 && _chunks[_first].Lent ? (int)(_head - _chunks[_first].Start) : 0;
    public bool IsEmpty => _tail == _head;
    /// <summary>Bytes of lent memory still referenced (not yet acknowledged).</summary>
    public long LentBytes { get; private set; }
    /// <summary>Zero-copy sends waiting for their last byte's acknowledgment.</summary>
    public int PendingSends => _pendingCount;
    /// <summary>Where completions go once their bytes are acknowledged.</summary>
    public ZeroCopyLog Completions { get; } = new();

    /// <summary>Copies as much of <paramref name="data"/> as fits into the ring; returns the bytes taken.</summary>
    public int Write(ReadOnlySpan<byte> data)
    {
        int n = Math.Min(data.Length, Free);
        if (n == 0) return 0;
        _ring.Write(data[..n]);
        ref var last = ref Last();
        if (_chunkCount > 0 && !last.Lent && last.Start + last.Length == _tail) last.Length += n;
        else Push(new Chunk { Start = _tail, Length = n, RingStart = _ringTail });
        _ringTail += n;
        _tail += n;
        return n;
    }

    /// <summary>
    /// Queues as much of <paramref name="data"/> as fits by reference: the queue reads it until
    /// the peer acknowledges it. <paramref name="owner"/> (if any, and only when every byte was
    /// taken) is disposed once no byte of this piece is referenced any more; zero-copy sends pass
    /// their owner to <see cref="MarkSend"/> instead. Returns the bytes taken.
    /// </summary>
    public int Reference(ReadOnlyMemory<byte> data, IDisposable? owner)
    {
        int n = Math.Min(data.Length, Free);
        if (n == 0) return 0;
        Push(new Chunk { Start = _tail, Length = n, Lent = true, Memory = data[..n], Owner = n == data.Length ? owner : null });
        _tail += n;
        LentBytes += n;
        return n;
    }

    /// <summary>
    /// Queues loan buffer <paramref name="buffer"/>'s <paramref name="length"/> payload bytes,
    /// which start <paramref name="headroom"/> bytes into it, whole or not at all (returns 0 when
    /// there is no room). The run goes out as one segment whose frame is the buffer itself
    /// (<see cref="TryLoanRun"/>); it is released (the application may write the buffer again)
    /// only once it is both acknowledged and handed back by the port.
    /// </summary>
    public int ReferenceLoan(ILoanDevice loans, uint buffer, int headroom, int length)
    {
        if (length <= 0 || length > Free) return 0;
        _loans = loans;
        Push(new Chunk { Start = _tail, Length = length, Lent = true, Loan = buffer, Headroom = headroom });
        _tail += length;
        LentBytes += length;
        return length;
    }

    /// <summary>
    /// The most bytes a segment starting <paramref name="offset"/> past the head may carry so that
    /// no loan run shares a segment with other bytes: up to the end of the run it starts in, when
    /// that run or the next is a loan run; otherwise no limit.
    /// </summary>
    public int SegmentLimit(int offset)
    {
        long pos = _head + offset;
        int i = Find(pos);
        if (i >= _chunkCount) return int.MaxValue;
        ref var c = ref _chunks[(_first + i) % _chunks.Length];
        int toEnd = (int)(c.Start + c.Length - pos);
        if (c.Loan != 0) return toEnd;
        if (i + 1 < _chunkCount && _chunks[(_first + i + 1) % _chunks.Length].Loan != 0) return toEnd;
        return int.MaxValue;
    }

    /// <summary>The length of the loan run starting exactly <paramref name="offset"/> past the head, or 0.</summary>
    public int LoanRunAt(int offset)
    {
        long pos = _head + offset;
        int i = Find(pos);
        if (i >= _chunkCount) return 0;
        ref var c = ref _chunks[(_first + i) % _chunks.Length];
        return c.Loan != 0 && c.Start == pos ? c.Length : 0;
    }

    /// <summary>
    /// True when the <paramref name="length"/> bytes at <paramref name="offset"/> are exactly one
    /// loan run still in its buffer: the segment can be sent as that buffer, headers written in
    /// front of the payload.
    /// </summary>
    public bool TryLoanRun(int offset, int length, out uint buffer, out int headroom)
    {
        long pos = _head + offset;
        int i = Find(pos);
        if (i < _chunkCount)
        {
            ref var c = ref _chunks[(_first + i) % _chunks.Length];
            if (c.Loan != 0 && c.Memory.IsEmpty && c.Start == pos && c.Length == length)
            {
                buffer = c.Loan;
                headroom = c.Headroom;
                return true;
            }
        }
        buffer = 0;
        headroom = 0;
        return false;
    }

    /// <summary>
    /// Ends a zero-copy send at the current end of the queue: <paramref name="id"/> completes when
    /// every byte queued so far has been acknowledged (or the connection ended).
    /// </summary>
    public void MarkSend(uint id, bool copied, IDisposable? owner = null)
    {
        if (_pendingCount == 0 && _chunkCount == 0) { owner?.Dispose(); Completions.Complete(id, copied); return; }
        if (_pendingCount == _pending.Length) Grow(ref _pending, _pendingFirst, _pendingCount, out _pendingFirst);
        _pending[(_pendingFirst + _pendingCount) % _pending.Length] = new Pending(_tail, id, copied, owner);
        _pendingCount++;
    }

    /// <summary>Copies <paramref name="destination"/>.Length bytes starting <paramref name="offset"/> past the head, without consuming them.</summary>
    public void Peek(int offset, Span<byte> destination)
    {
        if ((uint)offset > (uint)Count || destination.Length > Count - offset) ThrowBeyond(offset, destination.Length);
        long pos = _head + offset;
        int i = Find(pos);
        while (!destination.IsEmpty)
        {
            ref var c = ref _chunks[(_first + i) % _chunks.Length];
            int within = (int)(pos - c.Start);
            int n = Math.Min(destination.Length, c.Length - within);
            if (c.Loan != 0 && c.Memory.IsEmpty) _loans!.LoanBuffer(c.Loan).Slice(c.Headroom + within, n).CopyTo(destination);
            else if (c.Lent) c.Memory.Span.Slice(within, n).CopyTo(destination);
            else _ring.Peek((int)(c.RingStart + within - _ringHead), destination[..n]);
            destination = destination[n..];
            pos += n;
            i++;
        }
    }

    private void ThrowBeyond(int offset, int length) =>
        throw new ArgumentOutOfRangeException(nameof(offset), $"read of {length} at {offset} beyond the {Count} queued bytes");

    /// <summary>
    /// The run holding queue position <paramref name="pos"/>. Segments go out in order, so the
    /// search starts at the run the last one was found in (<see cref="_findHint"/>, an index from
    /// the oldest run), and goes back to the oldest only for a retransmission.
    /// </summary>
    private int Find(long pos)
    {
        int start = _findHint < _chunkCount && _chunks[(_first + _findHint) % _chunks.Length].Start <= pos ? _findHint : 0;
        for (int i = start; i < _chunkCount; i++)
        {
            ref var c = ref _chunks[(_first + i) % _chunks.Length];
            if (pos < c.Start + c.Length) return _findHint = i;
        }
        return _chunkCount;
    }

    /// <summary>The peer acknowledged <paramref name="count"/> more bytes: free ring space, release lent memory, complete sends.</summary>
    public void Consume(int count)
    {
        if ((uint)count > (uint)Count) throw new ArgumentOutOfRangeException(nameof(count));
        long end = _head + count;
        for (int i = 0; i < _chunkCount; i++)
        {
            ref var c = ref _chunks[(_first + i) % _chunks.Length];
            if (c.Start >= end) break;
            long cEnd = c.Start + c.Length;
            long upTo = Math.Min(cEnd, end);
            if (!c.Lent && upTo > _head)
            {
                long ringTo = c.RingStart + (upTo - c.Start);
                _ring.Consume((int)(ringTo - _ringHead));
                _ringHead = ringTo;
            }
            // A copied run shrinks from the front as it is acknowledged, so a stream of small
            // writes merged into one run never grows its length past the queue.
            if (cEnd > end && !c.Lent)
            {
                c.RingStart += end - c.Start;
                c.Length = (int)(cEnd - end);
                c.Start = end;
            }
        }
        _head = end;
        ReleaseDone();
    }

    /// <summary>The device handed a loan buffer back: an acknowledged run waiting for it can go now.</summary>
    public void LoanReturned(uint buffer) => ReleaseDone();

    /// <summary>
    /// Drops the acknowledged runs from the front, except a loan run the port still holds (and
    /// the runs behind it), and completes the sends whose every byte is released.
    /// </summary>
    private void ReleaseDone()
    {
        while (_chunkCount > 0)
        {
            ref var c = ref _chunks[_first];
            if (c.Start + c.Length > _head) break;
            if (c.Loan != 0 && _loans!.IsAtPort(c.Loan)) break; // acknowledged, but the peer's side may still read it
            Release(ref c);
            _first = (_first + 1) % _chunks.Length;
            _chunkCount--;
            if (_findHint > 0) _findHint--; // indexes count from the oldest run
        }
        while (_pendingCount > 0 && _pending[_pendingFirst].End <= _head && (_chunkCount == 0 || _chunks[_first].Start >= _pending[_pendingFirst].End))
            CompleteFirst();
    }

    /// <summary>
    /// Copies the unacknowledged part of every lent piece into memory of the queue's own, so the
    /// lender may reuse its memory at once (a socket closed before its sends completed). The
    /// owners stay with their sends and are disposed at completion as before.
    /// </summary>
    public void CopyLent()
    {
        for (int i = 0; i < _chunkCount; i++)
        {
            ref var c = ref _chunks[(_first + i) % _chunks.Length];
            if (!c.Lent || (c.Memory.Length == 0 && c.Loan == 0)) continue;
            int from = (int)Math.Max(0, _head - c.Start); // the acknowledged front is never read again
            if (from >= c.Length) continue;
            var own = new byte[c.Length];
            if (c.Loan != 0 && c.Memory.IsEmpty) _loans!.LoanBuffer(c.Loan).Slice(c.Headroom + from, c.Length - from).CopyTo(own.AsSpan(from));
            else c.Memory.Span[from..].CopyTo(own.AsSpan(from));
            c.Memory = own;
        }
    }

    /// <summary>The connection ended: every lent buffer is released and every send completed (the bytes will never be sent again).</summary>
    public void DropAll()
    {
        Consume(Count);
    }

    private void CompleteFirst()
    {
        var p = _pending[_pendingFirst];
        _pending[_pendingFirst] = default;
        _pendingFirst = (_pendingFirst + 1) % _pending.Length;
        _pendingCount--;
        p.Owner?.Dispose();
        Completions.Complete(p.Id, p.Copied);
    }

    private void Release(ref Chunk c)
    {
        if (c.Lent)
        {
            LentBytes -= c.Length;
            var owner = c.Owner;
            c = default;
            owner?.Dispose();
        }
        else c = default;
    }

    private ref Chunk Last() => ref _chunks[(_first + Math.Max(0, _chunkCount - 1)) % _chunks.Length];

    private void Push(in Chunk c)
    {
        if (_chunkCount == _chunks.Length) Grow(ref _chunks, _first, _chunkCount, out _first);
        _chunks[(_first + _chunkCount) % _chunks.Length] = c;
        _chunkCount++;
    }

    private static void Grow<T>(ref T[] items, int first, int count, out int newFirst)
    {
        var grown = new T[items.Length * 2];
        for (int i = 0; i < count; i++) grown[i] = items[(first + i) % items.Length];
        items = grown;
        newFirst = 0;
    }
}
