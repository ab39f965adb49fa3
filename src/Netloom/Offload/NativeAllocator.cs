using System.Runtime.InteropServices;

namespace Netloom.Offload;

/// <summary>
/// Every native allocation of the io_uring engine goes through one of these, so leaks are
/// countable: each server has its own, and its live bytes return to zero once the server has
/// stopped. Blocks are freed with the size they were allocated with (the owners know it), so
/// counting costs one interlocked add per allocation; allocations happen when buffers grow or
/// rings are made, never per request.
/// </summary>
internal sealed unsafe class NativeAllocator
{
    /// <summary>For buffers made outside a server (a handler's own OutputBuffer, tests).</summary>
    public static readonly NativeAllocator Shared = new();

    private long _liveBytes, _liveBlocks;

    public long LiveBytes => Volatile.Read(ref _liveBytes);
    public long LiveBlocks => Volatile.Read(ref _liveBlocks);

    public void* Alloc(nuint bytes)
    {
        void* p = NativeMemory.Alloc(bytes);
        Count((long)bytes, 1);
        return p;
    }

    public void Free(void* p, nuint bytes)
    {
        if (p is null) return;
        NativeMemory.Free(p);
        Count(-(long)bytes, -1);
    }

    public void* AlignedAlloc(nuint bytes, nuint alignment)
    {
        void* p = NativeMemory.AlignedAlloc(bytes, alignment);
        Count((long)bytes, 1);
        return p;
    }

    public void AlignedFree(void* p, nuint bytes)
    {
        if (p is null) return;
        NativeMemory.AlignedFree(p);
        Count(-(long)bytes, -1);
    }

    private void Count(long bytes, int blocks)
    {
        Interlocked.Add(ref _liveBytes, bytes);
        Interlocked.Add(ref _liveBlocks, blocks);
    }
}
