namespace Netloom.Stack;

/// <summary>
/// A byte queue of power-of-two capacity for one connection's send or receive data.
/// Positions are 64-bit and only grow; the byte at position p lives at p &amp; mask. The producer
/// may write past the tail (out-of-order data) into space it then publishes with
/// <see cref="Advance"/>. Not thread-safe: the stack lock guards it.
/// The capacity is fixed, but the memory behind it is not taken all at once: the array starts
/// small and doubles when a write needs more (as the kernel's autotuned buffers grow), so a
/// connection that moves little holds little, and one that fills a large window holds at most
/// the capacity.
/// </summary>
internal sealed class ByteRing
{
    /// <summary>The array a ring starts with, when its capacity is larger.</summary>
    internal const int InitialAllocation = 16 << 10;
    private byte[] _buffer;
    private int _mask;
    private long _head, _tail;

    public ByteRing(int capacity, int initial = InitialAllocation)
    {
        if (capacity < 64 || (capacity & (capacity - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "ring capacity must be a power of two of at least 64");
        Capacity = capacity;
        int size = (int)Math.Min(capacity, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(64, initial)));
        _buffer = GC.AllocateUninitializedArray<byte>(size);
        _mask = size - 1;
    }

    /// <summary>The most bytes the ring holds (what windows are computed from).</summary>
    public int Capacity { get; }
    /// <summary>The bytes of memory behind the ring now (at most <see cref="Capacity"/>).</summary>
    public int Allocated => _buffer.Length;
    public int Count => (int)(_tail - _head);
    public int Free => Capacity - Count;
    public bool IsEmpty => _tail == _head;

    /// <summary>
    /// Makes the array hold positions up to <paramref name="end"/> bytes past the head: doubles it
    /// (within the capacity) and copies every byte it held, published or written ahead, to the
    /// same positions in the new one.
    /// </summary>
    private void Reserve(int end)
    {
        if (end <= _buffer.Length) return;
        int size = _buffer.Length;
        while (size < end) size *= 2;
        var old = _buffer;
        var grown = GC.AllocateUninitializedArray<byte>(size);
        int start = (int)(_head & _mask);
        int newMask = size - 1;
        // The old array read from the head's slot round to it again is positions head .. head+old.Length.
        Place(grown, (int)(_head & newMask), old.AsSpan(start));
        Place(grown, (int)((_head + (old.Length - start)) & newMask), old.AsSpan(0, start));
        _buffer = grown;
        _mask = newMask;
    }

    private static void Place(byte[] ring, int at, ReadOnlySpan<byte> data)
    {
        int first = Math.Min(data.Length, ring.Length - at);
        data[..first].CopyTo(ring.AsSpan(at));
        data[first..].CopyTo(ring);
    }

    /// <summary>Appends as much of <paramref name="data"/> as fits; returns the bytes taken.</summary>
    public int Write(ReadOnlySpan<byte> data)
    {
        int n = Math.Min(data.Length, Free);
        WriteAt(0, data[..n]);
        _tail += n;
        return n;
    }

    /// <summary>Copies <paramref name="data"/> to <paramref name="offset"/> bytes past the tail without publishing it.</summary>
    public void WriteAt(int offset, ReadOnlySpan<byte> data)
    {
        if ((uint)offset > (uint)Free || data.Length > Free - offset) throw new ArgumentOutOfRangeException(nameof(offset), "write beyond the ring's free space");
        Reserve(Count + offset + data.Length);
        int start = (int)((_tail + offset) & _mask);
        int first = Math.Min(data.Length, _buffer.Length - start);
        data[..first].CopyTo(_buffer.AsSpan(start));
        data[first..].CopyTo(_buffer);
    }

    /// <summary>Publishes <paramref name="count"/> bytes written past the tail.</summary>
    public void Advance(int count)
    {
        if ((uint)count > (uint)Free) throw new ArgumentOutOfRangeException(nameof(count));
        _tail += count;
    }

    /// <summary>Copies bytes starting <paramref name="offset"/> past the head, without consuming them.</summary>
    public void Peek(int offset, Span<byte> destination)
    {
        if ((uint)offset > (uint)Count || destination.Length > Count - offset) throw new ArgumentOutOfRangeException(nameof(offset), "read beyond the ring's data");
        int start = (int)((_head + offset) & _mask);
        int first = Math.Min(destination.Length, _buffer.Length - start);
        _buffer.AsSpan(start, first).CopyTo(destination);
        _buffer.AsSpan(0, destination.Length - first).CopyTo(destination[first..]);
    }

    /// <summary>Copies out and consumes up to <paramref name="destination"/>.Length bytes.</summary>
    public int Read(Span<byte> destination)
    {
        int n = Math.Min(destination.Length, Count);
        Peek(0, destination[..n]);
        _head += n;
        return n;
    }

    public void Consume(int count)
    {
        if ((uint)count > (uint)Count) throw new ArgumentOutOfRangeException(nameof(count));
        _head += count;
    }

    /// <summary>The queued bytes as at most two spans, oldest first (for zero-copy readers).</summary>
    public void GetReadable(out ReadOnlySpan<byte> first, out ReadOnlySpan<byte> second)
    {
        int start = (int)(_head & _mask), n = Count;
        int a = Math.Min(n, _buffer.Length - start);
        first = _buffer.AsSpan(start, a);
        second = _buffer.AsSpan(0, n - a);
    }
}
