namespace Netloom.Offload;

/// <summary>
/// Receive buffers in a provided buffer ring: buffers the kernel picks from for multishot
/// receive, so a connection holds no buffer while idle. A completion names the buffer it filled
/// (CQE flags >> 16); the owner reports it with <see cref="Took"/> and gives it back with
/// <see cref="Recycle"/>.
///
/// Hot buffers first. The kernel takes entries from the ring's head in order and given-back
/// buffers join at the tail, so a ring holding every free buffer fills each in turn: the receive
/// path's working set would be all of them (16 MiB for 1,024 of 16 KiB), and every receive would
/// copy into cache lines long evicted. So only <see cref="Published"/> buffers (at first
/// <see cref="MinPublished"/>) sit in the ring; the other free ones wait in a stack, and the one
/// given back last goes in next. Running dry (the receive's ENOBUFS: <see cref="RanDry"/>)
/// doubles that level, up to every buffer; a long stretch without running dry (256 takes per
/// buffer of the level, twice as long each time halving led to running dry again, up to 64
/// times) halves it again.
/// Pages of buffers never used are never touched.
/// </summary>
internal sealed unsafe class ProvidedBuffers : IDisposable
{
    /// <summary>The fewest buffers kept in the ring (fewer if there are fewer buffers).</summary>
    public const int MinPublished = 64;
    // Takes without running dry, per buffer of the level, before the level halves.
    private const long TakesPerLevelBeforeShrinking = 256, MaxShrinkStretch = 256 * 64;
    private const byte Spare = 0, InRing = 1, Taken = 2;

    private readonly BufferRing _ring;
    private readonly NativeAllocator _allocator;
    private readonly byte* _memory;
    private readonly ushort[] _spare;   // free buffers not in the ring; the top is the one given back last
    private readonly byte[] _state;     // per buffer: Spare, InRing or Taken
    private int _spareCount, _inRing, _level;
    private long _takesSinceDry, _shrinkStretch = TakesPerLevelBeforeShrinking;
    private bool _shrunk;
    private bool _disposed;

    public ProvidedBuffers(UringRing ring, ushort groupId, int count, int bufferSize, NativeAllocator? memory = null)
    {
        if (count < 1 || count > ushort.MaxValue + 1) throw new ArgumentOutOfRangeException(nameof(count), count, "1 to 65,536 buffers");
        _allocator = memory ?? NativeAllocator.Shared;
        _memory = (byte*)_allocator.AlignedAlloc((nuint)count * (nuint)bufferSize, 4096);
        try { _ring = new BufferRing(ring, groupId, count, _allocator); }
        catch { _allocator.AlignedFree(_memory, (nuint)count * (nuint)bufferSize); throw; }
        Count = count;
        BufferSize = bufferSize;
        _spare = new ushort[count];
        _state = new byte[count];
        for (int i = 0; i < count; i++) _spare[i] = (ushort)(count - 1 - i); // buffer 0 on top
        _spareCount = count;
        _level = Math.Min(MinPublished, count);
        TopUp();
    }

    public ushort GroupId => _ring.GroupId;
    public int Count { get; }
    public int BufferSize { get; }

    /// <summary>How many buffers the owner keeps in the ring now (what a receive may take before the owner's next turn).</summary>
    public int Published => _level;

    /// <summary>How many times a receive found the ring empty.</summary>
    public long DryCount { get; private set; }

    /// <summary>Free buffers waiting outside the ring.</summary>
    public int SpareCount => _spareCount;

    /// <summary>Buffers in the ring as far as the owner knows (some may be taken by completions not yet reaped).</summary>
    public int InRingCount => _inRing;

    /// <summary>The bytes a completion delivered into buffer <paramref name="id"/>.</summary>
    public ReadOnlySpan<byte> Data(ushort id, int length) => new(_memory + (nint)id * BufferSize, Math.Min(length, BufferSize));

    /// <summary>A completion carried buffer <paramref name="id"/>: the ring has one fewer, so another goes in.</summary>
    public void Took(ushort id)
    {
        if (id >= Count || _state[id] != InRing) return;
        _state[id] = Taken;
        _inRing--;
        if (++_takesSinceDry >= _shrinkStretch * _level && _level > Math.Min(MinPublished, Count))
        {
            _level /= 2;
            _takesSinceDry = 0;
            _shrunk = true;
        }
        TopUp();
    }

    /// <summary>
    /// Gives a buffer back once its data has been consumed; the owner reported it with
    /// <see cref="Took"/> first. Any other buffer (given back twice, so spare or in the ring again,
    /// or never reported taken), or a number that names no buffer, is ignored: putting one buffer
    /// in the ring twice would let two receives fill it.
    /// </summary>
    public void Recycle(ushort id)
    {
        if (id >= Count || _state[id] != Taken) return;
        _state[id] = Spare;
        _spare[_spareCount++] = id;
        TopUp();
    }

    /// <summary>
    /// A receive found the ring empty (ENOBUFS): keep twice as many buffers in it from now on.
    /// True when the ring has buffers again, so the receive can be armed at once; false when every
    /// buffer holds unread data (the receive waits for one to come back).
    /// </summary>
    public bool RanDry()
    {
        // Several receives find the ring empty in one batch: one doubling answers them all, and
        // the level doubles again only once half the doubled level has been taken.
        if (_takesSinceDry >= _level / 2)
        {
            _level = Math.Min(_level * 2, Count);
            // Dry again after halving: the load needs this level, so wait twice as long before the next halving.
            if (_shrunk) _shrinkStretch = Math.Min(_shrinkStretch * 2, MaxShrinkStretch);
            _shrunk = false;
        }
        _takesSinceDry = 0;
        DryCount++;
        TopUp();
        return _inRing > 0;
    }

    private void TopUp()
    {
        if (_inRing >= _level || _spareCount == 0) return;
        while (_inRing < _level && _spareCount > 0)
        {
            ushort id = _spare[--_spareCount];
            _state[id] = InRing;
            _ring.Add(_memory + (nint)id * BufferSize, BufferSize, id);
            _inRing++;
        }
        _ring.Publish();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _ring.Dispose();
        _allocator.AlignedFree(_memory, (nuint)Count * (nuint)BufferSize);
    }
}
