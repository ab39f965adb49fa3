using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Netloom.Cli.Commands;

/// <summary>
/// `netloom bench run`: unmodified programs under `netloom run`, both ends over a shm port, beside
/// the same programs on the kernel over loopback, in one run with interleaved rounds: sockperf
/// ping-pong (TCP and UDP, 64 B), iperf3 (one stream), redis-benchmark (-t set,get -c 50 -P 16),
/// and what the interposer costs a call on a kernel descriptor (write and read on a pipe).
/// </summary>
internal static partial class BenchRun
{
    private const int Rounds = 3;
    private static int s_ports = Environment.ProcessId % 1000;

    public static List<(string Key, object Value)> Run(double seconds, int busyPollUs)
    {
        var figures = new List<(string, object)>();
        if (!RunCommand.TryFindRunParts(out var preload, out var engine, out var missing)) { figures.Add(("error", missing!)); return figures; }
        Interposition(figures, preload, engine);
        if (ExternalTool.Which("sockperf") is not null)
        {
            foreach (var tcp in new[] { true, false })
            {
                string p = tcp ? "tcp" : "udp";
                var kernel = new List<double>();
                var netloom = new List<double>();
                for (int round = 0; round < Rounds; round++)
                {
                    kernel.Add(Sockperf(tcp, seconds, null, busyPollUs));
                    netloom.Add(Sockperf(tcp, seconds, NextShm(), busyPollUs));
                }
                figures.Add(($"sockperf_{p}_kernel_p50_us", Median(kernel)));
                figures.Add(($"sockperf_{p}_netloom_p50_us", Median(netloom)));
                figures.Add(($"sockperf_{p}_rounds", $"kernel {Join(kernel)}; netloom {Join(netloom)}"));
                figures.Add(($"sockperf_{p}_netloom_over_kernel", Math.Round(Median(netloom) / Median(kernel), 3)));
            }
        }
        else figures.Add(("sockperf", "not run: sockperf not found (apt-get install sockperf)"));
        if (ExternalTool.Which("iperf3") is not null)
        {
            var kernel = new List<double>();
            var netloom = new List<double>();
            for (int round = 0; round < Rounds; round++)
            {
                kernel.Add(Iperf(seconds, null));
                netloom.Add(Iperf(seconds, NextShm()));
            }
            figures.Add(("iperf3_kernel_gbps", Median(kernel)));
            figures.Add(("iperf3_netloom_gbps", Median(netloom)));
            figures.Add(("iperf3_rounds", $"kernel {Join(kernel)}; netloom {Join(netloom)}"));
            figures.Add(("iperf3_netloom_over_kernel", Math.Round(Median(netloom) / Median(kernel), 3)));
        }
        else figures.Add(("iperf3", "not run: iperf3 not found (apt-get install iperf3)"));
        if (ExternalTool.Which("redis-server") is not null && ExternalTool.Which("redis-benchmark") is not null)
        {
            var kernel = new List<(double Set, double Get)>();
            var netloom = new List<(double Set, double Get)>();
            for (int round = 0; round < Rounds; round++)
            {
                kernel.Add(Redis(null));
                netloom.Add(Redis(NextShm()));
            }
            foreach (var (what, pick) in new (string, Func<(double Set, double Get), double>)[] { ("set", r => r.Set), ("get", r => r.Get) })
            {
                double k = Median(kernel.Select(pick)), n = Median(netloom.Select(pick));
                figures.Add(($"redis_{what}_kernel_rps", k));
                figures.Add(($"redis_{what}_netloom_rps", n));
                figures.Add(($"redis_{what}_netloom_over_kernel", Math.Round(n / k, 3)));
            }
            figures.Add(("redis_rounds", $"kernel {string.Join(" ", kernel.Select(r => $"{r.Set / 1000:0}k/{r.Get / 1000:0}k"))}; netloom {string.Join(" ", netloom.Select(r => $"{r.Set / 1000:0}k/{r.Get / 1000:0}k"))}"));
        }
        else figures.Add(("redis", "not run: redis-server or redis-benchmark not found (apt-get install redis-server redis-tools)"));
        return figures.Where(f => f.Item2 is not double d || !double.IsNaN(d)).ToList();
    }

