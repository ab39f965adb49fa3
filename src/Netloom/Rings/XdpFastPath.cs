using System.Buffers.Binary;
using Netloom.Interop;
using static Netloom.Interop.Bpf;
using static Netloom.Rings.XdpAssembler;

namespace Netloom.Rings;

/// <summary>
/// The switch's kernel fast path over its xdp ports, as Open vSwitch's kernel/TC offload does:
/// the switch keeps learning in user space and pushes what it learned about stations on xdp
/// ports into a BPF hash map (destination MAC to interface). Each xdp port's XDP program lets a
/// frame it may forward pass (XDP_PASS) into the kernel's receive path, and a TC program at the
/// interface's ingress (tcx) redirects the socket buffer itself: with bpf_redirect_peer straight
/// into the receiving host's end of the other port's veth, or with bpf_redirect out of the other
/// port. No AF_XDP socket, no copy into the UMEM, no user space. (veth's native XDP still copies
/// a cloned or headroom-short skb into a page before the XDP program runs; that copy stays.)
/// <para>
/// A frame takes the fast path only when all of these hold (else the XDP program sends it to the
/// port's AF_XDP socket and the user-level switch, as without a fast path): the fast path is
/// enabled (the switch disables it while any capture is attached, so captures stay complete);
/// the destination is unicast; the source MAC is in the map on the interface the frame came in
/// on (so a station that moved, or one not learned yet, goes to the switch first and is learned
/// again there); the destination is in the map, on another interface.
/// </para>
/// <para>
/// The XDP program marks the source's entry "seen" (one store, only when the mark is clear); the
/// switch reads and clears the marks to refresh its table, so stations that talk only through
/// the fast path do not age out, and entries that age out in the switch leave the map.
/// Counters: frames and bytes per ingress switch port, counted by the TC program in a per-CPU array.
/// </para>
/// <para>
/// An earlier version redirected from the XDP program through a DEVMAP instead (XDP_REDIRECT).
/// It was no faster with GRO on the hosts' ends, and carried nothing with it off (a veth sends
/// XDP-redirected frames only while its peer has GRO or an XDP program); docs/BENCHMARKS.md.
/// </para>
/// <para>
/// Map value layout (8 bytes): u32 ifindex, u16 seen, u8 unused, u8 peer (<see cref="FlagPeer"/>).
/// Key: the MAC's six bytes in wire order, then two zero bytes.
/// </para>
/// </summary>
internal sealed unsafe class XdpFastPath : IDisposable
{
    public const int MaxPorts = 64;
    private const int MapLookupElem = 1, BpfFuncRedirect = 23, BpfFuncRedirectPeer = 155, TcxNext = -1;
    private const short SkbLen = 0, SkbIfIndex = 40, SkbData = 76, SkbDataEnd = 80; // struct __sk_buff
    private const ulong BpfExist = 2;

    /// <summary>Map value flag (in the value's top 16 bits): the TC program sends to this station with bpf_redirect_peer.</summary>
    public const ushort FlagPeer = 0x100;

    private readonly string _who;
    private int _fdb = -1, _control = -1, _stats = -1;
    private readonly int _cpus;
    private readonly int[] _tcLinks = Enumerable.Repeat(-1, MaxPorts).ToArray(); // per switch port: its tcx ingress link
    private readonly bool[] _peer = new bool[MaxPorts];                          // per switch port: bpf_redirect_peer works into it
    private string? _namespace;                                                  // the network namespace all the ports are in ("net:[inode]")

