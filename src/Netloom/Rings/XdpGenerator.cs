using Netloom.Interop;
using static Netloom.Interop.Bpf;

namespace Netloom.Rings;

/// <summary>
/// The kernel's XDP traffic generator, for benchmarks: a two-instruction program
/// (<c>return XDP_TX</c>) run by bpf(BPF_PROG_TEST_RUN) with BPF_F_TEST_XDP_LIVE_FRAMES
/// (Linux 5.18+; what xdp-tools' xdp-trafficgen uses). The kernel builds each frame from one
/// template in a page pool, runs the program on it, and sends what it returns as XDP_TX out of
/// the interface through the driver's ndo_xdp_xmit, in bulk, with no socket buffer and no
/// system call per frame. On veth the frames land on the peer's XDP ring as XDP frames; the
/// peer takes them only when its NAPI runs: when it has an XDP program (an AF_XDP port) or GRO
/// on (<c>ethtool -K PEER gro on</c>), else the kernel drops them at the sender.
/// <para>
/// Why it exists: `bench rings` measured a port's receive rate by feeding it from the same
/// kind of port in another process, so the receive figure was the sender's rate. This feeds
/// every receiver from the same generator, which (on this VM) outruns both AF_PACKET and AF_XDP
/// senders several times, so a receive figure below the generator's rate is the receiver's.
/// </para>
/// </summary>
internal sealed unsafe class XdpGenerator : IDisposable
{
    private const int XdpTx = 3;
    private int _progFd;

    public XdpGenerator(string who)
    {
        var a = new XdpAssembler();
        a.MovImm(XdpAssembler.R0, XdpTx);
        a.Exit();
        _progFd = XdpProgram.LoadXdp(who, a.Build(), "netloom_gen", "loading the generator's XDP program");
    }

    /// <summary>
    /// Sends <paramref name="frame"/> out of interface <paramref name="ifindex"/> again and again
    /// until <paramref name="stop"/> (the caller owns the clock: cancel it after the duration);
    /// the frames offered (handed to the driver; the driver may still drop some: see its
    /// ethtool counters).
    /// </summary>
    public long Run(string who, int ifindex, ReadOnlySpan<byte> frame, CancellationToken stop)
    {
        if (frame.Length < 14 || frame.Length > 3000) throw new ArgumentOutOfRangeException(nameof(frame), "a frame of 14 to 3000 bytes");
        var ctx = new XdpMd { Data = 0, DataEnd = (uint)frame.Length, IngressIfIndex = (uint)ifindex };
        const uint Repeat = 1 << 16; // one call runs for some tens of milliseconds; the kernel stops early on a signal
        long offered = 0;
        fixed (byte* data = frame)
        {
            while (!stop.IsCancellationRequested)
            {
                var attr = new TestRunAttr
                {
                    ProgFd = (uint)_progFd,
                    DataSizeIn = (uint)frame.Length,
                    DataIn = (ulong)data,
                    Repeat = Repeat,
                    CtxSizeIn = (uint)sizeof(XdpMd),
                    CtxIn = (ulong)&ctx,
                    Flags = BPF_F_TEST_XDP_LIVE_FRAMES,
                    BatchSize = 64,
                };
                if (Call(BPF_PROG_TEST_RUN, ref attr) < 0)
                {
                    int e = Libc.Errno;
                    if (e == Errno.EINTR) continue;
                    throw XdpProgram.Failure(who, "running the generator (bpf BPF_PROG_TEST_RUN with live frames; Linux 5.18+)", e);
                }
                offered += Repeat;
            }
        }
        return offered;
    }

    public void Dispose()
    {
        if (_progFd >= 0) Libc.Close(_progFd);
        _progFd = -1;
    }
}
