using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Netloom.Cli.Commands;

/// <summary>
/// `netloom bench offload`: unmodified redis-server and nginx (one process), plain, under
/// `netloom run --offload`, and under it with busy polling, with coalescing, and in the owner mode, driven by redis-benchmark and wrk over
/// loopback in interleaved rounds. For each: throughput, server CPU time per request (utime and
/// stime of the server's whole thread group, io_uring's in-task work and io-wq workers included),
/// system calls per request (perf's raw_syscalls counter on the server), and p99 latency.
/// </summary>
internal static partial class BenchOffload
{
    private const int Rounds = 3;
    // offload_single_issuer: the owner mode (--single-issuer) with --coalesce 50, as the issue's CPU goal needs it.
    private static readonly string[] Modes = ["plain", "offload", "offload_busy", "offload_coalesce", "offload_single_issuer"];
    private static int s_port = 16000 + Environment.ProcessId % 2000;

    public static List<(string Key, object Value)> Run(double seconds)
    {
        var figures = new List<(string, object)>();
        if (!RunCommand.TryFindRunParts(out var preload, out var engine, out var missing)) { figures.Add(("error", missing!)); return figures; }
        bool perf = ExternalTool.Which("perf") is not null;
        if (!perf) figures.Add(("syscalls", "not measured: perf not found (apt-get install linux-perf)"));
        if (ExternalTool.Which("redis-server") is not null && ExternalTool.Which("redis-benchmark") is not null)
        {
            foreach (var (name, args) in new (string, string[])[]
            {
                ("redis_c50", ["-c", "50"]),
                ("redis_c100_p16", ["-c", "100", "-P", "16"]),
                ("redis_c100_p16_threads2", ["-c", "100", "-P", "16", "--threads", "2"]),
            })
            {
                var rounds = Modes.ToDictionary(m => m, _ => new List<Sample>());
                for (int r = 0; r < Rounds; r++)
                    foreach (var mode in Modes) rounds[mode].Add(Redis(mode, args, seconds, preload, engine, perf));
                Report(figures, name, rounds);
            }
        }
        else figures.Add(("redis", "not run: redis-server or redis-benchmark not found"));
        if (ExternalTool.Which("nginx") is not null && ExternalTool.Which("wrk") is not null)
        {
            // The default configuration, and with open_file_cache (a common production setting:
            // nginx keeps the file open and its fstat, so a request makes no file calls).
            foreach (var (name, size, conns, cache) in new[]
            {
                ("nginx_1k_c50", 1024, 50, false), ("nginx_1k_c256", 1024, 256, false), ("nginx_64k_c50", 65536, 50, false), ("nginx_64k_c256", 65536, 256, false),
                ("nginx_1k_c50_ofc", 1024, 50, true), ("nginx_64k_c50_ofc", 65536, 50, true),
            })
            {
                var rounds = Modes.ToDictionary(m => m, _ => new List<Sample>());
                for (int r = 0; r < Rounds; r++)
                    foreach (var mode in Modes) rounds[mode].Add(Nginx(mode, size, conns, cache, seconds, preload, engine, perf));
                Report(figures, name, rounds);
            }
        }
        else figures.Add(("nginx", "not run: nginx or wrk not found"));
        return figures;
    }

    /// <summary>One round: <paramref name="OthersCpuUsPerRequest"/> is what the rest of the machine spent per request (the load generator, mostly); <paramref name="BusyShare"/> how much of all cores was busy meanwhile.</summary>
    private readonly record struct Sample(double Rps, double CpuUsPerRequest, double SyscallsPerRequest, double P99Ms, double OthersCpuUsPerRequest = double.NaN, double BusyShare = double.NaN)
    {
        public static readonly Sample Failed = new(double.NaN, double.NaN, double.NaN, double.NaN);
    }