    private static string NextShm() => $"shm:nlbench{Environment.ProcessId}x{Interlocked.Increment(ref s_ports)}";
    private static int NextPort() => 20000 + Interlocked.Increment(ref s_ports) % 20000;
    private static string Join(IEnumerable<double> values) => string.Join(" ", values.Select(v => v.ToString("0.###", CultureInfo.InvariantCulture)));

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>
    /// The cost of the interposer on a call it passes to libc: a C program writes one byte to a
    /// pipe and reads it back, 2 million times, with and without the interposer preloaded
    /// (six rounds each, the order swapped every round; the engine never loads, as no AF_INET
    /// socket is made).
    /// </summary>
    private static void Interposition(List<(string, object)> figures, string preload, string engine)
    {
        if (ExternalTool.Which("gcc") is null) { figures.Add(("interposition", "not run: gcc not found")); return; }
        string dir = Directory.CreateTempSubdirectory("netloom-bench-run-").FullName;
        try
        {
            string src = Path.Combine(dir, "pipe.c"), exe = Path.Combine(dir, "pipe");
            File.WriteAllText(src, """
                #include <stdio.h>
                #include <time.h>
                #include <unistd.h>
                int main(void) {
                    int p[2]; char c = 'x'; struct timespec a, b;
                    if (pipe(p)) return 1;
                    const long n = 2000000;
                    clock_gettime(CLOCK_MONOTONIC, &a);
                    for (long i = 0; i < n; i++) { if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1) return 1; }
                    clock_gettime(CLOCK_MONOTONIC, &b);
                    printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
                    return 0;
                }
                """);
            using (var gcc = Process.Start("gcc", ["-O2", "-o", exe, src])) gcc!.WaitForExit();
            var plain = new List<double>();
            var interposed = new List<double>();
            // Six rounds, the order swapped every round (ABBA), so whichever runs second in a round
            // (a warmer pipe, a CPU that has not moved) favours neither side.
            for (int round = 0; round < 6; round++)
            {
                if (round % 2 == 0) { plain.Add(RunPipe(exe, null, null)); interposed.Add(RunPipe(exe, preload, engine)); }
                else { interposed.Add(RunPipe(exe, preload, engine)); plain.Add(RunPipe(exe, null, null)); }
            }
            figures.Add(("pipe_write_read_ns", Median(plain)));
            figures.Add(("pipe_write_read_interposed_ns", Median(interposed)));
            figures.Add(("pipe_rounds", $"plain {Join(plain)}; interposed {Join(interposed)}"));
            figures.Add(("interposed_over_plain", Math.Round(Median(interposed) / Median(plain), 3)));
        }
        finally { Directory.Delete(dir, true); }
    }