    public XdpFastPath(string who, int capacity = 16_384)
    {
        _who = who;
        _cpus = PossibleCpus();
        try
        {
            _fdb = CreateMap(BPF_MAP_TYPE_HASH, 8, 8, (uint)capacity, "the fast path's MAC table (HASH)");
            _control = CreateMap(BPF_MAP_TYPE_ARRAY, 4, 4, 1, "the fast path's switch (ARRAY)");
            _stats = CreateMap(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 16, MaxPorts, "the fast path's counters (PERCPU_ARRAY)");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Whether frames may take the fast path at all (the switch clears it while a capture is attached).</summary>
    public bool Enabled
    {
        get => Lookup(_control, 0, out ulong v) && (uint)v != 0;
        set
        {
            uint key = 0, one = value ? 1u : 0u;
            Update(_control, &key, &one, 0, "switching the fast path on or off");
        }
    }

    /// <summary>
    /// Attaches the TC program to <paramref name="port"/>'s interface's ingress and replaces the
    /// port's XDP program with the fast-path one (its slow path is the port's own XSKMAP, as before).
    /// </summary>
    public void Attach(XdpPort port, int switchPort)
    {
        if ((uint)switchPort >= MaxPorts) throw new ArgumentOutOfRangeException(nameof(switchPort), $"{_who}: the fast path serves switch ports 0 to {MaxPorts - 1}");
        int ifindex = port.IfIndex;
        // The map holds ifindexes, and the kernel resolves a redirect's target in the namespace
        // of the interface the frame came in on: so all the ports must share one namespace.
        string ns = port.NetnsFd < 0 ? "this namespace" : new FileInfo($"/proc/self/fd/{port.NetnsFd}").LinkTarget ?? "unknown";
        if (_namespace is not null && ns != _namespace)
            throw new IOException($"{_who}: {port.Name} is in another network namespace ({ns}) than the first xdp port ({_namespace}); the fast path joins ports of one namespace only");
        _namespace = ns;
        // An ifindex means something only in its namespace: a tcx attach resolves it in the
        // caller's, and rtnetlink answers about the caller's. So both happen in the port's.
        int tc = XdpProgram.Load(_who, TcProgram(switchPort), "netloom_tc_fast", "loading the fast-path TC program", BPF_PROG_TYPE_SCHED_CLS, BPF_TCX_INGRESS);
        try
        {
            (_tcLinks[switchPort], _peer[switchPort]) = InNamespace(port.NetnsFd, () =>
            {
                var link = RouteNetlink.Link(ifindex);
                var attr = new LinkCreateAttr { ProgFd = (uint)tc, TargetIfIndex = (uint)ifindex, AttachType = BPF_TCX_INGRESS };
                int fd = Call(BPF_LINK_CREATE, ref attr);
                if (fd < 0) throw XdpProgram.Failure(_who, $"attaching the fast-path TC program to {port.Name}'s ingress (bpf BPF_LINK_CREATE, BPF_TCX_INGRESS; Linux 6.6+)", Libc.Errno);
                return (fd, link is { PeerElsewhere: true, Kind: "veth" or "netkit" });
            });
        }
        finally { Libc.Close(tc); } // the link holds it
        int prog = XdpProgram.LoadXdp(_who, Program(port.Program.MapFd, switchPort), "netloom_fast", "loading the fast-path XDP program");
        try { port.Program.Replace(_who, prog); }
        finally { Libc.Close(prog); } // the link holds it now
    }

    /// <summary>
    /// The program: check, look up the source, then the destination; redirect or fall to the
    /// AF_XDP socket. Stack: fp-8 destination key, fp-16 source key, fp-20 zero, fp-24 port.
    /// </summary>
    private Insn[] Program(int xskMap, int switchPort)
    {
        var a = new XdpAssembler();
        a.Mov(R6, R1);                                   // r6 = ctx
        a.LoadU32(R2, R6, 0);                            // r2 = data
        a.LoadU32(R3, R6, 4);                            // r3 = data_end
        a.Mov(R4, R2);
        a.AddImm(R4, 14);
        a.JumpIfGreater(R4, R3, "slow");                 // shorter than an Ethernet header
        a.LoadU8(R4, R2, 0);
        a.JumpIfAnyBit(R4, 1, "slow");                   // group destination (broadcast, multicast)
        a.LoadU32(R4, R2, 0); a.StoreU32(Fp, -8, R4);    // destination key
        a.LoadU16(R4, R2, 4); a.StoreU16(Fp, -4, R4);
        a.StoreImmU16(Fp, -2, 0);
        a.LoadU32(R4, R2, 6); a.StoreU32(Fp, -16, R4);   // source key
        a.LoadU16(R4, R2, 10); a.StoreU16(Fp, -12, R4);
        a.StoreImmU16(Fp, -10, 0);
        a.StoreImmU32(Fp, -20, 0);
        a.StoreImmU32(Fp, -24, switchPort);
        // Enabled?
        a.LoadMap(R1, _control); a.Mov(R2, Fp); a.AddImm(R2, -20); a.Call(MapLookupElem);
        a.JumpIfEqualImm(R0, 0, "slow");
        a.LoadU32(R1, R0, 0);
        a.JumpIfEqualImm(R1, 0, "slow");
        // The source, on the interface the frame came in on.
        a.LoadMap(R1, _fdb); a.Mov(R2, Fp); a.AddImm(R2, -16); a.Call(MapLookupElem);
        a.JumpIfEqualImm(R0, 0, "slow");
        a.LoadU32(R1, R0, 0);
        a.LoadU32(R7, R6, 12);                           // r7 = ingress_ifindex
        a.JumpIfNotEqual(R1, R7, "slow");
        a.LoadU16(R1, R0, 4);
        a.JumpIfNotEqualImm(R1, 0, "seen");              // write the mark only when it is clear
        a.StoreImmU16(R0, 4, 1);
        a.Label("seen");
        // The destination: another interface.
        a.LoadMap(R1, _fdb); a.Mov(R2, Fp); a.AddImm(R2, -8); a.Call(MapLookupElem);
        a.JumpIfEqualImm(R0, 0, "slow");
        a.LoadU32(R8, R0, 0);
        a.JumpIfEqual(R8, R7, "slow");                   // same segment: the switch drops and counts it
        // On to the kernel's receive path, where the TC program at this interface's ingress looks
        // the destination up again and redirects the socket buffer.
        a.MovImm(R0, XdpProgram.XdpPass);
        a.Exit();
        // Everything else: the AF_XDP socket of the queue, as the plain program does.
        a.Label("slow");
        a.LoadU32(R2, R6, XdpProgram.XdpMdRxQueueIndex);
        a.LoadMap(R1, xskMap); a.MovImm(R3, XdpProgram.XdpPass); a.Call(XdpProgram.BpfFuncRedirectMap);
        a.Exit();
        return a.Build();
    }

    /// <summary>
    /// The TC program at switch port <paramref name="switchPort"/>'s ingress (tcx). It sees only
    /// what the XDP program passed: unicast to a destination in the map on another interface. It
    /// looks the destination up, counts the frame, and redirects the socket buffer as it is:
    /// with bpf_redirect_peer into the receiving host's end of the other port's veth (no backlog,
    /// no second softirq) when the entry says so, else with bpf_redirect out of the other port.
    /// Anything else continues (TCX_NEXT) into the middle namespace's stack, as XDP_PASS did before.
    /// Stack: fp-8 destination key, fp-24 port.
    /// </summary>
    private Insn[] TcProgram(int switchPort)
    {
        var a = new XdpAssembler();
        a.Mov(R6, R1);                                   // r6 = skb
        a.LoadU32(R2, R6, SkbData);
        a.LoadU32(R3, R6, SkbDataEnd);
        a.Mov(R4, R2);
        a.AddImm(R4, 14);
        a.JumpIfGreater(R4, R3, "next");
        a.LoadU8(R4, R2, 0);
        a.JumpIfAnyBit(R4, 1, "next");
        a.LoadU32(R4, R2, 0); a.StoreU32(Fp, -8, R4);    // destination key
        a.LoadU16(R4, R2, 4); a.StoreU16(Fp, -4, R4);
        a.StoreImmU16(Fp, -2, 0);
        a.StoreImmU32(Fp, -24, switchPort);
        a.LoadMap(R1, _fdb); a.Mov(R2, Fp); a.AddImm(R2, -8); a.Call(MapLookupElem);
        a.JumpIfEqualImm(R0, 0, "next");
        a.LoadU32(R8, R0, 0);                            // r8 = the destination's interface
        a.LoadU8(R9, R0, 7);                             // r9 = FlagPeer
        a.LoadU32(R7, R6, SkbIfIndex);
        a.JumpIfEqual(R8, R7, "next");
        a.LoadMap(R1, _stats); a.Mov(R2, Fp); a.AddImm(R2, -24); a.Call(MapLookupElem);
        a.JumpIfEqualImm(R0, 0, "redirect");
        a.LoadU64(R1, R0, 0); a.AddImm(R1, 1); a.StoreU64(R0, 0, R1);
        a.LoadU32(R1, R6, SkbLen);
        a.LoadU64(R2, R0, 8); a.Add(R2, R1); a.StoreU64(R0, 8, R2);
        a.Label("redirect");
        a.Mov(R1, R8); a.MovImm(R2, 0);
        a.JumpIfEqualImm(R9, 0, "plain");
        a.Call(BpfFuncRedirectPeer);
        a.Exit();
        a.Label("plain");
        a.Call(BpfFuncRedirect);
        a.Exit();
        a.Label("next");
        a.MovImm(R0, TcxNext);
        a.Exit();
        return a.Build();
    }


    /// <summary>Puts (or moves) a station: frames to <paramref name="mac"/> go out of <paramref name="ifindex"/> as <paramref name="flags"/> allow (<see cref="Flags"/>). False when the map is full.</summary>
    public bool Set(ulong mac, int ifindex, ushort flags)
    {
        ulong key = Key(mac), value = (uint)ifindex | (ulong)flags << 48;
        var attr = new MapElemAttr { MapFd = (uint)_fdb, Key = (ulong)&key, Value = (ulong)&value };
        return Call(BPF_MAP_UPDATE_ELEM, ref attr) == 0;
    }

    public void Remove(ulong mac)
    {
        ulong key = Key(mac);
        var attr = new MapElemAttr { MapFd = (uint)_fdb, Key = (ulong)&key };
        Call(BPF_MAP_DELETE_ELEM, ref attr);
    }

    /// <summary>Whether the program has marked <paramref name="mac"/> as a source since the last call; clears the mark.</summary>
    public bool TakeSeen(ulong mac)
    {
        ulong key = Key(mac), value;
        var attr = new MapElemAttr { MapFd = (uint)_fdb, Key = (ulong)&key, Value = (ulong)&value };
        if (Call(BPF_MAP_LOOKUP_ELEM, ref attr) < 0 || (value >> 32 & 0xffff) == 0) return false;
        value &= ~(0xffffUL << 32);
        attr.Flags = BpfExist; // only if it is still there
        Call(BPF_MAP_UPDATE_ELEM, ref attr);
        return true;
    }

    /// <summary>Frames and bytes the fast path carried in from switch port <paramref name="switchPort"/>, summed over CPUs.</summary>
    public (long Packets, long Bytes) Counters(int switchPort)
    {
        uint key = (uint)switchPort;
        var values = stackalloc ulong[2 * _cpus];
        var attr = new MapElemAttr { MapFd = (uint)_stats, Key = (ulong)&key, Value = (ulong)values };
        if (Call(BPF_MAP_LOOKUP_ELEM, ref attr) < 0) return (0, 0);
        long packets = 0, bytes = 0;
        for (int c = 0; c < _cpus; c++) { packets += (long)values[2 * c]; bytes += (long)values[2 * c + 1]; }
        return (packets, bytes);
    }

    /// <summary>The map flags for stations behind switch port <paramref name="switchPort"/>: <see cref="FlagPeer"/> when its interface is a veth or netkit whose peer is in another namespace.</summary>
    public ushort Flags(int switchPort) => _peer[switchPort] ? FlagPeer : (ushort)0;

    /// <summary>Whether switch port <paramref name="switchPort"/> takes frames by bpf_redirect_peer.</summary>
    public bool Peer(int switchPort) => _peer[switchPort];

    /// <summary>Runs <paramref name="body"/> on a short-lived thread that entered network namespace <paramref name="netnsFd"/> (-1: this one).</summary>
    private static T InNamespace<T>(int netnsFd, Func<T> body)
    {
        if (netnsFd < 0) return body();
        T result = default!;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try
            {
                if (Libc.SetNs(netnsFd, Libc.CLONE_NEWNET) != 0) throw new IOException($"setns into the port's network namespace: {Libc.Describe(Libc.Errno)}");
                result = body();
            }
            catch (Exception e) { error = e; }
        }) { Name = "xdp fast path setup" };
        t.Start();
        t.Join();
        if (error is not null) throw error as IOException ?? new IOException(error.Message, error);
        return result;
    }

