using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Netloom.Time;

namespace Netloom.Cli.Commands;

/// <summary>
/// `netloom bench switch`, second part: two Linux hosts (namespaces H1, H2), each with a veth
/// whose other end sits in a middle namespace, and iperf3 TCP from H1 to H2 through, in turn,
/// `netloom switch` over xdp ports with its TC fast path (busy-polling, and with blocking
/// waits), the same with `--no-xdp-fastpath`, `netloom switch` over afpacket ports, and a Linux
/// bridge. Offloads (tx checksum, TSO, GSO, GRO) are off on all four veth ends for all of them,
/// as in SwitchInteropTests: a software switch sees frames as they are on the wire. Rounds
/// alternate them (this machine drifts from minute to minute); figures are medians.
/// </summary>
internal static partial class BenchSwitch
{
    private const int HostRounds = 3;

    /// <summary>
    /// How the switch waits in these runs, and the other way, measured beside it with the TC fast
    /// path. Blocking: with the fast path the switch's thread has almost nothing to do, and on
    /// this 2-core VM a spinning one takes the core the kernel forwards on (docs/BENCHMARKS.md).
    /// </summary>
    private const string Wait = "Block", OtherWait = "BusyPoll";

    public static List<(string Key, object Value)> LinuxHosts(Duration d)
    {
        var figures = new List<(string, object)>();
        if (Environment.UserName != "root") { figures.Add(("linux_hosts", "not run: needs root (network namespaces)")); return figures; }
        foreach (var tool in new[] { "ip", "iperf3", "ethtool" })
            if (Run(tool, "--version").Code == 127) { figures.Add(("linux_hosts", $"not run: {tool} not found")); return figures; }

        string tag = (Environment.ProcessId % 100000).ToString(CultureInfo.InvariantCulture);
        string h1 = $"nlbh1{tag}", h2 = $"nlbh2{tag}", mid = $"nlbhm{tag}", sw1 = "sw1", sw2 = "sw2";
        int net = Environment.ProcessId % 200 + 20;
        string ip1 = $"10.219.{net}.1", ip2 = $"10.219.{net}.2";
        int secs = Math.Max(2, (int)d.TotalSeconds);
        try
        {
            foreach (var ns in new[] { h1, h2, mid }) Ok("ip", "netns", "add", ns);
            Ok("ip", "link", "add", "eth0", "netns", h1, "type", "veth", "peer", "name", sw1, "netns", mid);
            Ok("ip", "link", "add", "eth0", "netns", h2, "type", "veth", "peer", "name", sw2, "netns", mid);
            Ok("ip", "-n", h1, "addr", "add", $"{ip1}/24", "dev", "eth0");
            Ok("ip", "-n", h2, "addr", "add", $"{ip2}/24", "dev", "eth0");
            foreach (var (ns, dev) in new[] { (h1, "eth0"), (h2, "eth0"), (mid, sw1), (mid, sw2), (h1, "lo"), (h2, "lo") })
                Ok("ip", "-n", ns, "link", "set", dev, "up");
            foreach (var (ns, dev) in new[] { (h1, "eth0"), (h2, "eth0"), (mid, sw1), (mid, sw2) })
                Ok("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off");

            List<double> xdp = [], xdpOther = [], xdpSlow = [], afpacket = [], bridge = [];
            string? mode = null, tcState = null;
            for (int round = 0; round < HostRounds; round++)
            {
                xdp.Add(ThroughSwitch("xdp", out var m, fastPath: s => tcState ??= s));
                mode ??= m;
                xdpOther.Add(ThroughSwitch("xdp", out _, wait: OtherWait));
                xdpSlow.Add(ThroughSwitch("xdp", out _, extra: "--no-xdp-fastpath"));
                afpacket.Add(ThroughSwitch("afpacket", out _));
                bridge.Add(ThroughBridge());
            }
            double x = Median(xdp), xo = Median(xdpOther), xs = Median(xdpSlow), a = Median(afpacket), b = Median(bridge);
            figures.Add(("linux_hosts_xdp_switch_gbps", Math.Round(x, 3)));
            figures.Add(($"linux_hosts_xdp_switch_wait_{OtherWait.ToLowerInvariant()}_gbps", Math.Round(xo, 3)));
            figures.Add(("linux_hosts_xdp_no_fastpath_switch_gbps", Math.Round(xs, 3)));
            figures.Add(("linux_hosts_afpacket_switch_gbps", Math.Round(a, 3)));
            figures.Add(("linux_hosts_bridge_gbps", Math.Round(b, 3)));
            if (b > 0)
            {
                figures.Add(("ratio_xdp_switch_vs_bridge", Math.Round(x / b, 2)));
                figures.Add(($"ratio_xdp_switch_wait_{OtherWait.ToLowerInvariant()}_vs_bridge", Math.Round(xo / b, 2)));
                figures.Add(("ratio_xdp_no_fastpath_switch_vs_bridge", Math.Round(xs / b, 2)));
                figures.Add(("ratio_afpacket_switch_vs_bridge", Math.Round(a / b, 2)));
            }
            figures.Add(("linux_hosts_switch_wait", Wait));
            figures.Add(("linux_hosts_xdp_mode", mode ?? "unknown"));
            figures.Add(("linux_hosts_fastpath", tcState ?? "unknown"));
            figures.Add(("linux_hosts_rounds_gbps", $"xdp TC fast path {Join(xdp)}; the same with --wait {OtherWait} {Join(xdpOther)}; xdp no fast path {Join(xdpSlow)}; afpacket {Join(afpacket)}; bridge {Join(bridge)}"));
        }
        catch (Exception e) when (e is InvalidOperationException or IOException)
        {
            figures.Add(("linux_hosts", $"failed: {e.Message}"));
        }
        finally
        {
            foreach (var ns in new[] { h1, h2, mid }) Run("ip", "netns", "del", ns);
        }
        return figures;

        // `netloom switch` in the middle namespace (waiting as the bench's setting says), for one iperf3 run.
        double ThroughSwitch(string kind, out string? xdpMode, string? extra = null, Func<string, string>? fastPath = null, string wait = Wait)
        {
            string[] args = ["switch", "--port", $"{kind}:{sw1}", "--port", $"{kind}:{sw2}", "--wait", wait];
            using var sw = SelfProcess.Start(extra is null ? args : [.. args, extra], "ip", "netns", "exec", mid);
            var stderr = sw.StandardError.ReadToEndAsync();
            _ = sw.StandardOutput.ReadToEndAsync();
            try
            {
                WaitForPing(h1, ip2);
                return Iperf();
            }
            finally
            {
                Run("kill", "-INT", sw.Id.ToString(CultureInfo.InvariantCulture));
                if (!sw.WaitForExit(10_000)) sw.Kill();
                string err = stderr.Result;
                int at = err.IndexOf("runs in XDP ", StringComparison.Ordinal);
                xdpMode = at < 0 ? null : err[(at + "runs in XDP ".Length)..].Split(" mode")[0];
                int fp = err.IndexOf("XDP fast path ", StringComparison.Ordinal);
                int carried = err.IndexOf("fast path carried ", StringComparison.Ordinal);
                if (fp >= 0) fastPath?.Invoke(err[fp..].Split('\n')[0].Trim() + (carried >= 0 ? "; " + err[carried..].Split('\n')[0].Trim() : ""));
            }
        }

        double ThroughBridge()
        {
            Ok("ip", "-n", mid, "link", "add", "br0", "type", "bridge");
            try
            {
                Ok("ip", "-n", mid, "link", "set", sw1, "master", "br0");
                Ok("ip", "-n", mid, "link", "set", sw2, "master", "br0");
                Ok("ip", "-n", mid, "link", "set", "br0", "up");
                WaitForPing(h1, ip2);
                return Iperf();
            }
            finally { Run("ip", "-n", mid, "link", "del", "br0"); }
        }

        double Iperf()
        {
            using var server = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", h2, "iperf3", "-s", "-1", "-B", ip2]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            _ = server.StandardOutput.ReadToEndAsync();
            _ = server.StandardError.ReadToEndAsync();
            try
            {
                for (int attempt = 0; attempt < 20; attempt++)
                {
                    Thread.Sleep(250); // the server binds
                    var (code, json) = Run("ip", "netns", "exec", h1, "iperf3", "-c", ip2, "-t", secs.ToString(CultureInfo.InvariantCulture), "-J");
                    if (code != 0) continue;
                    using var doc = JsonDocument.Parse(json);
                    return doc.RootElement.GetProperty("end").GetProperty("sum_received").GetProperty("bits_per_second").GetDouble() / 1e9;
                }
                throw new InvalidOperationException("iperf3 never connected");
            }
            finally { if (!server.HasExited) server.Kill(); }
        }
    }

    private static void WaitForPing(string ns, string ip)
    {
        var until = Stopwatch.StartNew();
        while (until.Elapsed < TimeSpan.FromSeconds(20))
            if (Run("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", ip).Code == 0) return;
        throw new InvalidOperationException($"no ping reply from {ip} in 20 s");
    }

    private static string Join(List<double> xs) => string.Join(" ", xs.Select(v => v.ToString("F2", CultureInfo.InvariantCulture)));

    private static void Ok(string file, params string[] args)
    {
        var (code, _) = Run(file, args);
        if (code != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed");
    }

    /// <summary>Runs a program to its end; its exit code (127 when it cannot start) and output.</summary>
    private static (int Code, string Out) Run(string file, params string[] args)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var err = p.StandardError.ReadToEndAsync();
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            _ = err.Result;
            return (p.ExitCode, output);
        }
        catch (System.ComponentModel.Win32Exception) { return (127, ""); }
    }
}
