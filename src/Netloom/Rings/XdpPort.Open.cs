using Netloom.Interop;
using static Netloom.Interop.Xsk;

namespace Netloom.Rings;

internal sealed unsafe partial class XdpPort
{
    /// <summary>
    /// Opens <c>xdp:IFNAME[:QUEUE]</c> in the calling thread's network namespace: attaches the
    /// program (native mode, else generic), creates the socket over the pool (zero-copy bind,
    /// else copy), and puts it in the program's map. <see cref="PortOptions.SharedPool"/> makes
    /// the UMEM that pool (it must have 2 KiB buffers and <see cref="BuffersPerPort"/> free).
    /// </summary>
    public static XdpPort Open(PortSpec spec, PortOptions? options = null)
    {
        if (spec.Kind != PortKind.Xdp) throw new ArgumentException($"{spec} is not an xdp spec", nameof(spec));
        var o = options ?? new PortOptions();
        o.Validate();
        string who = spec.ToString();
        var shared = o.SharedPool;
        if ((shared?.BufferSize ?? o.BufferSize) != BufferBytes)
            throw new ArgumentException($"{who}: an xdp port's buffers are {BufferBytes} bytes (the UMEM chunk is 256 bytes of kernel headroom plus the buffer, at most a page), not {shared?.BufferSize ?? o.BufferSize}");
        if (shared is not null && shared.Stride < BufferBytes)
            throw new ArgumentException($"{who}: the shared pool's buffers are {shared.Stride} bytes apart, fewer than the {BufferBytes} an xdp port writes");
        int ifindex = Netdevice.Index(spec.Name);
        uint queue = (uint)spec.PipeId;
        int n = o.RingSize;

        var pool = shared ?? new PacketPool(BuffersPerPort(n) + 1, BufferBytes);
        var owned = new uint[BuffersPerPort(n)];
        int got = pool.Allocate(owned);
        XdpProgram? program = null;
        try
        {
            if (got < owned.Length) throw new InvalidOperationException($"{who}: the shared pool has {got} free buffers; an xdp port takes 10 x ring size = {owned.Length}");
            program = XdpProgram.Attach(who, ifindex, spec.Name, queue + 1, ForcedMode());
            var fillBuffers = owned.AsSpan(2 * n); // the RX population: RxDepth(n) buffers
            // Zero-copy where the driver has it; veth and generic mode have only copy.
            // A socket closed a moment ago (ours or another process's) still holds the queue: the kernel
            // lets go of its buffer pool in deferred work after the close returns, and a bind until then
            // fails with EBUSY. Such a bind is tried again for up to a second, as a busy attach is.
            Setup s;
            bool zeroCopy;
            for (int tries = 1; ; tries++)
            {
                zeroCopy = TryCreateSocket(who, spec.Name, pool, ifindex, queue, n, fillBuffers, XDP_ZEROCOPY | XDP_USE_NEED_WAKEUP, out s, out _, out _);
                if (zeroCopy || TryCreateSocket(who, spec.Name, pool, ifindex, queue, n, fillBuffers, XDP_COPY | XDP_USE_NEED_WAKEUP, out s, out int bindErrno, out string why))
                    break;
                if (bindErrno != Errno.EBUSY || why != "bind" || tries == XdpProgram.BusyTries)
                    throw BindError(who, spec.Name, queue, bindErrno, why);
                Thread.Sleep(XdpProgram.BusyPauseMs);
            }
            try { program.Insert(who, queue, s.Fd); }
            catch
            {
                s.Close();
                throw;
            }
            return new XdpPort(who, o, pool, shared is null, owned, program, s, zeroCopy, ifindex, queue);
        }
        catch
        {
            program?.Dispose();
            if (shared is null) pool.Dispose();
            else pool.Release(owned.AsSpan(0, got));
            throw;
        }
    }

    private static Exception BindError(string who, string ifname, uint queue, int errno, string what) => errno switch
    {
        Errno.EINVAL when what == "bind" => new IOException($"{who}: binding to queue {queue} of {ifname} failed: {Libc.Describe(errno)} (does {ifname} have a queue {queue}? `ethtool -l {ifname}`)"),
        Errno.EBUSY when what == "bind" => new IOException($"{who}: queue {queue} of {ifname} is held by another AF_XDP socket (another port on it, or a program of another loader); close that one or use another queue"),
        Errno.EPERM or Errno.EACCES => new IOException($"{who}: {what}: {Libc.Describe(errno)} (AF_XDP needs root, or CAP_NET_ADMIN and CAP_NET_RAW)"),
        Errno.EAFNOSUPPORT => new IOException($"{who}: this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)"),
        _ => Netdevice.Error($"{who}: {what}", errno),
    };