    private static void Report(List<(string, object)> figures, string name, Dictionary<string, List<Sample>> rounds)
    {
        double Med(string mode, Func<Sample, double> f) => Median(rounds[mode].Select(f).ToList());
        foreach (var mode in Modes)
        {
            figures.Add(($"{name}_{mode}_rps", Math.Round(Med(mode, s => s.Rps))));
            figures.Add(($"{name}_{mode}_cpu_us_per_req", Math.Round(Med(mode, s => s.CpuUsPerRequest), 3)));
            figures.Add(($"{name}_{mode}_syscalls_per_req", Math.Round(Med(mode, s => s.SyscallsPerRequest), 3)));
            figures.Add(($"{name}_{mode}_p99_ms", Math.Round(Med(mode, s => s.P99Ms), 3)));
            figures.Add(($"{name}_{mode}_others_cpu_us_per_req", Math.Round(Med(mode, s => s.OthersCpuUsPerRequest), 3)));
            figures.Add(($"{name}_{mode}_machine_busy", Math.Round(Med(mode, s => s.BusyShare), 2)));
        }
        foreach (var mode in Modes.Skip(1))
        {
            figures.Add(($"{name}_{mode}_over_plain_rps", Math.Round(Med(mode, s => s.Rps) / Med("plain", s => s.Rps), 3)));
            figures.Add(($"{name}_{mode}_over_plain_cpu", Math.Round(Med(mode, s => s.CpuUsPerRequest) / Med("plain", s => s.CpuUsPerRequest), 3)));
            figures.Add(($"{name}_{mode}_over_plain_syscalls", Math.Round(Med(mode, s => s.SyscallsPerRequest) / Med("plain", s => s.SyscallsPerRequest), 3)));
        }
        figures.Add(($"{name}_rounds_rps", string.Join("; ", Modes.Select(m => $"{m} {string.Join(' ', rounds[m].Select(s => Math.Round(s.Rps)))}"))));
    }

    /// <summary>The server, started directly with the interposer preloaded (so its pid is the program's).</summary>
    private static Process StartServer(string mode, string[] argv, string preload, string engine)
    {
        var psi = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in argv[1..]) psi.ArgumentList.Add(a);
        if (mode != "plain")
        {
            psi.Environment["LD_PRELOAD"] = preload;
            psi.Environment["NETLOOM_ENGINE"] = engine;
            psi.Environment["NETLOOM_MODE"] = "offload";
            psi.Environment["NETLOOM_BUSY_POLL"] = mode == "offload_busy" ? "50" : "0";
            psi.Environment["NETLOOM_COALESCE"] = mode is "offload_coalesce" or "offload_single_issuer" ? "50" : "0";
            psi.Environment["NETLOOM_SINGLE_ISSUER"] = mode == "offload_single_issuer" ? "1" : "0";
        }
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static void WaitForPort(int port)
    {
        for (int i = 0; i < 200; i++)
        {
            try { using var c = new System.Net.Sockets.TcpClient("127.0.0.1", port); return; }
            catch (System.Net.Sockets.SocketException) { Thread.Sleep(50); }
        }
    }

    /// <summary>Runs <paramref name="load"/> against the server, measuring its CPU and system calls meanwhile.</summary>
    private readonly record struct Measured(double CpuUs, double Syscalls, double OthersCpuUs, double BusyShare, string Output)
    {
        public Sample PerRequest(double rps, double requests, double p99Ms) => new(rps, CpuUs / requests, Syscalls / requests, p99Ms, OthersCpuUs / requests, BusyShare);
    }

    private static Measured Measure(int pid, bool perf, Func<string> load)
    {
        Process? counter = null;
        if (perf)
        {
            var psi = new ProcessStartInfo("perf", ["stat", "-e", "raw_syscalls:sys_enter", "-x", ",", "-p", pid.ToString()]) { RedirectStandardError = true, RedirectStandardOutput = true };
            counter = Process.Start(psi);
            Thread.Sleep(300);
        }
        var meter = new BenchKv.LoadMeter(pid);
        string output = load();
        var (server, others, busy) = meter.Stop();
        double syscalls = double.NaN;
        if (counter is not null)
        {
            Process.Start("kill", ["-INT", counter.Id.ToString()])!.WaitForExit();
            string err = counter.StandardError.ReadToEnd();
            counter.WaitForExit();
            var m = Regex.Match(err, @"^(\d+),", RegexOptions.Multiline);
            if (m.Success) syscalls = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        }
        return new Measured(server * 1e6, syscalls, others * 1e6, busy, output);
    }

