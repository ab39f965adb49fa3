namespace Netloom.Offload;

/// <summary>
/// Receive buffers in a provided buffer ring: buffers the kernel picks from for multishot
/// receive, so a connection holds no buffer while idle. A completion names the buffer it filled
/// (CQE flags >> 16); the owner gives it back with <see cref="Recycle"/>.
/// </summary>
internal sealed unsafe class ProvidedBuffers : IDisposable
{
    private readonly BufferRing _ring;
    private readonly NativeAllocator _allocator;
    private readonly byte* _memory;
    private bool _disposed;

    public ProvidedBuffers(UringRing ring, ushort groupId, int count, int bufferSize, NativeAllocator? memory = null)
    {
        _allocator = memory ?? NativeAllocator.Shared;
        _memory = (byte*)_allocator.AlignedAlloc((nuint)count * (nuint)bufferSize, 4096);
        try { _ring = new BufferRing(ring, groupId, count, _allocator); }
        catch { _allocator.AlignedFree(_memory, (nuint)count * (nuint)bufferSize); throw; }
        Count = count;
        BufferSize = bufferSize;
        for (int i = 0; i < count; i++) Add((ushort)i);
        _ring.Publish();
    }

    public ushort GroupId => _ring.GroupId;
    public int Count { get; }
    public int BufferSize { get; }

    /// <summary>The bytes a completion delivered into buffer <paramref name="id"/>.</summary>
    public ReadOnlySpan<byte> Data(ushort id, int length) => new(_memory + (nint)id * BufferSize, Math.Min(length, BufferSize));

    private void Add(ushort id) => _ring.Add(_memory + (nint)id * BufferSize, BufferSize, id);

    /// <summary>Gives a buffer back to the kernel once its data has been consumed.</summary>
    public void Recycle(ushort id)
    {
        Add(id);
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