    private static double RunPipe(string exe, string? preload, string? engine)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true };
        if (preload is not null)
        {
            psi.Environment["LD_PRELOAD"] = preload;
            psi.Environment["NETLOOM_ENGINE"] = engine;
        }
        using var p = Process.Start(psi)!;
        string o = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return double.TryParse(o.Trim(), CultureInfo.InvariantCulture, out double ns) ? ns : double.NaN;
    }

    /// <summary>The program under netloom run over <paramref name="shm"/> (at 10.99.0.host), or plain when shm is null.</summary>
    private static Process Start(string? shm, int host, string[] program, int busyPollUs, int mtu = 1500, bool quiet = true)
    {
        ProcessStartInfo psi;
        if (shm is null) psi = new ProcessStartInfo(program[0], program[1..]);
        else
        {
            psi = new ProcessStartInfo(Environment.ProcessPath!);
            foreach (var a in SelfProcess.PrefixArgs()) psi.ArgumentList.Add(a);
            foreach (var a in (string[])["run", "--port", shm, "--ip", $"10.99.0.{host}/24", "--mtu", mtu.ToString(), "--busy-poll", busyPollUs.ToString(), "--", .. program]) psi.ArgumentList.Add(a);
        }
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        var p = Process.Start(psi)!;
        if (quiet) { p.OutputDataReceived += (_, _) => { }; p.ErrorDataReceived += (_, _) => { }; p.BeginOutputReadLine(); p.BeginErrorReadLine(); }
        return p;
    }

    private static (string Out, int Code) Finish(Process p, int timeoutMs)
    {
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs)) { p.Kill(true); p.WaitForExit(); }
        return (o.Result + e.Result, p.ExitCode);
    }

    private static void Stop(Process p)
    {
        Signals.Stop(p);
        p.Dispose();
    }

    [GeneratedRegex(@"percentile 50\.000 =\s+([0-9.]+)")]
    private static partial Regex P50();

    /// <summary>sockperf ping-pong, 64 B: the p50 of its latency (half the round trip) in microseconds.</summary>
    private static double Sockperf(bool tcp, double seconds, string? shm, int busyPollUs)
    {
        int port = NextPort();
        string ip = shm is null ? "127.0.0.1" : "10.99.0.1";
        string[] proto = tcp ? ["--tcp"] : [];
        var server = Start(shm, 1, ["sockperf", "sr", .. proto, "-i", ip, "-p", port.ToString()], busyPollUs);
        try
        {
            Thread.Sleep(shm is null ? 500 : 2500);
            var client = Start(shm, 2, ["sockperf", "pp", .. proto, "-i", ip, "-p", port.ToString(), "-t", seconds.ToString(CultureInfo.InvariantCulture), "-m", "64"], busyPollUs, quiet: false);
            var (o, _) = Finish(client, (int)(seconds * 1000) + 60_000);
            var m = P50().Match(o);
            return m.Success ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : double.NaN;
        }
        finally { Stop(server); }
    }

    /// <summary>iperf3, one stream: the receiver's Gbit/s.</summary>
    private static double Iperf(double seconds, string? shm)
    {
        int port = NextPort();
        string ip = shm is null ? "127.0.0.1" : "10.99.0.1";
        // Over shm the stacks use a 64 KiB MTU, as loopback does.
        var server = Start(shm, 1, ["iperf3", "-s", "-1", "-B", ip, "-p", port.ToString()], 0, 65000);
        try
        {
            Thread.Sleep(shm is null ? 500 : 2500);
            var client = Start(shm, 2, ["iperf3", "-c", ip, "-p", port.ToString(), "-t", seconds.ToString(CultureInfo.InvariantCulture), "-J"], 0, 65000, quiet: false);
            var (o, _) = Finish(client, (int)(seconds * 1000) + 60_000);
            int start = o.IndexOf('{');
            if (start < 0) return double.NaN;
            using var doc = JsonDocument.Parse(o[start..(o.LastIndexOf('}') + 1)]);
            return Math.Round(doc.RootElement.GetProperty("end").GetProperty("sum_received").GetProperty("bits_per_second").GetDouble() / 1e9, 3);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException) { return double.NaN; }
        finally { Stop(server); }
    }

    [GeneratedRegex(@"(SET|GET): ([0-9.]+) requests per second")]
    private static partial Regex Rps();

    /// <summary>redis-benchmark -t set,get -n 200000 -c 50 -P 16 against redis-server.</summary>
    private static (double Set, double Get) Redis(string? shm)
    {
        int port = NextPort();
        string ip = shm is null ? "127.0.0.1" : "10.99.0.1";
        var server = Start(shm, 1, ["redis-server", "--bind", ip, "--port", port.ToString(), "--save", "", "--appendonly", "no", "--protected-mode", "no"], 0);
        try
        {
            Thread.Sleep(shm is null ? 500 : 2500);
            var client = Start(shm, 2, ["redis-benchmark", "-h", ip, "-p", port.ToString(), "-t", "set,get", "-n", "200000", "-c", "50", "-P", "16", "-q"], 0, quiet: false);
            var (o, _) = Finish(client, 120_000);
            double set = double.NaN, get = double.NaN;
            foreach (Match m in Rps().Matches(o.Replace('\r', '\n')))
            {
                double v = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
                if (m.Groups[1].Value == "SET") set = v; else get = v;
            }
            return (set, get);
        }
        finally { Stop(server); }
    }
}
