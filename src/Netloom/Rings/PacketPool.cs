using System.Runtime.InteropServices;

namespace Netloom.Rings;

/// <summary>
/// One contiguous region of fixed-size packet buffers addressed by index, like netmap's buffer
/// pool. Buffer 0 is reserved (as in netmap) so that a zero index in a slot can mean "none".
/// The region is native memory owned by the pool, or a mapping owned by someone else
/// (a shared-memory port). Allocation and release are batch operations under a lock: they
/// happen when rings are set up or a port needs extra buffers, not per packet.
/// </summary>
public sealed unsafe class PacketPool : IDisposable
{
    public const int DefaultBufferSize = 2048;
    public const int MaxBufferSize = 64 * 1024;

    private const nuint HugePage = 2 << 20;

    private readonly byte* _base;
    private readonly nuint _mappedLength; // non-zero: _base is our own mapping of this length
    private readonly bool _ownsMemory;
    private readonly uint[] _free;
    private int _freeCount;
    private readonly Lock _lock = new();
    private bool _disposed;

    /// <summary>
    /// Creates a pool of <paramref name="count"/> buffers of <paramref name="bufferSize"/> bytes in
    /// native memory. Buffers of 1 KiB or more are laid out one cache line apart beyond their size
    /// (<see cref="Stride"/>): at a power-of-two stride every buffer's first line would fall in the
    /// same few cache sets, and a switch reading thousands of Ethernet headers would evict its
    /// own. Pools of 2 MiB or more are mapped on a 2 MiB boundary with transparent huge pages
    /// requested, since buffers are visited in ring order, not address order, and thousands of
    /// 4 KiB pages would miss the TLB on most packets.
    /// </summary>
    public PacketPool(int count, int bufferSize = DefaultBufferSize)
    {
        Validate(count, bufferSize);
        BufferSize = bufferSize;
        Count = count;
        Stride = bufferSize >= 1024 ? bufferSize + 64 : bufferSize;
        nuint bytes = (nuint)((long)count * Stride);
        if (bytes >= HugePage) _base = MapHuge(bytes, out _mappedLength);
        else _base = (byte*)NativeMemory.AlignedAlloc(bytes, 4096);
        _ownsMemory = true;
        _free = new uint[count];
        ResetFreeList();
    }

    /// <summary>Maps anonymous memory at a 2 MiB boundary and advises huge pages for its whole 2 MiB part.</summary>
    private static byte* MapHuge(nuint bytes, out nuint length)
    {
        length = (bytes + 4095) & ~(nuint)4095;
        nuint span = length + HugePage;
        byte* p = (byte*)Interop.Libc.Mmap(null, span, Interop.Libc.PROT_READ | Interop.Libc.PROT_WRITE,
            Interop.Libc.MAP_PRIVATE | Interop.Libc.MAP_ANONYMOUS, -1, 0);
        if (p == (byte*)-1)
            throw new OutOfMemoryException($"mapping {span} bytes for a packet pool failed: {Interop.Libc.Describe(Interop.Libc.Errno)}");
        byte* start = (byte*)(((nuint)p + HugePage - 1) & ~(HugePage - 1)), end = start + length;
        if (start > p) Interop.Libc.Munmap(p, (nuint)(start - p));
        if (end < p + span) Interop.Libc.Munmap(end, (nuint)(p + span - end));
        // Advice only: where the kernel has no huge page to give, 4 KiB pages work the same.
        Interop.Libc.Madvise(start, length & ~(HugePage - 1), Interop.Libc.MADV_HUGEPAGE);
        return start;
    }

    /// <summary>Wraps memory owned elsewhere (a shared mapping); the pool frees nothing.</summary>
    internal PacketPool(byte* memory, int count, int bufferSize)
    {
        Validate(count, bufferSize);
        BufferSize = bufferSize;
        Count = count;
        _base = memory;
        Stride = bufferSize;
        _free = new uint[count];
        ResetFreeList();
    }

    private static void Validate(int count, int bufferSize)
    {
        if (count < 2) throw new ArgumentOutOfRangeException(nameof(count), count, "a pool needs at least 2 buffers (buffer 0 is reserved)");
        if (bufferSize < 64 || bufferSize > MaxBufferSize || (bufferSize & (bufferSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(bufferSize), bufferSize, $"buffer size must be a power of two from 64 to {MaxBufferSize}");
    }

    private void ResetFreeList()
    {
        // Highest index on the bottom, so buffers come out in ascending order; 0 is never free.
        _freeCount = 0;
        for (uint i = (uint)Count - 1; i >= 1; i--) _free[_freeCount++] = i;
    }

    public int BufferSize { get; }

    /// <summary>Bytes from one buffer's start to the next: <see cref="BufferSize"/>, or one cache line more (see the constructor).</summary>
    public int Stride { get; }
    public int Count { get; }
    public int FreeCount { get { lock (_lock) return _freeCount; } }
    internal byte* Base => _base;

    /// <summary>True when <paramref name="index"/> names a real buffer (not 0, not past the end).</summary>
    public bool IsValid(uint index) => index != 0 && index < (uint)Count;

    /// <summary>True when a TX slot was filled rightly: it names a buffer of this pool and holds 1 to BufferSize bytes.</summary>
    public bool IsSendable(in Slot slot) => IsValid(slot.BufferIndex) && slot.Length != 0 && slot.Length <= BufferSize;

    /// <summary>The whole buffer. The index must be valid; callers with untrusted indexes check <see cref="IsValid"/> first.</summary>
    public Span<byte> Buffer(uint index)
    {
        if (!IsValid(index)) ThrowBadIndex(index);
        return new Span<byte>(_base + (nint)index * Stride, BufferSize);
    }

    /// <summary>Hot-path access without the check, for indexes the caller owns.</summary>
    internal byte* BufferPointer(uint index) => _base + (nint)index * Stride;

    /// <summary>Takes up to <c>indexes.Length</c> buffers; returns how many it took.</summary>
    public int Allocate(Span<uint> indexes)
    {
        lock (_lock)
        {
            int n = Math.Min(indexes.Length, _freeCount);
            for (int i = 0; i < n; i++) indexes[i] = _free[--_freeCount];
            return n;
        }
    }

    /// <summary>Returns buffers to the pool. Invalid or zero indexes are ignored and counted.</summary>
    public int Release(ReadOnlySpan<uint> indexes)
    {
        int rejected = 0;
        lock (_lock)
        {
            foreach (uint idx in indexes)
            {
                if (!IsValid(idx) || _freeCount == Count - 1) { rejected++; continue; }
                _free[_freeCount++] = idx;
            }
        }
        return rejected;
    }

    private void ThrowBadIndex(uint index) =>
        throw new ArgumentOutOfRangeException(nameof(index), index, $"buffer index must be 1..{Count - 1}");

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_mappedLength != 0) Interop.Libc.Munmap(_base, _mappedLength);
        else if (_ownsMemory) NativeMemory.AlignedFree(_base);
    }
}
