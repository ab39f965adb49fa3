using System.Runtime.CompilerServices;
using Netloom.Interop;

namespace Netloom.Rings;

/// <summary>
/// One of an AF_XDP socket's four rings, as mapped from the kernel: a producer index, a consumer
/// index, a flags word and a power-of-two array of entries (u64 addresses in the fill and
/// completion rings, <see cref="Xsk.Desc"/> in RX and TX). Indexes run free (they wrap at 2^32),
/// and an entry lives at <c>index &amp; mask</c>.
/// <code>
///   we produce (fill, TX):     we write entries, then publish Producer; the kernel moves Consumer
///   we consume (RX, completion): the kernel writes entries, then Producer; we read, then publish Consumer
/// </code>
/// Each side keeps a local copy of its own index and publishes it once per batch with a release
/// store; the other side's index is read with an acquire load, so entries written before a
/// publish are seen after it (the kernel's side of this pairing is in net/xdp/xsk_queue.h).
/// </summary>
internal unsafe struct XskRing
{
    public uint* Producer;
    public uint* Consumer;
    public uint* Flags;
    public byte* Entries;
    public uint Mask;
    public uint Size;
    /// <summary>Our copy of the index we own (Producer for fill/TX, Consumer for RX/completion).</summary>
    public uint Local;
    public byte* Mapping;
    public nuint MappingLength;

    /// <summary>Maps the ring at <paramref name="pageOffset"/> of the socket, where <paramref name="offsets"/> say its parts are.</summary>
    public static XskRing Map(string who, string name, int fd, long pageOffset, in Xsk.RingOffset offsets, uint size, int entryBytes)
    {
        nuint length = (nuint)(offsets.Desc + (ulong)size * (ulong)entryBytes);
        byte* m = (byte*)Libc.Mmap(null, length, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED | Libc.MAP_POPULATE, fd, (nint)pageOffset);
        if (m == (byte*)-1) throw Netdevice.Error($"{who}: mmap of the {name} ring", Libc.Errno);
        var r = new XskRing
        {
            Producer = (uint*)(m + offsets.Producer),
            Consumer = (uint*)(m + offsets.Consumer),
            Flags = (uint*)(m + offsets.Flags),
            Entries = m + offsets.Desc,
            Mask = size - 1,
            Size = size,
            Mapping = m,
            MappingLength = length,
        };
        r.Local = pageOffset is Xsk.XDP_PGOFF_RX_RING or Xsk.XDP_UMEM_PGOFF_COMPLETION_RING ? Volatile.Read(ref *r.Consumer) : Volatile.Read(ref *r.Producer);
        return r;
    }

    public readonly bool NeedsWakeup => (Volatile.Read(ref *Flags) & Xsk.XDP_RING_NEED_WAKEUP) != 0;

    /// <summary>For a ring we produce: entries we may still write before the kernel's consumer catches up.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly uint Free()
    {
        uint pending = Local - Volatile.Read(ref *Consumer);
        return pending > Size ? 0 : Size - pending; // a consumer word that makes no sense leaves no room
    }

    /// <summary>
    /// For a ring we consume: entries the kernel has published that we have not read. Never more
    /// than the ring holds, whatever the producer word says (it is memory another party writes).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly uint Available() => Math.Min(Volatile.Read(ref *Producer) - Local, Size);

    /// <summary>For a ring we produce: entries published and not yet taken by the kernel.</summary>
    public readonly uint Pending() => Local - Volatile.Read(ref *Consumer);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly ref ulong Address(uint index) => ref ((ulong*)Entries)[index & Mask];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly ref Xsk.Desc Descriptor(uint index) => ref ((Xsk.Desc*)Entries)[index & Mask];

    /// <summary>Publishes our producer index (a release store: the entries before it are visible first).</summary>
    public readonly void PublishProducer() => Volatile.Write(ref *Producer, Local);

    /// <summary>Publishes our consumer index: the kernel may reuse the entries before it.</summary>
    public readonly void PublishConsumer() => Volatile.Write(ref *Consumer, Local);

    public void Unmap()
    {
        if (Mapping is not null) Libc.Munmap(Mapping, MappingLength);
        Mapping = null;
    }
}
