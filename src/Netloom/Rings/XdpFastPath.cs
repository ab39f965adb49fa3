using System.Buffers.Binary;
using Netloom.Interop;
using static Netloom.Interop.Bpf;
using static Netloom.Rings.XdpAssembler;

namespace Netloom.Rings;

/// <summary>
/// The switch's XDP fast path over its xdp ports, as Open vSwitch's AF_XDP/XDP offload does: the
/// switch keeps learning in user space and pushes what it learned about stations on xdp ports
/// into a BPF hash map (destination MAC to interface); each xdp port's program looks the frame
/// up there and sends it with XDP_REDIRECT through a DEVMAP straight out of the other port's
/// interface, with no AF_XDP socket, no copy into the UMEM, no socket buffer and no user space.
/// <para>
/// A frame takes the fast path only when all of these hold (else it goes to the port's AF_XDP
/// socket and the user-level switch, as without a fast path):
/// the fast path is enabled (the switch disables it while any capture is attached, so captures
/// stay complete); the destination is unicast; the source MAC is in the map on the interface
/// the frame came in on (so a station that moved, or one not learned yet, goes to the switch
/// first and is learned again there); the destination is in the map, on another interface, and
/// that interface accepts redirected frames (NETDEV_XDP_ACT_NDO_XMIT: for a veth, its peer has
/// an XDP program or GRO on; <see cref="IsRedirectTarget"/>).
/// </para>
/// <para>
/// The program marks the source's entry "seen" (one store, only when the mark is clear); the
/// switch reads and clears the marks to refresh its table, so stations that talk only through
/// the fast path do not age out, and entries that age out in the switch leave the map.
/// Counters: frames and bytes per ingress switch port, in a per-CPU array.
/// </para>
/// <para>
/// Map value layout (8 bytes): u32 ifindex, u16 seen, u16 target (1 when the interface accepts
/// redirects). Key: the MAC's six bytes in wire order, then two zero bytes.
/// </para>
/// </summary>
internal sealed unsafe class XdpFastPath : IDisposable
{
    public const int MaxPorts = 64;
    private const int MapLookupElem = 1, XdpAborted = 0;
    private const ulong BpfExist = 2;

    private readonly string _who;
    private int _fdb = -1, _devmap = -1, _control = -1, _stats = -1;
    private readonly int _cpus;
    private readonly HashSet<int> _devices = [];
    private readonly int[] _netlink = Enumerable.Repeat(-1, MaxPorts).ToArray(); // per switch port: a netlink socket in its port's namespace

    public XdpFastPath(string who, int capacity = 16_384)
    {
        _who = who;
        _cpus = PossibleCpus();
        try
        {
            _fdb = CreateMap(BPF_MAP_TYPE_HASH, 8, 8, (uint)capacity, "the fast path's MAC table (HASH)");
            _devmap = CreateMap(BPF_MAP_TYPE_DEVMAP_HASH, 4, 4, MaxPorts, "the fast path's DEVMAP_HASH");
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
    /// Replaces <paramref name="port"/>'s program with the fast-path one (its slow path is the
    /// port's own XSKMAP, as before) and lets the other ports redirect to its interface.
    /// </summary>
    public void Attach(XdpPort port, int switchPort)
    {
        if ((uint)switchPort >= MaxPorts) throw new ArgumentOutOfRangeException(nameof(switchPort), $"{_who}: the fast path serves switch ports 0 to {MaxPorts - 1}");
        int ifindex = port.IfIndex;
        // An ifindex means something only in its namespace: the DEVMAP resolves it in the caller's,
        // and a netlink socket answers about the one it was opened in. So both happen in the port's.
        _netlink[switchPort] = InNamespace(port.NetnsFd, () =>
        {
            if (_devices.Add(ifindex)) AddDevice(ifindex);
            return NetdevNetlink.Open();
        });
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
        // The destination: another interface that accepts redirected frames.
        a.LoadMap(R1, _fdb); a.Mov(R2, Fp); a.AddImm(R2, -8); a.Call(MapLookupElem);
        a.JumpIfEqualImm(R0, 0, "slow");
        a.LoadU16(R1, R0, 6);
        a.JumpIfEqualImm(R1, 0, "slow");
        a.LoadU32(R8, R0, 0);
        a.JumpIfEqual(R8, R7, "slow");                   // same segment: the switch drops and counts it
        // Count (per CPU: no atomics), then redirect.
        a.LoadMap(R1, _stats); a.Mov(R2, Fp); a.AddImm(R2, -24); a.Call(MapLookupElem);
        a.JumpIfEqualImm(R0, 0, "redirect");
        a.LoadU64(R1, R0, 0); a.AddImm(R1, 1); a.StoreU64(R0, 0, R1);
        a.LoadU32(R1, R6, 4); a.LoadU32(R2, R6, 0); a.Sub(R1, R2);
        a.LoadU64(R2, R0, 8); a.Add(R2, R1); a.StoreU64(R0, 8, R2);
        a.Label("redirect");
        a.LoadMap(R1, _devmap); a.Mov(R2, R8); a.MovImm(R3, XdpAborted); a.Call(XdpProgram.BpfFuncRedirectMap);
        a.Exit();
        // Everything else: the AF_XDP socket of the queue, as the plain program does.
        a.Label("slow");
        a.LoadU32(R2, R6, XdpProgram.XdpMdRxQueueIndex);
        a.LoadMap(R1, xskMap); a.MovImm(R3, XdpProgram.XdpPass); a.Call(XdpProgram.BpfFuncRedirectMap);
        a.Exit();
        return a.Build();
    }

    private void AddDevice(int ifindex) => Update(_devmap, &ifindex, &ifindex, 0, "adding the interface to the DEVMAP");

    /// <summary>Puts (or moves) a station: frames to <paramref name="mac"/> go out of <paramref name="ifindex"/> when <paramref name="target"/>. False when the map is full.</summary>
    public bool Set(ulong mac, int ifindex, bool target)
    {
        ulong key = Key(mac), value = (uint)ifindex | (target ? 1UL << 48 : 0);
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

    /// <summary>Whether frames redirected into switch port <paramref name="switchPort"/>'s interface are sent (NETDEV_XDP_ACT_NDO_XMIT); false when the kernel cannot say.</summary>
    public bool IsRedirectTarget(int switchPort, int ifindex) =>
        NetdevNetlink.XdpFeatures(_netlink[switchPort], ifindex) is { } f && (f & NetdevNetlink.XdpActNdoXmit) != 0;

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
        foreach (int fd in new[] { _fdb, _devmap, _control, _stats }) if (fd >= 0) Libc.Close(fd);
        for (int i = 0; i < _netlink.Length; i++) if (_netlink[i] >= 0) { Libc.Close(_netlink[i]); _netlink[i] = -1; }
        _fdb = _devmap = _control = _stats = -1;
    }
}
