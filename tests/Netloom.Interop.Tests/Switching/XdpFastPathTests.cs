using System.Buffers.Binary;
using System.Text.Json;
using Netloom.Interop.Tests.Support;
using Netloom.Rings;
using Netloom.Switching;
using Netloom.Time;
using Netloom.Wire;
using Netloom.Wire.Capture;
using Xunit.Abstractions;

namespace Netloom.Interop.Tests.Switching;

/// <summary>
/// The switch's kernel fast path (XdpFastPath: XDP programs pass, TC programs redirect): Linux
/// hosts in namespaces, each with a veth whose other end is an xdp port of one switch in a middle
/// namespace, every offload off on all veth ends, as the bench has them. The kernel's ping, socat
/// and iperf3 are the peers.
/// </summary>
public class XdpFastPathTests(ITestOutputHelper output)
{
    private static string Cli => Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll");

    private sealed class Hosts : IDisposable
    {
        public readonly string Mid;
        public readonly string[] Ns, Ip, Port;
        public readonly PacketPool Pool;
        public readonly Switch Switch;
        private readonly CancellationTokenSource _stop = new();
        private readonly Thread _forwarder;

        public Hosts(int count)
        {
            string tag = $"{Environment.ProcessId % 100000}";
            int net = Environment.ProcessId % 200 + 20;
            Mid = $"nlFm{tag}";
            Ns = [.. Enumerable.Range(1, count).Select(i => $"nlF{i}{tag}")];
            Ip = [.. Enumerable.Range(1, count).Select(i => $"10.214.{net}.{i}")];
            Port = [.. Enumerable.Range(1, count).Select(i => $"fp{i}")];
            Sh.Ok("ip", "netns", "add", Mid);
            for (int i = 0; i < count; i++)
            {
                Sh.Ok("ip", "netns", "add", Ns[i]);
                Sh.Ok("ip", "link", "add", "eth0", "netns", Ns[i], "type", "veth", "peer", "name", Port[i], "netns", Mid);
                Sh.Ok("ip", "-n", Ns[i], "addr", "add", $"{Ip[i]}/24", "dev", "eth0");
                foreach (var (ns, dev) in new[] { (Ns[i], "eth0"), (Ns[i], "lo"), (Mid, Port[i]) }) Sh.Ok("ip", "-n", ns, "link", "set", dev, "up");
                Sh.Ok("ip", "netns", "exec", Ns[i], "ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso", "off", "gro", "off");
                Sh.Ok("ip", "netns", "exec", Mid, "ethtool", "-K", Port[i], "tx", "off", "tso", "off", "gso", "off", "gro", "off");
            }
            Pool = new PacketPool(count * XdpPort.BuffersPerPort(1024) + 1);
            Switch = new Switch(new LearningTable());
            var options = new PortOptions { SharedPool = Pool };
            foreach (var p in Port) Switch.AddPort(InNamespace.Run(Mid, () => Ports.Open($"xdp:{p}", options)));
            Assert.Null(Switch.EnableXdpFastPath());
            _forwarder = new Thread(() => Switch.Run(_stop.Token, WaitMode.BusyPoll)) { Name = "switch" };
            _forwarder.Start();
        }

        public (int Code, string Out, string Err) In(string ns, params string[] cmd) => Sh.Run(TimeSpan.FromSeconds(60), "ip", ["netns", "exec", ns, .. cmd]);

        /// <summary>The fast path's frames over all ports, as the switch's sync last read them (every second).</summary>
        public long FastPathFrames => Enumerable.Range(0, Port.Length).Sum(i => Switch.Counters(i).FastPathPackets);

        public long WaitForFastPath(Func<long, bool> until, int seconds = 5)
        {
            var end = DateTime.UtcNow.AddSeconds(seconds);
            long n = FastPathFrames;
            while (!until(n) && DateTime.UtcNow < end)
            {
                Thread.Sleep(200);
                n = FastPathFrames;
            }
            return n;
        }

        private bool _stopped;

        public void StopSwitch()
        {
            if (_stopped) return;
            _stopped = true;
            _stop.Cancel();
            _forwarder.Join();
            Switch.Dispose();
            Pool.Dispose();
        }