    /// <summary>
    /// One try at the socket: create it, register the pool as UMEM, size and map the four rings,
    /// put <paramref name="fillBuffers"/> on the fill ring and bind. On failure everything made
    /// here is undone and the errno and the step that failed are returned.
    /// </summary>
    private static bool TryCreateSocket(string who, string ifname, PacketPool pool, int ifindex, uint queue, int n, ReadOnlySpan<uint> fillBuffers,
        ushort bindFlags, out Setup setup, out int errno, out string what)
    {
        setup = default;
        what = "socket(AF_XDP)";
        int fd = Libc.Socket(AF_XDP, SOCK_RAW | 0x80000 /* SOCK_CLOEXEC */, 0);
        if (fd < 0) { errno = Libc.Errno; return false; }
        XskRing fill = default, comp = default, rx = default, tx = default;
        try
        {
            var reg = new UmemReg
            {
                Addr = (ulong)pool.Base,
                Len = (ulong)pool.Count * (ulong)pool.Stride,
                ChunkSize = (uint)(XDP_PACKET_HEADROOM + BufferBytes),
                Headroom = 0,
                Flags = XDP_UMEM_UNALIGNED_CHUNK_FLAG,
            };
            what = "registering the pool as UMEM (XDP_UMEM_REG)";
            if (Libc.SetSockOpt(fd, SOL_XDP, XDP_UMEM_REG, &reg, (uint)sizeof(UmemReg)) < 0) { errno = Libc.Errno; return Fail(); }
            foreach (var (opt, size, name) in new[] { (XDP_UMEM_FILL_RING, FillRingSize(n), "fill"), (XDP_UMEM_COMPLETION_RING, n, "completion"), (XDP_RX_RING, RxDepth(n), "RX"), (XDP_TX_RING, n, "TX") })
            {
                int v = size;
                what = $"sizing the {name} ring";
                if (Libc.SetSockOpt(fd, SOL_XDP, opt, &v, sizeof(int)) < 0) { errno = Libc.Errno; return Fail(); }
            }
            MmapOffsets off;
            uint len = (uint)sizeof(MmapOffsets);
            what = "XDP_MMAP_OFFSETS";
            if (Libc.GetSockOpt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len) < 0) { errno = Libc.Errno; return Fail(); }
            fill = XskRing.Map(who, "fill", fd, XDP_UMEM_PGOFF_FILL_RING, off.Fill, (uint)FillRingSize(n), sizeof(ulong));
            comp = XskRing.Map(who, "completion", fd, XDP_UMEM_PGOFF_COMPLETION_RING, off.Completion, (uint)n, sizeof(ulong));
            rx = XskRing.Map(who, "RX", fd, XDP_PGOFF_RX_RING, off.Rx, (uint)RxDepth(n), sizeof(Desc));
            tx = XskRing.Map(who, "TX", fd, XDP_PGOFF_TX_RING, off.Tx, (uint)n, sizeof(Desc));

            foreach (uint b in fillBuffers) fill.Address(fill.Local++) = FillAddress(pool, b);
            fill.PublishProducer();

            var addr = new SockaddrXdp { Family = AF_XDP, Flags = bindFlags, IfIndex = (uint)ifindex, QueueId = queue };
            what = "bind";
            if (Libc.Bind(fd, &addr, (uint)sizeof(SockaddrXdp)) < 0) { errno = Libc.Errno; return Fail(); }
            // Copy mode sends at most 32 frames per sendto unless told more (Linux 6.17+); one kick
            // per TX sync is what we want. Best effort: older kernels say ENOPROTOOPT and keep 32.
            int budget = n;
            Libc.SetSockOpt(fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof(int));
            setup = new Setup(fd, fill, comp, rx, tx);
            errno = 0;
            return true;
        }
        catch
        {
            Fail();
            throw;
        }

        bool Fail()
        {
            new Setup(fd, fill, comp, rx, tx).Close();
            return false;
        }
    }

    /// <summary>
    /// Buffers an xdp port takes: n in TX slots, n in the TX stash, and <see cref="RxDepth"/> that
    /// circulate through RX (fill ring, kernel, RX ring, RX slots).
    /// </summary>
    internal static int BuffersPerPort(int n) => 2 * n + RxDepth(n);

    /// <summary>
    /// The kernel's RX ring and the RX population: 8n (8192 frames, 17 MiB, at the default
    /// n = 1024). What the RX ring and the fill ring hold is all the buffering there is between
    /// the kernel's producer (in softirq, on another core) and us, and on this shared 2-core
    /// machine a receiver is often off its core for milliseconds. With n the kernel counted most
    /// frames at 0.8 Mpps as rx_ring_full; with 4n, 4% as rx_fill_ring_empty (both the same
    /// thing: no room). AF_PACKET's ring here is 4 MiB, which packs some 50,000 small frames.
    /// </summary>
    private static int RxDepth(int n) => 8 * n;

    /// <summary>
    /// The fill ring holds twice the RX population. The kernel reads a run of fill entries at
    /// once and publishes its consumer index only when it has used them all, so entries it has
    /// taken (their buffers already received, perhaps already given back) still count as
    /// occupied: up to the whole population of those, plus the population given back. A fill
    /// ring the size of the population looked full most of the time; RX slots then waited and
    /// the kernel's RX ring overflowed.
    /// </summary>
    private static int FillRingSize(int n) => 2 * RxDepth(n);

    /// <summary>
    /// NETLOOM_XDP_MODE=native or generic attaches in that mode only (benchmarks compare the two;
    /// on veth, native mode copies each frame from an skb into a page before the program runs).
    /// </summary>
    private static XdpAttachMode? ForcedMode() => Environment.GetEnvironmentVariable("NETLOOM_XDP_MODE") switch
    {
        "native" => XdpAttachMode.Native,
        "generic" => XdpAttachMode.Generic,
        _ => null,
    };

    /// <summary>The fill-ring address for a buffer: 256 bytes before it, so the frame lands at the buffer's start.</summary>
    private static ulong FillAddress(PacketPool pool, uint buffer) => (ulong)buffer * (ulong)pool.Stride - XDP_PACKET_HEADROOM;
}
