using System.Runtime.InteropServices;
using Netloom.Interop;
using static Netloom.Interop.IoUring;

namespace Netloom.Offload;

/// <summary>
/// A provided buffer ring (IORING_REGISTER_PBUF_RING): buffers the kernel picks from for
/// multishot receive, so a connection holds no buffer while idle. A completion names the
/// buffer it filled (CQE flags >> 16); the owner gives it back with <see cref="Recycle"/>.
/// The ring's tail lives in the reserved field of its first entry (byte 14), as liburing lays it out.
/// </summary>
internal sealed unsafe class ProvidedBuffers : IDisposable
{
    private readonly UringRing _ring;
    private readonly Buf* _bufs;
    private readonly byte* _memory;
    private readonly uint _mask;
    private ushort _tail;
    private bool _disposed;

    public ProvidedBuffers(UringRing ring, ushort groupId, int count, int bufferSize)
    {
        if (count < 1 || count > 32768 || (count & (count - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(count), count, "a power of two up to 32768");
        _ring = ring;
        GroupId = groupId;
        Count = count;
        BufferSize = bufferSize;
        _mask = (uint)count - 1;
        _bufs = (Buf*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(Buf)), 4096);
        NativeMemory.Clear(_bufs, (nuint)(count * sizeof(Buf)));
        _memory = (byte*)NativeMemory.AlignedAlloc((nuint)count * (nuint)bufferSize, 4096);
        var reg = new BufReg { RingAddr = (ulong)_bufs, RingEntries = (uint)count, Bgid = groupId };
        if (IoUring.Register(ring.Fd, RegisterPbufRing, &reg, 1) < 0)
        {
            int e = Libc.Errno;
            NativeMemory.AlignedFree(_bufs);
            NativeMemory.AlignedFree(_memory);
            throw UringRing.Unavailable("registering a provided buffer ring (kernel 5.19 or later)", e);
        }
        for (ushort i = 0; i < count; i++) Add(i);
        Publish();
    }

    public ushort GroupId { get; }
    public int Count { get; }
    public int BufferSize { get; }

    /// <summary>The bytes a completion delivered into buffer <paramref name="id"/>.</summary>
    public ReadOnlySpan<byte> Data(ushort id, int length) => new(_memory + (nint)id * BufferSize, Math.Min(length, BufferSize));

    private void Add(ushort id)
    {
        ref Buf b = ref _bufs[_tail & _mask];
        b.Addr = (ulong)(_memory + (nint)id * BufferSize);
        b.Len = (uint)BufferSize;
        b.Bid = id;
        _tail++;
    }

    private void Publish() => Volatile.Write(ref *(ushort*)((byte*)_bufs + 14), _tail);

    /// <summary>Gives a buffer back to the kernel once its data has been consumed.</summary>
    public void Recycle(ushort id)
    {
        Add(id);
        Publish();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        var reg = new BufReg { Bgid = GroupId };
        IoUring.Register(_ring.Fd, UnregisterPbufRing, &reg, 1);
        NativeMemory.AlignedFree(_bufs);
        NativeMemory.AlignedFree(_memory);
    }
}