        public void Dispose()
        {
            StopSwitch();
            Sh.Run("ip", "netns", "del", Mid);
            foreach (var ns in Ns) Sh.Run("ip", "netns", "del", ns);
        }
    }

    [RootFact("ip", "ping", "iperf3", "ethtool", "socat")]
    public void Unicast_between_learned_hosts_goes_through_the_fast_path_and_the_switch_sees_only_the_rest()
    {
        using var h = new Hosts(2);
        // Each middle veth end has its TC program, and its peer is in another namespace: bpf_redirect_peer.
        foreach (var port in h.Port) Assert.Equal(1, TcxPrograms(h.Mid, port));
        Assert.True(h.Switch.FastPathPeer(0) && h.Switch.FastPathPeer(1), "the hosts' ends are veth peers in other namespaces");
        var ping = h.In(h.Ns[0], "ping", "-c", "5", "-i", "0.2", "-W", "2", h.Ip[1]);
        Assert.True(ping.Code == 0 && ping.Out.Contains(" 0% packet loss"), ping.Out);

        using (var listener = new Background(null, "ip", "netns", "exec", h.Ns[1], "socat", "-u", $"UDP-RECV:7777,bind={h.Ip[1]}", "STDOUT"))
        {
            var end = DateTime.UtcNow.AddSeconds(5);
            while (!listener.Log.Contains("udp through the fast path") && DateTime.UtcNow < end)
            {
                h.In(h.Ns[0], "sh", "-c", $"echo udp through the fast path | socat -u - UDP:{h.Ip[1]}:7777");
                Thread.Sleep(200);
            }
            Assert.Contains("udp through the fast path", listener.Log);
        }

        long userBefore = h.Switch.Counters(0).RxPackets + h.Switch.Counters(1).RxPackets;
        using (var server = new Background("Server listening", "ip", "netns", "exec", h.Ns[1], "iperf3", "-s", "-1", "--forceflush", "-B", h.Ip[1]))
        {
            server.WaitReady();
            var (code, json, err) = h.In(h.Ns[0], "iperf3", "-c", h.Ip[1], "-t", "2", "-J");
            Assert.True(code == 0, err + json);
            using var doc = JsonDocument.Parse(json);
            output.WriteLine($"iperf3 through the fast path: {doc.RootElement.GetProperty("end").GetProperty("sum_received").GetProperty("bits_per_second").GetDouble() / 1e9:F3} Gbit/s");
        }
        long fast = h.WaitForFastPath(n => n > 10_000);
        long user = h.Switch.Counters(0).RxPackets + h.Switch.Counters(1).RxPackets - userBefore;
        output.WriteLine($"during and after iperf3: fast path {fast} frames, the switch's thread {user}; fast path entries {h.Switch.XdpFastPathEntries}");
        // A 2 s TCP run is well over 10,000 frames; nearly all of them bypass user space.
        Assert.True(fast > 10_000, $"fast path carried {fast} frames");
        Assert.True(user < fast / 10, $"the switch's thread saw {user} frames beside the fast path's {fast}");
    }

    /// <summary>Records every frame a capture gets, with the port and direction.</summary>
    private sealed class Recorder : ICaptureWriter
    {
        private readonly List<string> _names = [];
        public readonly List<(string Port, PacketDirection Direction, byte[] Frame)> Frames = [];
        public int AddInterface(LinkType linkType, string? name = null, int snapLength = CaptureLimits.DefaultSnapLength)
        {
            lock (Frames) _names.Add(name ?? "");
            return _names.Count - 1;
        }
        public void Write(int interfaceId, Instant timestamp, ReadOnlySpan<byte> data, int originalLength = -1, PacketDirection direction = PacketDirection.Unknown)
        {
            lock (Frames) Frames.Add((_names[interfaceId], direction, data.ToArray()));
        }
        public void Flush() { }
        public void Dispose() { }

        /// <summary>ICMP echo frames of a type (8 request, 0 reply) seen on a port in a direction.</summary>
        public int Echoes(string port, PacketDirection direction, byte type)
        {
            lock (Frames)
                return Frames.Count(f => f.Port == port && f.Direction == direction && f.Frame.Length >= 42
                    && BinaryPrimitives.ReadUInt16BigEndian(f.Frame.AsSpan(12)) == 0x0800 && f.Frame[23] == 1 && f.Frame[14 + (f.Frame[14] & 0xf) * 4] == type);
        }
    }

