using System.Runtime.CompilerServices;

namespace Netloom.Rings;

/// <summary>
/// A checked-once cursor over one ring's slots and its pool's buffers, for code that moves a
/// batch of frames per call (the switch) without pointers of its own. What can be checked once
/// is checked when it is made, from the ring: the slot array and its size, the pool's base,
/// stride and count, and a shared-memory ring's fixed buffers (the ring's constructor checked
/// they lie in the pool). Per slot nothing is bounds-checked: every slot index is masked with the
/// ring's size, a power of two, so any index lands in the ring. What a slot holds is another
/// matter: its buffer index and length are data (a peer or the user may have written anything),
/// so every access through them checks them, as netmap's rings do with <c>buf_idx</c>.
/// </summary>
internal readonly unsafe ref struct SlotBatch
{
    private readonly Slot* _slots;
    private readonly byte* _buffers;
    private readonly nint _stride;
    private readonly uint _mask, _fixedBase, _bufferCount, _bufferSize;

    public SlotBatch(Ring ring)
    {
        _slots = ring.Slots;
        _mask = (uint)ring.Size - 1;
        _fixedBase = ring.FixedBufferBase;
        var pool = ring.Pool;
        _buffers = pool.Base;
        _stride = pool.Stride;
        _bufferCount = (uint)pool.Count;
        _bufferSize = (uint)pool.BufferSize;
    }

    /// <summary>The slot at ring index <paramref name="i"/>, taken modulo the ring's size.</summary>
    public ref Slot this[uint i]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref _slots[i & _mask];
    }

    /// <summary>The ring index after <paramref name="i"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Next(uint i) => (i + 1) & _mask;

    /// <summary>The size of the pool's buffers: the longest frame a slot can hold.</summary>
    public int BufferSize => (int)_bufferSize;

    /// <summary>
    /// Reads the frame in slot <paramref name="i"/>: its length and its first 12 bytes as two
    /// little-endian words (for Ethernet, the destination and source addresses). False, and
    /// nothing read, when the slot names no buffer of the pool or a length beyond the buffer.
    /// A frame shorter than 12 bytes is still read: every buffer holds at least 64 bytes, so the
    /// read stays inside it, and the caller, which sees the length, ignores such words.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryReadHeader(uint i, out uint length, out ulong first8, out uint next4)
    {
        ref Slot s = ref _slots[i & _mask];
        uint len = s.Length;
        uint b = _fixedBase != 0 ? _fixedBase + (i & _mask) : s.BufferIndex;
        length = len;
        if (b - 1 >= _bufferCount - 1 || len > _bufferSize)
        {
            first8 = 0;
            next4 = 0;
            return false;
        }
        byte* p = _buffers + (nint)b * _stride;
        first8 = Unsafe.ReadUnaligned<ulong>(p);
        next4 = Unsafe.ReadUnaligned<uint>(p + 8);
        return true;
    }

    /// <summary>The frame in slot <paramref name="i"/> (its buffer cut to its length), or empty when the slot names no buffer of the pool.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> Frame(uint i)
    {
        ref Slot s = ref _slots[i & _mask];
        uint b = _fixedBase != 0 ? _fixedBase + (i & _mask) : s.BufferIndex;
        if (b - 1 >= _bufferCount - 1) return default;
        return new ReadOnlySpan<byte>(_buffers + (nint)b * _stride, (int)Math.Min(s.Length, _bufferSize));
    }

    /// <summary>The whole buffer of slot <paramref name="i"/>, or empty when the slot names no buffer of the pool.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> Buffer(uint i)
    {
        uint b = _fixedBase != 0 ? _fixedBase + (i & _mask) : _slots[i & _mask].BufferIndex;
        if (b - 1 >= _bufferCount - 1) return default;
        return new Span<byte>(_buffers + (nint)b * _stride, (int)_bufferSize);
    }
}
