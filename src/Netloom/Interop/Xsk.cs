using System.Runtime.InteropServices;

namespace Netloom.Interop;

/// <summary>
/// AF_XDP sockets (linux/if_xdp.h, Documentation/networking/af_xdp.rst): the socket options,
/// the structs the kernel reads and writes, and the mmap offsets of the four rings.
/// KernelLayoutTests pins every value here against the C compiler.
/// </summary>
internal static unsafe partial class Xsk
{
    public const int AF_XDP = 44, SOL_XDP = 283, SOCK_RAW = 3;
    public const int XDP_MMAP_OFFSETS = 1, XDP_RX_RING = 2, XDP_TX_RING = 3, XDP_UMEM_REG = 4,
        XDP_UMEM_FILL_RING = 5, XDP_UMEM_COMPLETION_RING = 6, XDP_STATISTICS = 7, XDP_OPTIONS = 8;

    /// <summary>XDP_MAX_TX_SKB_BUDGET (Linux 6.17+; not in this machine's headers): frames one copy-mode sendto may send (default 32).</summary>
    public const int XDP_MAX_TX_SKB_BUDGET = 9;

    /// <summary>sockaddr_xdp flags (bind).</summary>
    public const ushort XDP_SHARED_UMEM = 1, XDP_COPY = 2, XDP_ZEROCOPY = 4, XDP_USE_NEED_WAKEUP = 8;

    public const uint XDP_UMEM_UNALIGNED_CHUNK_FLAG = 1;
    public const uint XDP_RING_NEED_WAKEUP = 1;
    public const uint XDP_OPTIONS_ZEROCOPY = 1;

    /// <summary>In unaligned-chunk mode a descriptor's address carries an offset in its top 16 bits.</summary>
    public const int XSK_UNALIGNED_BUF_OFFSET_SHIFT = 48;

    /// <summary>XDP_PACKET_HEADROOM: the kernel puts a received frame this far past the address given in the fill ring.</summary>
    public const int XDP_PACKET_HEADROOM = 256;

    public const long XDP_PGOFF_RX_RING = 0, XDP_PGOFF_TX_RING = 0x80000000,
        XDP_UMEM_PGOFF_FILL_RING = 0x100000000, XDP_UMEM_PGOFF_COMPLETION_RING = 0x180000000;

    public const int MSG_DONTWAIT = 0x40;
    public const int SOL_SOCKET = 1, SO_BUSY_POLL = 46, SO_PREFER_BUSY_POLL = 69, SO_BUSY_POLL_BUDGET = 70;

    /// <summary>struct xdp_umem_reg in its first form (24 bytes), which every kernel with AF_XDP accepts.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct UmemReg
    {
        public ulong Addr;
        public ulong Len;
        public uint ChunkSize;
        public uint Headroom;
        public uint Flags;
        private readonly uint _pad;
    }

    /// <summary>struct xdp_ring_offset: where a ring's producer, consumer, descriptors and flags sit in its mapping.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct RingOffset
    {
        public ulong Producer;
        public ulong Consumer;
        public ulong Desc;
        public ulong Flags;
    }

    /// <summary>struct xdp_mmap_offsets, as XDP_MMAP_OFFSETS returns it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MmapOffsets
    {
        public RingOffset Rx;
        public RingOffset Tx;
        public RingOffset Fill;
        public RingOffset Completion;
    }

    /// <summary>struct sockaddr_xdp.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SockaddrXdp
    {
        public ushort Family;
        public ushort Flags;
        public uint IfIndex;
        public uint QueueId;
        public uint SharedUmemFd;
    }

    /// <summary>struct xdp_desc: one RX or TX descriptor (fill and completion rings hold bare u64 addresses).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Desc
    {
        public ulong Addr;
        public uint Len;
        public uint Options;
    }

    /// <summary>struct xdp_statistics.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Statistics
    {
        public ulong RxDropped;
        public ulong RxInvalidDescs;
        public ulong TxInvalidDescs;
        public ulong RxRingFull;
        public ulong RxFillRingEmptyDescs;
        public ulong TxRingEmptyDescs;
    }

    [LibraryImport("libc", EntryPoint = "sendto", SetLastError = true)]
    public static partial nint SendTo(int fd, void* buffer, nuint length, int flags, void* address, uint addressLength);

    [LibraryImport("libc", EntryPoint = "recvfrom", SetLastError = true)]
    public static partial nint RecvFrom(int fd, void* buffer, nuint length, int flags, void* address, uint* addressLength);
}
