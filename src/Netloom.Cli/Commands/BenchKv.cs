using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Netloom.Cli.Commands;

/// <summary>
/// `netloom bench kv`: redis-benchmark against the io_uring engine (by default, and busy-polling),
/// the sockets engine and redis-server in the same run: three interleaved rounds without
/// pipelining (the median counts), one with; and system calls per request for each, counted by
/// strace during a separate shorter run.
/// </summary>
internal static partial class BenchKv
{
    /// <summary>Rounds of the plain run: each server's figure is the median, which the run-to-run noise of a shared 2-core machine moves least.</summary>
    private const int Rounds = 3;

    public static List<(string Key, object Value)> Run(int requests)
    {
        var figures = new List<(string, object)>();
        if (ExternalTool.Which("redis-benchmark") is null) { figures.Add(("error", "redis-benchmark not found (apt-get install redis-tools)")); return figures; }
        var targets = new List<(string Name, Func<int, Process?> Start)>
        {
            // What a user gets by default: a ring per core, sleeping in io_uring_enter between batches.
            ("uring", port => SelfProcess.Start(["kv", "--engine", "uring", "--listen", $"127.0.0.1:{port}"])),
            // One ring that busy-polls 50 µs before sleeping: a core of its own, no wake-ups under load.
            ("uring_poll", port => SelfProcess.Start(["kv", "--engine", "uring", "--threads", "1", "--busy-poll", "50", "--listen", $"127.0.0.1:{port}"])),
            ("sockets", port => SelfProcess.Start(["kv", "--engine", "sockets", "--listen", $"127.0.0.1:{port}"])),
        };
        if (ExternalTool.Which("redis-server") is { } redis)
            targets.Add(("redis", port => Process.Start(new ProcessStartInfo(redis, ["--port", port.ToString(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]) { RedirectStandardOutput = true, RedirectStandardError = true })));
        else figures.Add(("redis", "not run: redis-server not found (apt-get install redis-server)"));

        // All servers run at once (idle ones sleep) so that the plain rounds interleave: a slow
        // spell of the machine then lands on every server rather than on one.
        var running = new List<(string Name, Process Server, int Port)>();
        try
        {
            foreach (var (name, start) in targets)
            {
                int port = FreePort();
                var server = start(port);
                if (server is null || !WaitForPort(port)) { figures.Add(($"{name}_error", "server did not start")); server?.Kill(true); continue; }
                running.Add((name, server, port));
            }
            var plain = running.ToDictionary(r => r.Name, _ => new List<(double Set, double Get)>());
            var cpu = running.ToDictionary(r => r.Name, _ => 0.0);
            for (int round = 0; round < Rounds; round++)
                foreach (var (name, server, port) in running)
                {
                    double cpu0 = CpuSeconds(server.Id);
                    plain[name].Add(Benchmark(port, requests, 1));
                    cpu[name] += CpuSeconds(server.Id) - cpu0;
                }
            foreach (var (name, server, port) in running)
            {
                var piped = Benchmark(port, requests * 5, 16);
                figures.Add(($"{name}_set_rps", Median(plain[name].Select(r => r.Set))));
                figures.Add(($"{name}_get_rps", Median(plain[name].Select(r => r.Get))));
                figures.Add(($"{name}_plain_runs", string.Join(" ", plain[name].Select(r => $"{r.Set / 1000:0.0}k/{r.Get / 1000:0.0}k"))));
                figures.Add(($"{name}_set_rps_p16", piped.Set));
                figures.Add(($"{name}_get_rps_p16", piped.Get));
                // The server's own CPU time (user + system, all threads) per request of the plain runs:
                // what the server costs, whatever the benchmark client sharing the cores leaves it.
                if (!double.IsNaN(cpu[name])) figures.Add(($"{name}_cpu_us_per_request", Math.Round(cpu[name] * 1e6 / (2.0 * requests * Rounds), 2)));
                if (ExternalTool.Which("strace") is not null) figures.Add(($"{name}_syscalls_per_request", SyscallsPerRequest(server.Id, port, requests / 4)));
            }
        }
        finally
        {
            foreach (var (_, server, _) in running)
            {
                server.Kill(entireProcessTree: true);
                server.WaitForExit(5000);
                server.Dispose();
            }
        }
        double V(string k) => figures.FirstOrDefault(f => f.Item1 == k).Item2 is double d ? d : double.NaN;
        foreach (var engine in new[] { "uring", "uring_poll" })
        {
            figures.Add(($"{engine}_vs_sockets_set", Math.Round(V($"{engine}_set_rps") / V("sockets_set_rps"), 2)));
            figures.Add(($"{engine}_vs_sockets_get", Math.Round(V($"{engine}_get_rps") / V("sockets_get_rps"), 2)));
            figures.Add(($"{engine}_vs_redis_set", Math.Round(V($"{engine}_set_rps") / V("redis_set_rps"), 2)));
            figures.Add(($"{engine}_vs_redis_get", Math.Round(V($"{engine}_get_rps") / V("redis_get_rps"), 2)));
        }
        figures.Add(("cpu_per_request_sockets_over_uring", Math.Round(V("sockets_cpu_us_per_request") / V("uring_cpu_us_per_request"), 2)));
        figures.Add(("cpu_per_request_redis_over_uring", Math.Round(V("redis_cpu_us_per_request") / V("uring_cpu_us_per_request"), 2)));
        return figures.Where(f => f.Item2 is not double d || !double.IsNaN(d)).ToList();
    }

    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>User plus system CPU seconds a process has used (/proc/PID/stat, fields 14 and 15); NaN when unreadable.</summary>
    internal static double CpuSeconds(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) is in parentheses and may hold spaces: count fields after its ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return ticks / 100.0; // USER_HZ is 100 on Linux
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException) { return double.NaN; }
    }

    /// <summary>
    /// CPU seconds the whole machine has spent busy, all cores together (/proc/stat's first line:
    /// user, nice, system, irq and softirq; not idle, iowait or steal); NaN when unreadable. A
    /// bench takes it around a measurement to say what everything but the server cost (the load
    /// generator, mostly) and whether the cores were saturated.
    /// </summary>
    internal static double MachineBusySeconds()
    {
        try
        {
            string first = File.ReadLines("/proc/stat").First();
            var f = first.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long busy = 0;
            foreach (int i in new[] { 1, 2, 3, 6, 7 }) busy += long.Parse(f[i], CultureInfo.InvariantCulture);
            return busy / 100.0; // USER_HZ
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException or InvalidOperationException) { return double.NaN; }
    }

    /// <summary>
    /// CPU around one measurement: the server's, the rest of the machine's (busy CPU less the
    /// server's: the load generator, mostly), and the share of all cores busy. Start before the
    /// load, <see cref="Stop"/> after it.
    /// </summary>
    internal readonly struct LoadMeter(int serverPid)
    {
        private readonly double _server0 = CpuSeconds(serverPid), _busy0 = MachineBusySeconds();
        private readonly long _start = Stopwatch.GetTimestamp();

        public (double ServerSeconds, double OthersSeconds, double BusyShare) Stop()
        {
            double server = CpuSeconds(serverPid) - _server0, busy = MachineBusySeconds() - _busy0;
            return (server, busy - server, busy / (Stopwatch.GetElapsedTime(_start).TotalSeconds * Environment.ProcessorCount));
        }
    }

    [GeneratedRegex(@"(SET|GET): ([0-9.]+) requests per second")]
    private static partial Regex Rps();

    private static (double Set, double Get) Benchmark(int port, int n, int pipeline)
    {
        var psi = new ProcessStartInfo("redis-benchmark", ["-p", port.ToString(), "-t", "set,get", "-n", n.ToString(), "-c", "50", "-P", pipeline.ToString(), "-q"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd().Replace('\r', '\n');
        p.WaitForExit();
        double set = 0, get = 0;
        foreach (Match m in Rps().Matches(output))
        {
            double v = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            if (m.Groups[1].Value == "SET") set = v; else get = v;
        }
        return (Math.Round(set), Math.Round(get));
    }

    /// <summary>strace -c -f attached to the server while redis-benchmark runs: system calls / requests.</summary>
    private static double SyscallsPerRequest(int pid, int port, int n)
    {
        // -p names one thread: attach to every thread the server already has (-f follows new ones).
        var psi = new ProcessStartInfo("strace") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("-f");
        foreach (var task in Directory.GetDirectories($"/proc/{pid}/task"))
        {
            psi.ArgumentList.Add("-p");
            psi.ArgumentList.Add(Path.GetFileName(task));
        }
        using var strace = Process.Start(psi)!;
        var report = strace.StandardError.ReadToEndAsync();
        Thread.Sleep(500);
        Benchmark(port, n, 1);
        using (var stop = Process.Start("kill", ["-INT", strace.Id.ToString()])) stop!.WaitForExit();
        strace.WaitForExit(10_000);
        // The summary's last line: "100.00  seconds  usecs/call  calls  [errors]  total".
        var total = Regex.Match(report.Result, @"^\s*100\.00\s+\S+\s+\S+\s+(\d+)", RegexOptions.Multiline);
        return total.Success ? Math.Round(double.Parse(total.Groups[1].Value) / (2.0 * n), 2) : double.NaN; // SET and GET: 2n requests
    }

    internal static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    internal static bool WaitForPort(int port)
    {
        for (int i = 0; i < 100; i++)
        {
            try { using var c = new TcpClient(); c.Connect(IPAddress.Loopback, port); return true; }
            catch (SocketException) { Thread.Sleep(100); }
        }
        return false;
    }

}
