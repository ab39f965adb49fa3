using Netloom.Interop;
using static Netloom.Interop.Xsk;

namespace Netloom.Rings;

/// <summary>
/// An AF_XDP socket on one queue of an interface (Documentation/networking/af_xdp.rst), with the
/// XDP program that steers that queue's frames to it (<see cref="XdpProgram"/>).
/// <para>
/// <b>UMEM is the port's <see cref="PacketPool"/>.</b> The pool's memory is registered with
/// XDP_UMEM_REG as it is, so a received frame lands in a pool buffer and a switch can hand it to a
/// pipe, shm or another xdp port over the same pool by swapping buffer indexes. The pool lays
/// buffers out at its <see cref="PacketPool.Stride"/> (2112 bytes for 2 KiB buffers: one cache
/// line more than the size, see the pool), which is not a power of two, so the UMEM is
/// registered in unaligned-chunk mode (XDP_UMEM_UNALIGNED_CHUNK_FLAG), where each fill address
/// is taken as it is. The kernel writes a received frame XDP_PACKET_HEADROOM (256) bytes past
/// the address it took from the fill ring, so we give it <c>buffer start - 256</c>: the frame
/// then starts at the buffer's start, where every other port puts it. The chunk size is
/// <c>256 + buffer size</c> (2304, within the kernel's 2048..4096), so the kernel never writes
/// beyond the buffer; the 256 bytes "before" a buffer are the previous buffer's unused tail
/// and its last cache line, which the kernel does not write (it copies the frame from its data
/// pointer on; no metadata, since our program asks for none).
/// </para>
/// <para>
/// <b>Where buffers are</b> (<see cref="BuffersPerPort"/>). Every buffer the port holds is in exactly one place: a TX slot (free
/// for the user), the TX stash (free, waiting to replace a sent slot's buffer), the kernel (TX
/// ring, completion ring, fill ring, RX ring), or an RX slot. TxSync puts a slot's buffer on the
/// kernel's TX ring and gives the slot a buffer from the stash, so the slot is free at once; the
/// completion ring refills the stash. RxSync gives the buffers of RX slots the user released to
/// the fill ring, and puts each received descriptor's buffer in the next RX slot.
/// </para>
/// <para>
/// Everything the kernel hands back (RX and completion addresses, lengths) is checked against
/// the pool before it is used; what fails is counted in the ring's Invalid counter.
/// </para>
/// </summary>
internal sealed unsafe partial class XdpPort : PortBase
{
    /// <summary>The only buffer size: chunk = 256 + buffer must be in 2048..4096 and the buffer a power of two.</summary>
    public const int BufferBytes = 2048;

    private readonly int _fd;
    private readonly XdpProgram _program;
    private XskRing _fill, _completion, _rxq, _txq;
    private readonly RingMemory _txMemory, _rxMemory;
    private readonly Ring _tx, _rx;
    private readonly uint[] _stash;
    private int _stashCount;
    private uint _txHwCur;   // first TX slot not yet handed to the kernel
    private uint _rxFree;    // first RX slot the user released whose buffer has not gone back to the fill ring
    private readonly bool _ownsPool;
    private bool _disposed;

    public PacketPool Pool { get; }
    public override Ring Tx => _tx;
    public override Ring Rx => _rx;

    /// <summary>Where the program runs (native or generic) and how the socket is bound (copy or zero-copy), as "native copy".</summary>
    public string Mode { get; }
    public XdpAttachMode AttachMode => _program.Mode;
    public bool ZeroCopy { get; }

    /// <summary>The interface's index and the queue the socket is bound to (for <see cref="XdpFastPath"/>).</summary>
    internal int IfIndex { get; }
    internal uint Queue { get; }
    internal XdpProgram Program => _program;
    /// <summary>The network namespace the port was opened in (where its ifindex means its interface), or -1.</summary>
    internal int NetnsFd { get; }

    /// <summary>The kernel's own counters for the socket (XDP_STATISTICS), read at every 4096th RX sync and on request.</summary>
    public Statistics KernelStatistics { get; private set; }

    /// <summary>Its waits sleep in poll(2) on the socket, which <see cref="PortBase.InterruptRxWait"/> cannot end.</summary>
    internal override bool RxWaitInterruptible => false;

    private readonly struct Setup
    {
        public readonly int Fd;
        public readonly XskRing Fill, Completion, Rx, Tx;
        public Setup(int fd, XskRing fill, XskRing completion, XskRing rx, XskRing tx) => (Fd, Fill, Completion, Rx, Tx) = (fd, fill, completion, rx, tx);

        /// <summary>Undoes a setup no port took over: the rings' mappings, then the socket.</summary>
        public void Close()
        {
            Fill.Unmap();
            Completion.Unmap();
            Rx.Unmap();
            Tx.Unmap();
            Libc.Close(Fd);
        }
    }

    private XdpPort(string name, PortOptions o, PacketPool pool, bool ownsPool, ReadOnlySpan<uint> owned, XdpProgram program, Setup s, bool zeroCopy, int ifindex, uint queue) : base(name)
    {
        (IfIndex, Queue) = (ifindex, queue);
        NetnsFd = Libc.Open("/proc/thread-self/ns/net", 0x80000 /* O_RDONLY | O_CLOEXEC */);
        Pool = pool;
        _ownsPool = ownsPool;
        _program = program;
        (_fd, _fill, _completion, _rxq, _txq) = (s.Fd, s.Fill, s.Completion, s.Rx, s.Tx);
        _fillPublished = _fill.Local;
        ZeroCopy = zeroCopy;
        Mode = $"{(program.Mode == XdpAttachMode.Native ? "native" : "generic")} {(zeroCopy ? "zero-copy" : "copy")}";
        int n = o.RingSize;
        _txMemory = new RingMemory(n);
        _rxMemory = new RingMemory(n);
        _tx = new Ring(_txMemory.Header, _txMemory.Slots, (uint)n, pool, RingDirection.Tx);
        _rx = new Ring(_rxMemory.Header, _rxMemory.Slots, (uint)n, pool, RingDirection.Rx);
        // owned: [n TX slot buffers][n stash][the RX population, put on the fill ring] (see Open).
        for (int i = 0; i < n; i++) _txMemory.Slots[i].BufferIndex = owned[i];
        _tx.SetTail((uint)n - 1);
        _stash = new uint[n];
        for (int i = 0; i < n; i++) _stash[_stashCount++] = owned[n + i];
    }

    /// <summary>Frames the kernel could not deliver to us or send for us, from <see cref="KernelStatistics"/>.</summary>
    public void ReadKernelStatistics()
    {
        Statistics st;
        uint len = (uint)sizeof(Statistics);
        if (Libc.GetSockOpt(_fd, SOL_XDP, XDP_STATISTICS, &st, &len) == 0) KernelStatistics = st;
    }

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _program.Dispose();
        // A shared pool gets back the buffers the port holds now (swaps may have changed which);
        // those inside the kernel at this moment (a frame being copied) are not found and stay out.
        if (!_ownsPool) Pool.Release(HeldBuffers());
        _fill.Unmap();
        _completion.Unmap();
        _rxq.Unmap();
        _txq.Unmap();
        Libc.Close(_fd); // the kernel lets go of the UMEM's pages with the socket
        if (NetnsFd >= 0) Libc.Close(NetnsFd);
        _txMemory.Dispose();
        _rxMemory.Dispose();
        if (_ownsPool) Pool.Dispose();
    }
}