    [RootFact("ip", "ping", "ethtool")]
    public void A_capture_on_the_switch_sees_every_frame_while_the_fast_path_stands_aside()
    {
        using var h = new Hosts(2);
        Assert.Equal(0, h.In(h.Ns[0], "ping", "-c", "20", "-i", "0.05", "-W", "2", h.Ip[1]).Code);
        long before = h.WaitForFastPath(n => n >= 20);
        Assert.True(before >= 20, $"the fast path carried {before} frames before the capture"); // it was carrying the pings

        var rec = new Recorder();
        h.Switch.Capture(rec, 0, 1);
        Thread.Sleep(1200); // one counter read by the sync
        long atCapture = h.FastPathFrames;
        var ping = h.In(h.Ns[0], "ping", "-c", "20", "-i", "0.05", "-W", "2", h.Ip[1]);
        Assert.True(ping.Code == 0 && ping.Out.Contains(" 0% packet loss"), ping.Out);
        Thread.Sleep(1200);
        Assert.Equal(atCapture, h.FastPathFrames); // nothing bypassed the capture
        // Each request in on H1's port and out of H2's, each reply the other way: all 20 of each.
        Assert.Equal(20, rec.Echoes(h.Switch.PortName(0), PacketDirection.Inbound, 8));
        Assert.Equal(20, rec.Echoes(h.Switch.PortName(1), PacketDirection.Outbound, 8));
        Assert.Equal(20, rec.Echoes(h.Switch.PortName(1), PacketDirection.Inbound, 0));
        Assert.Equal(20, rec.Echoes(h.Switch.PortName(0), PacketDirection.Outbound, 0));

        h.Switch.StopCapture();
        Assert.Equal(0, h.In(h.Ns[0], "ping", "-c", "20", "-i", "0.05", "-W", "2", h.Ip[1]).Code);
        long after = h.WaitForFastPath(n => n > atCapture);
        Assert.True(after > atCapture, "the fast path resumed after the capture stopped");
    }

    [RootFact("ip", "pgrep", "ethtool")]
    public void The_TC_programs_go_with_the_switch_process_even_after_sigkill()
    {
        using var h = new Hosts(2);
        h.StopSwitch(); // the namespaces stay; the in-process switch goes, and its programs with it
        // The kernel may release the links a moment after their descriptors close (it failed once at once).
        var released = DateTime.UtcNow.AddSeconds(5);
        while (TcxPrograms(h.Mid, h.Port[0]) != 0 && DateTime.UtcNow < released) Thread.Sleep(50);
        Assert.Equal(0, TcxPrograms(h.Mid, h.Port[0]));
        using var child = new Background(null, "ip", "netns", "exec", h.Mid, "dotnet", Cli, "switch", "--port", $"xdp:{h.Port[0]}", "--port", $"xdp:{h.Port[1]}", "--duration", "120");
        var end = DateTime.UtcNow.AddSeconds(30);
        while (TcxPrograms(h.Mid, h.Port[1]) == 0 && DateTime.UtcNow < end) Thread.Sleep(100);
        Assert.True(TcxPrograms(h.Mid, h.Port[0]) == 1 && TcxPrograms(h.Mid, h.Port[1]) == 1, "the child never attached its TC programs: " + child.Log);

        // SIGKILL: no Dispose, no finally; only the kernel closing the dead process's files (the tcx links).
        int pid = int.Parse(Sh.Ok("pgrep", "-f", $"switch --port xdp:{h.Port[0]} ").Split('\n', StringSplitOptions.RemoveEmptyEntries)[0]);
        Sh.Ok("kill", "-KILL", pid.ToString());
        var gone = DateTime.UtcNow.AddSeconds(10);
        while (TcxPrograms(h.Mid, h.Port[0]) + TcxPrograms(h.Mid, h.Port[1]) > 0 && DateTime.UtcNow < gone) Thread.Sleep(50);
        Assert.Equal(0, TcxPrograms(h.Mid, h.Port[0]));
        Assert.Equal(0, TcxPrograms(h.Mid, h.Port[1]));
    }