    private static Sample Redis(string mode, string[] args, double seconds, string preload, string engine, bool perf)
    {
        int port = Interlocked.Increment(ref s_port);
        using var server = StartServer(mode, ["redis-server", "--bind", "127.0.0.1", "--port", port.ToString(), "--save", "", "--appendonly", "no"], preload, engine);
        try
        {
            WaitForPort(port);
            // About `seconds` of load or more: pipelined runs move 15-20 times the requests. (A run of
            // half a second is mostly start-up: with --threads 2 and 300,000 requests, redis-benchmark
            // reported 596,421 requests/s, 300,000 in 503 ms, whatever the server.)
            bool pipelined = args.Contains("-P");
            int n = (int)Math.Max(50_000, seconds * (pipelined ? 1_500_000 : 150_000));
            var measured = Measure(server.Id, perf, () =>
            {
                var psi = new ProcessStartInfo("redis-benchmark", ["-p", port.ToString(), "-t", "get", "-n", n.ToString(), "--csv", .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
                using var p = Process.Start(psi)!;
                string o = p.StandardOutput.ReadToEnd();
                p.WaitForExit();
                return o;
            });
            // "GET","rps","avg","min","p50","p95","p99","max"
            var m = Regex.Match(measured.Output, "\"GET\",\"([0-9.]+)\",\"[0-9.]+\",\"[0-9.]+\",\"[0-9.]+\",\"[0-9.]+\",\"([0-9.]+)\"");
            if (!m.Success) return Sample.Failed;
            double rps = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            return measured.PerRequest(rps, n, double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
        }
        finally { Stop(server); }
    }

    private static Sample Nginx(string mode, int size, int conns, bool openFileCache, double seconds, string preload, string engine, bool perf)
    {
        int port = Interlocked.Increment(ref s_port);
        string dir = Directory.CreateTempSubdirectory("netloom-bench-nginx-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(dir, "f"), new byte[size]);
            string conf = Path.Combine(dir, "nginx.conf");
            File.WriteAllText(conf, $$"""
                master_process off;
                daemon off;
                worker_processes 1;
                pid {{dir}}/nginx.pid;
                error_log {{dir}}/error.log;
                worker_rlimit_nofile 8192;
                events { worker_connections 4096; }
                http {
                  access_log off;
                  sendfile on;
                  keepalive_requests 1000000;
                  {{(openFileCache ? "open_file_cache max=1000 inactive=60s;" : "")}}
                  client_body_temp_path {{dir}}/body;
                  proxy_temp_path {{dir}}/proxy;
                  fastcgi_temp_path {{dir}}/fastcgi;
                  uwsgi_temp_path {{dir}}/uwsgi;
                  scgi_temp_path {{dir}}/scgi;
                  server { listen 127.0.0.1:{{port}}; root {{dir}}; }
                }
                """);
            using var server = StartServer(mode, ["nginx", "-c", conf], preload, engine);
            try
            {
                WaitForPort(port);
                var measured = Measure(server.Id, perf, () =>
                {
                    var psi = new ProcessStartInfo("wrk", ["-t", "1", "-c", conns.ToString(), "-d", $"{Math.Max(1, (int)seconds)}s", "--latency", $"http://127.0.0.1:{port}/f"])
                        { RedirectStandardOutput = true, RedirectStandardError = true };
                    using var p = Process.Start(psi)!;
                    string o = p.StandardOutput.ReadToEnd();
                    p.WaitForExit();
                    return o;
                });
                string output = measured.Output;
                var requests = Regex.Match(output, @"(\d+) requests in");
                var rps = Regex.Match(output, @"Requests/sec:\s+([0-9.]+)");
                var p99 = Regex.Match(output, @"99%\s+([0-9.]+)(us|ms|s)");
                if (!requests.Success || !rps.Success) return Sample.Failed;
                double n = double.Parse(requests.Groups[1].Value, CultureInfo.InvariantCulture);
                double p99Ms = !p99.Success ? double.NaN : double.Parse(p99.Groups[1].Value, CultureInfo.InvariantCulture) * (p99.Groups[2].Value switch { "us" => 0.001, "ms" => 1, _ => 1000 });
                return measured.PerRequest(double.Parse(rps.Groups[1].Value, CultureInfo.InvariantCulture), n, p99Ms);
            }
            finally { Stop(server); }
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    private static void Stop(Process p)
    {
        Signals.Stop(p);
    }

    private static double Median(List<double> xs)
    {
        var v = xs.Where(x => !double.IsNaN(x)).OrderBy(x => x).ToList();
        return v.Count == 0 ? double.NaN : v.Count % 2 == 1 ? v[v.Count / 2] : (v[v.Count / 2 - 1] + v[v.Count / 2]) / 2;
    }
}