    /// <summary>The key: the MAC (wire order in the low 48 bits of <paramref name="mac"/>) as its six bytes, then two zeros.</summary>
    private static ulong Key(ulong mac) => BinaryPrimitives.ReverseEndianness(mac << 16);

    private bool Lookup(int map, uint k, out ulong value)
    {
        uint key = k;
        ulong v = 0;
        var attr = new MapElemAttr { MapFd = (uint)map, Key = (ulong)&key, Value = (ulong)&v };
        bool ok = Call(BPF_MAP_LOOKUP_ELEM, ref attr) == 0;
        value = v;
        return ok;
    }

    private void Update(int map, void* key, void* value, ulong flags, string what)
    {
        var attr = new MapElemAttr { MapFd = (uint)map, Key = (ulong)key, Value = (ulong)value, Flags = flags };
        if (Call(BPF_MAP_UPDATE_ELEM, ref attr) < 0) throw XdpProgram.Failure(_who, what, Libc.Errno);
    }

    private int CreateMap(uint type, uint keySize, uint valueSize, uint entries, string what)
    {
        var attr = new MapCreateAttr { MapType = type, KeySize = keySize, ValueSize = valueSize, MaxEntries = entries };
        int fd = Call(BPF_MAP_CREATE, ref attr);
        if (fd < 0) throw XdpProgram.Failure(_who, $"creating {what}", Libc.Errno);
        return fd;
    }

    /// <summary>The kernel's possible CPUs (a per-CPU map's value has one slot each): /sys/devices/system/cpu/possible, "0-N".</summary>
    private static int PossibleCpus()
    {
        try
        {
            string text = File.ReadAllText("/sys/devices/system/cpu/possible").Trim();
            int max = 0;
            foreach (var part in text.Split(','))
            {
                var ends = part.Split('-');
                max = Math.Max(max, int.Parse(ends[^1], System.Globalization.CultureInfo.InvariantCulture));
            }
            return max + 1;
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException) { return Environment.ProcessorCount; }
    }

    public void Dispose()
    {
        // The tcx links first: closing one detaches its program from the interface.
        for (int i = 0; i < _tcLinks.Length; i++) if (_tcLinks[i] >= 0) { Libc.Close(_tcLinks[i]); _tcLinks[i] = -1; }
        foreach (int fd in new[] { _fdb, _control, _stats }) if (fd >= 0) Libc.Close(fd);
        _fdb = _control = _stats = -1;
    }
}