    /// <summary>How many programs are on an interface's tcx ingress (bpf BPF_PROG_QUERY); the query runs in the interface's namespace.</summary>
    private static unsafe int TcxPrograms(string ns, string ifname) => InNamespace.Run(ns, () =>
    {
        int ifindex = IfIndex(ifname);
        Assert.True(ifindex > 0, $"no {ifname} in {ns}");
        var attr = new ProgQueryAttr { TargetIfIndex = (uint)ifindex, AttachType = Netloom.Interop.Bpf.BPF_TCX_INGRESS };
        int r = Netloom.Interop.Bpf.Call(16 /* BPF_PROG_QUERY */, ref attr);
        Assert.True(r == 0, $"BPF_PROG_QUERY on {ifname} ({ifindex}) failed: errno {Netloom.Interop.Libc.Errno}");
        return (int)attr.ProgCount;
    });

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "if_nametoindex")]
    private static extern int IfIndex(string name);

    /// <summary>The BPF_PROG_QUERY part of bpf_attr (linux/bpf.h), up to the revision.</summary>
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct ProgQueryAttr
    {
        public uint TargetIfIndex, AttachType, QueryFlags, AttachFlags;
        public ulong ProgIds;
        public uint ProgCount, Pad;
        public ulong ProgAttachFlags, LinkIds, LinkAttachFlags, Revision;
    }

    [RootFact("ip")]
    public void Xdp_ports_in_two_namespaces_get_no_fast_path_and_a_reason()
    {
        using var net = new NetnsPair();
        using var pool = new PacketPool(2 * XdpPort.BuffersPerPort(1024) + 1);
        var options = new PortOptions { SharedPool = pool };
        using var sw = new Switch(new LearningTable());
        sw.AddPort(InNamespace.Run(net.NsA, () => Ports.Open($"xdp:{net.IfA}", options)));
        sw.AddPort(InNamespace.Run(net.NsB, () => Ports.Open($"xdp:{net.IfB}", options)));
        var why = sw.EnableXdpFastPath();
        Assert.NotNull(why);
        Assert.Contains("another network namespace", why);
        Assert.False(sw.HasXdpFastPath);
        Assert.Equal(0, TcxPrograms(net.NsA, net.IfA)); // the first port's TC program went with the failed attempt
    }

    [RootFact("ip", "ping", "ethtool")]
    public void A_host_that_moves_to_another_port_is_learned_there_again()
    {
        using var h = new Hosts(3);
        Assert.Equal(0, h.In(h.Ns[0], "ping", "-c", "10", "-i", "0.05", "-W", "2", h.Ip[1]).Code);
        Assert.True(h.WaitForFastPath(n => n > 0) > 0, "the fast path carried H1 <-> H2");

        // H2's MAC and address move to H3's link (port 3); H2's link goes down.
        string mac = h.In(h.Ns[1], "cat", "/sys/class/net/eth0/address").Out.Trim();
        Sh.Ok("ip", "-n", h.Ns[1], "link", "set", "eth0", "down");
        Sh.Ok("ip", "-n", h.Ns[2], "link", "set", "eth0", "address", mac);
        Sh.Ok("ip", "-n", h.Ns[2], "addr", "flush", "dev", "eth0");
        Sh.Ok("ip", "-n", h.Ns[2], "addr", "add", $"{h.Ip[1]}/24", "dev", "eth0");
        long rxBefore = long.Parse(h.In(h.Ns[2], "cat", "/sys/class/net/eth0/statistics/rx_packets").Out.Trim());
        // The moved host speaks first (as a real one would, with ARP), so the switch sees it on its new port.
        h.In(h.Ns[2], "ping", "-c", "3", "-i", "0.2", "-W", "1", h.Ip[0]);
        var ping = h.In(h.Ns[0], "ping", "-c", "5", "-i", "0.2", "-W", "2", h.Ip[1]);
        Assert.True(ping.Code == 0 && ping.Out.Contains(" 0% packet loss"), "H1 reaches the moved host: " + ping.Out);
        long rxAfter = long.Parse(h.In(h.Ns[2], "cat", "/sys/class/net/eth0/statistics/rx_packets").Out.Trim());
        Assert.True(rxAfter - rxBefore >= 5, $"H3's link received {rxAfter - rxBefore} frames");
        Assert.True(h.Switch.Counters(2).FastPathPackets + h.Switch.Counters(2).RxPackets > 0);
    }
}
