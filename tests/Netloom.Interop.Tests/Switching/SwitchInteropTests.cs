using System.Text.Json;
using Netloom.Interop.Tests.Support;
using Netloom.Rings;
using Netloom.Switching;
using Xunit.Abstractions;

namespace Netloom.Interop.Tests.Switching;

/// <summary>
/// Two Linux hosts (namespaces) joined through our switch over veth and AF_PACKET: ARP, ping and
/// an iperf3 TCP run between them; then the same run through a Linux bridge, for comparison.
/// </summary>
public class SwitchInteropTests(ITestOutputHelper output)
{
    private sealed class Topology : IDisposable
    {
        public readonly string H1, H2, Mid, Ip1, Ip2;
        public readonly string Sw1 = "sw1", Sw2 = "sw2";

        public Topology()
        {
            string tag = $"{Environment.ProcessId % 100000}";
            int net = Environment.ProcessId % 200 + 20;
            (H1, H2, Mid) = ($"nlS1{tag}", $"nlS2{tag}", $"nlSm{tag}");
            (Ip1, Ip2) = ($"10.216.{net}.1", $"10.216.{net}.2");
            foreach (var ns in new[] { H1, H2, Mid }) Sh.Ok("ip", "netns", "add", ns);
            Sh.Ok("ip", "link", "add", "eth0", "netns", H1, "type", "veth", "peer", "name", Sw1, "netns", Mid);
            Sh.Ok("ip", "link", "add", "eth0", "netns", H2, "type", "veth", "peer", "name", Sw2, "netns", Mid);
            Sh.Ok("ip", "-n", H1, "addr", "add", $"{Ip1}/24", "dev", "eth0");
            Sh.Ok("ip", "-n", H2, "addr", "add", $"{Ip2}/24", "dev", "eth0");
            foreach (var (ns, dev) in new[] { (H1, "eth0"), (H2, "eth0"), (Mid, Sw1), (Mid, Sw2), (H1, "lo"), (H2, "lo") })
                Sh.Ok("ip", "-n", ns, "link", "set", dev, "up");
            // A software switch sees frames as they are on the wire: no TSO super-frames, no partial checksums.
            foreach (var ns in new[] { H1, H2 })
                Sh.Ok("ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso", "off", "gro", "off");
            foreach (var dev in new[] { Sw1, Sw2 })
                Sh.Ok("ip", "netns", "exec", Mid, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off");
        }

        public (int Code, string Out, string Err) In(string ns, params string[] cmd) => Sh.Run(TimeSpan.FromSeconds(60), "ip", ["netns", "exec", ns, .. cmd]);

        public void Dispose()
        {
            foreach (var ns in new[] { H1, H2, Mid }) Sh.Run("ip", "netns", "del", ns);
        }
    }

    /// <summary>iperf3 client in H1 against a server in H2; returns bits per second received.</summary>
    private static double Iperf(Topology t, int seconds)
    {
        using var server = new Background("Server listening", "ip", "netns", "exec", t.H2, "iperf3", "-s", "-1", "--forceflush", "-B", t.Ip2);
        server.WaitReady();
        var (code, json, err) = t.In(t.H1, "iperf3", "-c", t.Ip2, "-t", seconds.ToString(), "-J");
        Assert.True(code == 0, err + json);
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("end").GetProperty("sum_received").GetProperty("bits_per_second").GetDouble();
    }

    [RootFact("ip", "ping", "iperf3", "ethtool")]
    public void Linux_hosts_talk_through_the_switch_as_through_a_linux_bridge() =>
        SwitchThenBridge(t => [InNamespace.Run(t.Mid, () => Ports.Open($"afpacket:{t.Sw1}")), InNamespace.Run(t.Mid, () => Ports.Open($"afpacket:{t.Sw2}"))], "AF_PACKET", udp: false);

