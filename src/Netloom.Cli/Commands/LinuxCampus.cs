using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Netloom.Cli.Commands;

/// <summary>
/// The bench emulate topology built from the Linux kernel's own parts: a namespace per host,
/// router and switch (a bridge), veth pairs for links, routes and forwarding set by `ip -batch`
/// (one `ip` per namespace, several at a time). Traffic is iperf3 UDP from the first LAN to the
/// last; a datagram crosses the same 13 links as in the emulator (10 routers).
/// </summary>
internal static class LinuxCampus
{
    public static bool Available(out string why)
    {
        why = "";
        if (!Environment.IsPrivilegedProcess) { why = "skipped: needs root (namespaces)"; return false; }
        foreach (var tool in new[] { "ip", "iperf3" })
            if (ExternalTool.Which(tool) is null) { why = $"skipped: {tool} is not installed"; return false; }
        return true;
    }

    public static List<(string, object)> Run(int routers, int hostsPerLan, double seconds)
    {
        var figures = new List<(string, object)>();
        string p = $"nlc{Environment.ProcessId % 1000}";
        string R(int i) => $"{p}r{i}";
        string S(int i) => $"{p}s{i}";
        string H(int i, int j) => $"{p}h{i}x{j}";
        var all = new List<string>();
        for (int i = 0; i < routers; i++)
        {
            all.Add(R(i));
            all.Add(S(i));
            for (int j = 0; j < hostsPerLan; j++) all.Add(H(i, j));
        }
        var clock = Stopwatch.StartNew();
        try
        {
            Batch(null, all.Select(n => $"netns add {n}"));
            // Links, made in the root namespace and moved into place (the moves carry no addresses yet).
            var links = new List<string>();
            for (int i = 0; i < routers; i++)
            {
                links.Add($"link add {p}l{i} netns {R(i)} type veth peer name {p}u{i} netns {S(i)}");
                for (int j = 0; j < hostsPerLan; j++) links.Add($"link add eth0 netns {H(i, j)} type veth peer name {p}p{i}x{j} netns {S(i)}");
                if (i + 1 < routers) links.Add($"link add {p}e{i} netns {R(i)} type veth peer name {p}w{i + 1} netns {R(i + 1)}");
            }
            Batch(null, links);
            var work = new List<(string Ns, List<string> Cmds)>();
            for (int i = 0; i < routers; i++)
            {
                var sw = new List<string> { "link set lo up", "link add br0 type bridge", "link set br0 up", $"link set {p}u{i} master br0", $"link set {p}u{i} up" };
                for (int j = 0; j < hostsPerLan; j++) { sw.Add($"link set {p}p{i}x{j} master br0"); sw.Add($"link set {p}p{i}x{j} up"); }
                work.Add((S(i), sw));
                var r = new List<string> { "link set lo up", $"link set {p}l{i} up", $"addr add 10.1.{i}.1/24 dev {p}l{i}" };
                if (i + 1 < routers) { r.Add($"link set {p}e{i} up"); r.Add($"addr add 10.2.{i}.1/30 dev {p}e{i}"); }
                if (i > 0) { r.Add($"link set {p}w{i} up"); r.Add($"addr add 10.2.{i - 1}.2/30 dev {p}w{i}"); }
                for (int k = 0; k < routers; k++)
                {
                    if (k < i) r.Add($"route add 10.1.{k}.0/24 via 10.2.{i - 1}.1");
                    if (k > i) r.Add($"route add 10.1.{k}.0/24 via 10.2.{i}.2");
                }
                work.Add((R(i), r));
                for (int j = 0; j < hostsPerLan; j++)
                    work.Add((H(i, j), ["link set lo up", "link set eth0 up", $"addr add 10.1.{i}.{j + 10}/24 dev eth0", $"route add default via 10.1.{i}.1"]));
            }
            Parallel.ForEach(work, new ParallelOptions { MaxDegreeOfParallelism = 4 }, w => Batch(w.Ns, w.Cmds));
            for (int i = 0; i < routers; i++) Run("ip", $"netns exec {R(i)} sysctl -qw net.ipv4.ip_forward=1");
            double buildMs = clock.Elapsed.TotalMilliseconds;
            figures.Add(("linux_namespaces", (double)all.Count));
            figures.Add(("linux_build_ms", Math.Round(buildMs, 0)));
            // Traffic: iperf3 UDP end to end (the first LAN's first host to the last LAN's first host).
            string target = $"10.1.{routers - 1}.10";
            using var server = Process.Start(new ProcessStartInfo("ip", $"netns exec {H(routers - 1, 0)} iperf3 -s -1 -p 5299") { RedirectStandardOutput = true, RedirectStandardError = true })!;
            Thread.Sleep(500);
            var wall = Stopwatch.StartNew();
            var (code, json) = Run("ip", $"netns exec {H(0, 0)} iperf3 -c {target} -p 5299 -u -b 0 -l 1000 -t {Math.Max(1, (int)Math.Round(seconds))} --json");
            double wallS = wall.Elapsed.TotalSeconds;
            server.WaitForExit(5000);
            if (code == 0 && TryDelivered(json, out long delivered, out double seconds2))
            {
                figures.Add(("linux_datagrams_per_s", Math.Round(delivered / seconds2)));
                figures.Add(("linux_packet_hops_per_s", Math.Round(delivered * (routers + 3) / seconds2)));
                figures.Add(("linux_mhops_per_s", Math.Round(delivered * (routers + 3) / seconds2 / 1e6, 2)));
            }
            else figures.Add(("linux_traffic", $"iperf3 failed ({code})"));
        }
        catch (InvalidOperationException e) { figures.Add(("linux", $"failed: {e.Message}")); }
        finally
        {
            var del = Stopwatch.StartNew();
            Batch(null, all.Select(n => $"netns del {n}"), force: true);
            figures.Add(("linux_teardown_ms", Math.Round(del.Elapsed.TotalMilliseconds, 0)));
        }
        return figures;
    }

    private static bool TryDelivered(string json, out long delivered, out double seconds)
    {
        delivered = 0;
        seconds = 1;
        try
        {
            var sum = JsonDocument.Parse(json).RootElement.GetProperty("end").GetProperty("sum");
            delivered = sum.GetProperty("packets").GetInt64() - sum.GetProperty("lost_packets").GetInt64();
            seconds = sum.GetProperty("seconds").GetDouble();
            return seconds > 0;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException) { return false; }
    }

    private static void Batch(string? ns, IEnumerable<string> commands, bool force = false)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardInput = true, RedirectStandardError = true, RedirectStandardOutput = true };
        if (ns is not null) { psi.ArgumentList.Add("-n"); psi.ArgumentList.Add(ns); }
        if (force) psi.ArgumentList.Add("-force");
        psi.ArgumentList.Add("-batch");
        psi.ArgumentList.Add("-");
        using var proc = Process.Start(psi)!;
        var err = proc.StandardError.ReadToEndAsync();
        var text = new StringBuilder();
        foreach (var c in commands) text.Append(c).Append('\n');
        proc.StandardInput.Write(text.ToString());
        proc.StandardInput.Close();
        proc.StandardOutput.ReadToEnd();
        proc.WaitForExit();
        if (proc.ExitCode != 0 && !force) throw new InvalidOperationException($"ip {(ns is null ? "" : $"-n {ns} ")}-batch: {err.Result.Trim()}");
    }

    private static (int Code, string Out) Run(string file, string args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var proc = Process.Start(psi)!;
        var err = proc.StandardError.ReadToEndAsync();
        string output = proc.StandardOutput.ReadToEnd();
        proc.WaitForExit();
        return (proc.ExitCode, output);
    }
}
