using System.Text;
using Netloom.Interop;
using static Netloom.Interop.Bpf;

namespace Netloom.Rings;

/// <summary>Where the XDP program runs: in the driver (native) or on socket buffers (generic).</summary>
internal enum XdpAttachMode : byte { Native, Generic }

/// <summary>
/// The XDP program of an AF_XDP port, and its XSKMAP. The program is five instructions emitted
/// here, not compiled from C (no clang, no libbpf, no object file to ship):
/// <code>
///   r2 = ((struct xdp_md *)r1)->rx_queue_index
///   r1 = &amp;xskmap
///   r3 = XDP_PASS                      // bpf_redirect_map's fallback when the slot is empty
///   r0 = bpf_redirect_map(r1, r2, r3)  // XDP_REDIRECT to the socket bound to that queue
///   exit
/// </code>
/// so frames of the queue the socket is bound to go to the socket, and everything else (other
/// queues, or before the socket is in the map) goes on to the kernel's stack. It is loaded with
/// bpf(BPF_PROG_LOAD) and attached with bpf(BPF_LINK_CREATE, BPF_XDP). A BPF link belongs to
/// its file descriptor: when the last descriptor closes (our Dispose, or the kernel closing the
/// files of a process that died, even by SIGKILL) the program is detached from the interface.
/// (The older netlink attach would leave it there, redirecting into a map nobody reads.)
/// We chose raw bpf() over libxdp: libxdp would be a native dependency for five instructions,
/// and its multi-program dispatcher pins state in bpffs, which a crash leaves behind.
/// </summary>
internal sealed unsafe class XdpProgram : IDisposable
{
    internal const int XdpPass = 2, BpfFuncRedirectMap = 51, XdpMdRxQueueIndex = 16, BpfPseudoMapFd = 1;

    private int _mapFd = -1, _progFd = -1, _linkFd = -1;

    public XdpAttachMode Mode { get; private set; }

    /// <summary>The XSKMAP (queue to socket), which <see cref="XdpFastPath"/>'s program sends its slow path to.</summary>
    internal int MapFd => _mapFd;

    /// <summary>
    /// Puts <paramref name="progFd"/> on the interface in place of the program there now, in one
    /// step (bpf BPF_LINK_UPDATE): no frame sees the interface without a program. The link holds
    /// the new program; the caller may close its descriptor.
    /// </summary>
    internal void Replace(string who, int progFd)
    {
        var attr = new LinkUpdateAttr { LinkFd = (uint)_linkFd, NewProgFd = (uint)progFd };
        if (Call(BPF_LINK_UPDATE, ref attr) < 0) throw Failure(who, "replacing the XDP program (bpf BPF_LINK_UPDATE)", Libc.Errno);
    }

    /// <summary>Creates the map and the program and attaches it to <paramref name="ifindex"/>; native mode first, generic when the driver has none.</summary>
    public static XdpProgram Attach(string who, int ifindex, string ifname, uint queues, XdpAttachMode? only = null)
    {
        var p = new XdpProgram();
        try
        {
            p.CreateMap(who, queues);
            p.Load(who);
            p.Link(who, ifindex, ifname, only);
            return p;
        }
        catch
        {
            p.Dispose();
            throw;
        }
    }

    private void CreateMap(string who, uint queues)
    {
        var attr = new MapCreateAttr { MapType = BPF_MAP_TYPE_XSKMAP, KeySize = 4, ValueSize = 4, MaxEntries = queues };
        _mapFd = Call(BPF_MAP_CREATE, ref attr);
        if (_mapFd < 0) throw Failure(who, "creating the XSKMAP (bpf BPF_MAP_CREATE)", Libc.Errno);
    }

    private void Load(string who)
    {
        ReadOnlySpan<Insn> prog =
        [
            new(0x61, 2, 1, XdpMdRxQueueIndex, 0),   // BPF_LDX | BPF_MEM | BPF_W: r2 = *(u32 *)(r1 + 16)
            new(0x18, 1, BpfPseudoMapFd, 0, _mapFd), // BPF_LD | BPF_DW | BPF_IMM: r1 = map (two instructions)
            new(0x00, 0, 0, 0, 0),
            new(0xb7, 3, 0, 0, XdpPass),             // BPF_ALU64 | BPF_MOV | BPF_K: r3 = XDP_PASS
            new(0x85, 0, 0, 0, BpfFuncRedirectMap),  // BPF_JMP | BPF_CALL
            new(0x95, 0, 0, 0, 0),                   // BPF_JMP | BPF_EXIT
        ];
        _progFd = LoadXdp(who, prog, "netloom_xsk", "loading the XDP program");
    }

    /// <summary>Loads an XDP program (bpf BPF_PROG_LOAD); its descriptor, or an error carrying the verifier's log.</summary>
    internal static int LoadXdp(string who, ReadOnlySpan<Insn> prog, string name, string what) =>
        Load(who, prog, name, what, BPF_PROG_TYPE_XDP, BPF_XDP);

