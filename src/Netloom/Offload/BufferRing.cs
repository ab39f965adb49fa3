using System.Runtime.InteropServices;
using Netloom.Interop;
using static Netloom.Interop.IoUring;

namespace Netloom.Offload;

/// <summary>
/// A provided buffer ring (IORING_REGISTER_PBUF_RING) under a group id: entries of (address,
/// length, buffer id) that the kernel takes from the head in order, for a receive to fill or, with
/// a send bundle, for a send to drain. The owner adds entries at the tail; the tail lives in the
/// reserved field of the first entry (byte 14), as liburing lays it out. The memory the entries
/// name belongs to the owner.
/// </summary>
internal sealed unsafe class BufferRing : IDisposable
{
    private readonly UringRing _ring;
    private readonly NativeAllocator _memory;
    private readonly Buf* _bufs;
    private readonly uint _mask;
    private ushort _tail;
    private bool _registered, _disposed;

    public BufferRing(UringRing ring, ushort groupId, int entries, NativeAllocator? memory = null)
    {
        if (entries < 1 || entries > 32768 || (entries & (entries - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(entries), entries, "a power of two up to 32768");
        _ring = ring;
        _memory = memory ?? NativeAllocator.Shared;
        GroupId = groupId;
        Entries = entries;
        _mask = (uint)entries - 1;
        _bufs = (Buf*)_memory.AlignedAlloc(Bytes, 4096);
        try { Register(); }
        catch { _memory.AlignedFree(_bufs, Bytes); throw; }
    }

    private nuint Bytes => (nuint)(Entries * sizeof(Buf));

    public ushort GroupId { get; }
    public int Entries { get; }

    private void Register()
    {
        NativeMemory.Clear(_bufs, (nuint)(Entries * sizeof(Buf)));
        _tail = 0;
        var reg = new BufReg { RingAddr = (ulong)_bufs, RingEntries = (uint)Entries, Bgid = GroupId };
        if (IoUring.Register(_ring.Fd, RegisterPbufRing, &reg, 1) < 0)
            throw UringRing.Unavailable("registering a provided buffer ring (kernel 5.19 or later)", Libc.Errno);
        _registered = true;
    }

    /// <summary>Adds an entry at the tail; the kernel sees it after <see cref="Publish"/>.</summary>
    public void Add(byte* address, int length, ushort id)
    {
        ref Buf b = ref _bufs[_tail & _mask];
        b.Addr = (ulong)address;
        b.Len = (uint)length;
        b.Bid = id;
        _tail++;
    }

    public void Publish() => Volatile.Write(ref *(ushort*)((byte*)_bufs + 14), _tail);

    /// <summary>Forgets every entry the kernel has not taken: unregisters the ring and registers it empty.</summary>
    public void Reset()
    {
        Unregister();
        Register();
    }

    private void Unregister()
    {
        if (!_registered) return;
        _registered = false;
        var reg = new BufReg { Bgid = GroupId };
        IoUring.Register(_ring.Fd, UnregisterPbufRing, &reg, 1);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Unregister();
        _memory.AlignedFree(_bufs, Bytes);
    }
}