    /// <summary>
    /// The same over AF_XDP ports whose UMEM is one pool, so the switch forwards by swapping buffer
    /// indexes between the two sockets' rings; UDP through socat as well. The kernel fast path
    /// (TC kind) is on, so after the first frames of each host the flow bypasses the switch's
    /// thread (XdpFastPathTests counts that); ARP and the first frames go through it.
    /// </summary>
    [RootFact("ip", "ping", "iperf3", "ethtool", "socat")]
    public void Linux_hosts_talk_through_the_switch_over_xdp_ports_as_through_a_linux_bridge()
    {
        using var pool = new PacketPool(2 * XdpPort.BuffersPerPort(1024) + 1);
        var options = new PortOptions { SharedPool = pool };
        SwitchThenBridge(t =>
        {
            var a = (XdpPort)InNamespace.Run(t.Mid, () => Ports.Open($"xdp:{t.Sw1}", options));
            var b = (XdpPort)InNamespace.Run(t.Mid, () => Ports.Open($"xdp:{t.Sw2}", options));
            output.WriteLine($"xdp mode: {a.Mode}");
            Assert.Same(a.Rx.Pool, b.Tx.Pool); // one pool: the switch swaps, never copies
            return [a, b];
        }, "AF_XDP", udp: true, fastPath: true);
        Assert.Equal(pool.Count - 1, pool.FreeCount); // both ports gave every buffer back
    }

    private void SwitchThenBridge(Func<Topology, IPort[]> open, string what, bool udp, bool fastPath = false)
    {
        using var t = new Topology();
        double ours;
        using (var cts = new CancellationTokenSource())
        {
            var sw = new Switch(new LearningTable());
            foreach (var p in open(t)) sw.AddPort(p);
            if (fastPath) Assert.Null(sw.EnableXdpFastPath());
            var forwarder = new Thread(() => sw.Run(cts.Token, WaitMode.BusyPoll));
            forwarder.Start();
            try
            {
                var ping = t.In(t.H1, "ping", "-c", "5", "-i", "0.2", "-W", "2", t.Ip2);
                Assert.True(ping.Code == 0, "ping through the switch failed: " + ping.Out);
                Assert.Contains("0% packet loss", ping.Out);
                Assert.Contains(t.Ip2, t.In(t.H1, "ip", "neigh", "show").Out); // ARP resolved through the switch
                if (udp)
                {
                    using var listener = new Background(null, "ip", "netns", "exec", t.H2, "socat", "-u", $"UDP-RECV:7777,bind={t.Ip2}", "STDOUT");
                    var end = DateTime.UtcNow.AddSeconds(5);
                    while (!listener.Log.Contains("udp through the switch") && DateTime.UtcNow < end)
                    {
                        t.In(t.H1, "sh", "-c", $"echo udp through the switch | socat -u - UDP:{t.Ip2}:7777");
                        Thread.Sleep(200);
                    }
                    Assert.Contains("udp through the switch", listener.Log);
                }
                ours = Iperf(t, 3);
                Assert.True(ours > 0);
            }
            finally
            {
                cts.Cancel();
                forwarder.Join();
                sw.ReadFastPathCounters();
                output.WriteLine($"switch counters: fast path p0 {sw.Counters(0).FastPathPackets} p1 {sw.Counters(1).FastPathPackets}, p0 rx {sw.Counters(0).RxPackets} tx {sw.Counters(0).TxPackets}, p1 rx {sw.Counters(1).RxPackets} tx {sw.Counters(1).TxPackets}, drops {sw.Counters(0).TotalDrops + sw.Counters(1).TotalDrops}");
                sw.Dispose();
            }
        }
        Assert.True(ours > 0);

        // The same two hosts through a Linux bridge.
        Sh.Ok("ip", "-n", t.Mid, "link", "add", "br0", "type", "bridge");
        Sh.Ok("ip", "-n", t.Mid, "link", "set", t.Sw1, "master", "br0");
        Sh.Ok("ip", "-n", t.Mid, "link", "set", t.Sw2, "master", "br0");
        Sh.Ok("ip", "-n", t.Mid, "link", "set", "br0", "up");
        Assert.Equal(0, t.In(t.H1, "ping", "-c", "3", "-i", "0.2", "-W", "2", t.Ip2).Code);
        double bridge = Iperf(t, 3);
        output.WriteLine($"iperf3 TCP H1 -> H2: netloom switch over {what} {ours / 1e9:F3} Gbit/s, Linux bridge {bridge / 1e9:F3} Gbit/s, ratio {ours / bridge:F2}");
    }
}