    /// <summary>Loads a program of <paramref name="type"/> (bpf BPF_PROG_LOAD); its descriptor, or an error carrying the verifier's log.</summary>
    internal static int Load(string who, ReadOnlySpan<Insn> prog, string name, string what, uint type, uint attachType)
    {
        byte* license = stackalloc byte[4] { (byte)'M', (byte)'I', (byte)'T', 0 }; // no helper used here is GPL-only
        const int LogSize = 16384;
        byte[] logBuffer = new byte[LogSize];
        int fd;
        fixed (byte* log = logBuffer)
        fixed (Insn* insns = prog)
        {
            var attr = new ProgLoadAttr
            {
                ProgType = type,
                InsnCount = (uint)prog.Length,
                Insns = (ulong)insns,
                License = (ulong)license,
                LogLevel = 1,
                LogSize = LogSize,
                LogBuf = (ulong)log,
                ExpectedAttachType = attachType,
            };
            Encoding.ASCII.GetBytes(name.Length > 15 ? name[..15] : name).CopyTo(new Span<byte>(attr.ProgName, 15));
            fd = Call(BPF_PROG_LOAD, ref attr);
        }
        if (fd < 0)
        {
            int e = Libc.Errno;
            int n = logBuffer.AsSpan().IndexOf((byte)0);
            string verifier = Encoding.ASCII.GetString(logBuffer, 0, n >= 0 ? n : LogSize).Trim();
            throw Failure(who, what + " (bpf BPF_PROG_LOAD)" + (verifier.Length > 0 ? $"; verifier says: {verifier}" : ""), e);
        }
        return fd;
    }

    /// <summary>How often, and how far apart, an open tries a busy attach or bind again: a second in all.</summary>
    internal const int BusyTries = 100, BusyPauseMs = 10;

    private void Link(string who, int ifindex, string ifname, XdpAttachMode? only)
    {
        // A link whose holder closed it a moment ago can outlive the close briefly: a process forked
        // by another thread at that moment holds a copy of it until its exec. So a busy interface is
        // tried again for up to a second (BusyTries) before it is reported.
        int e;
        for (int tries = 1; (e = TryLink(ifindex, only)) is Errno.EBUSY or Errno.EEXIST && tries < BusyTries; tries++)
            Thread.Sleep(BusyPauseMs);
        if (e == 0) return;
        // EBUSY: a program or link is there already (in this mode); EEXIST: one in the other mode.
        if (e is Errno.EBUSY or Errno.EEXIST)
            throw new IOException($"{who}: {ifname} already has an XDP program attached (another AF_XDP port, or `ip link set dev {ifname} xdp ...`); remove it first or use another interface");
        throw Failure(who, $"attaching the XDP program to {ifname} (bpf BPF_LINK_CREATE)", e);
    }

    /// <summary>One try at the link, native mode first; 0, or the errno that ended the try.</summary>
    private int TryLink(int ifindex, XdpAttachMode? only)
    {
        int e = 0;
        foreach (var mode in only is { } m ? [m] : new[] { XdpAttachMode.Native, XdpAttachMode.Generic })
        {
            var attr = new LinkCreateAttr
            {
                ProgFd = (uint)_progFd,
                TargetIfIndex = (uint)ifindex,
                AttachType = BPF_XDP,
                Flags = mode == XdpAttachMode.Native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE,
            };
            _linkFd = Call(BPF_LINK_CREATE, ref attr);
            if (_linkFd >= 0) { Mode = mode; return 0; }
            e = Libc.Errno;
            if (e is Errno.EBUSY or Errno.EEXIST or Errno.EPERM or Errno.EACCES) return e;
            // Anything else (EOPNOTSUPP, EINVAL: the driver has no native XDP): try generic mode.
        }
        return e;
    }

    /// <summary>Puts the AF_XDP socket in the map at <paramref name="queue"/>: from now on that queue's frames go to it.</summary>
    public void Insert(string who, uint queue, int socketFd)
    {
        uint key = queue;
        int value = socketFd;
        var attr = new MapElemAttr { MapFd = (uint)_mapFd, Key = (ulong)&key, Value = (ulong)&value };
        if (Call(BPF_MAP_UPDATE_ELEM, ref attr) < 0) throw Failure(who, $"putting the socket in the XSKMAP at queue {queue}", Libc.Errno);
    }

    internal static IOException Failure(string who, string what, int errno) => errno is Errno.EPERM or Errno.EACCES
        ? new IOException($"{who}: {what}: {Libc.Describe(errno)} (AF_XDP needs root, or CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF)")
        : Netdevice.Error($"{who}: {what}", errno);

    public void Dispose()
    {
        // The link first: closing it detaches the program from the interface.
        if (_linkFd >= 0) Libc.Close(_linkFd);
        if (_progFd >= 0) Libc.Close(_progFd);
        if (_mapFd >= 0) Libc.Close(_mapFd);
        _linkFd = _progFd = _mapFd = -1;
    }
}
