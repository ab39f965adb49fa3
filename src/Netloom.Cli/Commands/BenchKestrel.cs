using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Netloom.AspNetCore;

namespace Netloom.Cli.Commands;

/// <summary>
/// `netloom bench kestrel`: TechEmpower plaintext ("Hello, World!" with Server and Date headers)
/// on Kestrel's sockets transport and on Netloom's io_uring transport (application continuations
/// on the thread pool, and inline on the ring's thread), loaded by wrk with TechEmpower's 16-deep
/// pipelining and without, and by h2load; rounds interleave the servers, medians count.
/// </summary>
internal static partial class BenchKestrel
{
    private const int Rounds = 3, Connections = 256, Depth = 16;

    private static readonly (string Name, string Transport)[] Servers =
        [("sockets", "sockets"), ("uring", "iouring"), ("uring_inline", "iouring-inline")];

    public static List<(string Key, object Value)> Run(double seconds)
    {
        var figures = new List<(string, object)>();
        if (ExternalTool.Which("wrk") is null) { figures.Add(("error", "wrk not found (apt-get install wrk)")); return figures; }
        bool h2 = ExternalTool.Which("h2load") is not null;
        if (!h2) figures.Add(("h2load", "not run: h2load not found (apt-get install nghttp2-client)"));
        string script = Path.Combine(Path.GetTempPath(), $"netloom-pipeline-{Environment.ProcessId}.lua");
        // wrk sends the same request DEPTH times per write: TechEmpower's pipelined plaintext load.
        File.WriteAllText(script, "init = function(args)\n  local depth = tonumber(args[1]) or 1\n  local r = {}\n  for i = 1, depth do r[i] = wrk.format() end\n  req = table.concat(r)\nend\nrequest = function()\n  return req\nend\n");
        var running = new List<Server>();
        try
        {
            foreach (var (name, transport) in Servers)
            {
                int port = BenchKv.FreePort(), h2Port = BenchKv.FreePort();
                var server = SelfProcess.Start(["bench", "kestrel-app", "--transport", transport, "--listen", $"127.0.0.1:{port}", "--h2-port", h2Port.ToString()]);
                if (!BenchKv.WaitForPort(port)) { figures.Add(($"{name}_error", "server did not start: " + server.StandardError.ReadToEnd())); server.Kill(true); continue; }
                running.Add(new Server(name, server, $"127.0.0.1:{port}", h2Port, null));
            }
            // Kestrel on the user-level stack over a shm port, wrk under `netloom run` on the other end.
            string shm = $"shm:nlkb{Environment.ProcessId}";
            var stackApp = SelfProcess.Start(["bench", "kestrel-app", "--transport", "stack", "--port-spec", shm, "--ip", "10.98.0.2/24", "--listen", "10.98.0.2:80"]);
            if (WaitForLine(stackApp, "ready", 30)) running.Add(new Server("stack_shm", stackApp, "10.98.0.2:80", 0, ["run", "--port", shm, "--ip", "10.98.0.1/24", "--"]));
            else { figures.Add(("stack_shm_error", "the app on the stack did not start")); stackApp.Kill(true); }

            var loads = new List<(string Key, Func<Server, Load?> Measure)>
            {
                ("pipelined", s => Wrk(s, seconds, script, Depth)),
                ("plain", s => Wrk(s, seconds, null, 1)),
            };
            if (h2) loads.Add(("h2", s => s.H2Port > 0 ? H2load(s.H2Port, seconds) : null));
            // A warm-up run of each load on each server (JIT tiers, pools, connection set-up), not counted.
            foreach (var (load, measure) in loads)
                foreach (var server in running) measure(server);
            var results = new Dictionary<(string, string), List<(Load Load, double CpuUs, double OthersUs, double Busy)>>();
            for (int round = 0; round < Rounds; round++)
                foreach (var (load, measure) in loads)
                    foreach (var server in running)
                    {
                        var meter = new BenchKv.LoadMeter(server.Process.Id);
                        if (measure(server) is not { } l) continue;
                        var (cpu, others, busy) = meter.Stop();
                        if (!results.TryGetValue((server.Name, load), out var list)) results[(server.Name, load)] = list = [];
                        double perRequest = l.Requests > 0 ? 1e6 / l.Requests : double.NaN;
                        list.Add((l, cpu * perRequest, others * perRequest, busy));
                    }
            foreach (var (load, _) in loads)
                foreach (var server in running)
                {
                    if (!results.TryGetValue((server.Name, load), out var list)) continue;
                    string name = server.Name;
                    figures.Add(($"{name}_{load}_rps", Math.Round(BenchKv.Median(list.Select(x => x.Load.Rps)))));
                    figures.Add(($"{name}_{load}_p99_ms", Math.Round(BenchKv.Median(list.Select(x => x.Load.P99Ms).Where(double.IsFinite)), 2)));
                    figures.Add(($"{name}_{load}_cpu_us_per_request", Math.Round(BenchKv.Median(list.Select(x => x.CpuUs)), 2)));
                    figures.Add(($"{name}_{load}_others_cpu_us_per_request", Math.Round(BenchKv.Median(list.Select(x => x.OthersUs)), 2)));
                    figures.Add(($"{name}_{load}_machine_busy", Math.Round(BenchKv.Median(list.Select(x => x.Busy)), 2)));
                    figures.Add(($"{name}_{load}_runs", string.Join(" ", list.Select(x => $"{x.Load.Rps / 1000:0.0}k"))));
                    if (list.Sum(x => x.Load.Errors) is var errors and > 0) figures.Add(($"{name}_{load}_errors", (double)errors));
                }
        }
        finally
        {
            foreach (var server in running)
            {
                Signals.Stop(server.Process);
                server.Process.Dispose();
            }
            File.Delete(script);
        }
        double V(string k) => figures.FirstOrDefault(f => f.Item1 == k).Item2 is double d ? d : double.NaN;
        foreach (var load in new[] { "pipelined", "plain", "h2" })
            foreach (var engine in new[] { "uring", "uring_inline", "stack_shm" })
            {
                figures.Add(($"{engine}_vs_sockets_{load}", Math.Round(V($"{engine}_{load}_rps") / V($"sockets_{load}_rps"), 2)));
                figures.Add(($"{engine}_vs_sockets_{load}_cpu_per_request", Math.Round(V($"{engine}_{load}_cpu_us_per_request") / V($"sockets_{load}_cpu_us_per_request"), 2)));
            }
        return figures.Where(f => f.Item2 is not double d || !double.IsNaN(d)).ToList();
    }

    private readonly record struct Load(double Rps, double P99Ms, long Requests, long Errors);

    /// <summary>A running app: where wrk reaches it, and what wrk runs under (null: plain; else this binary's arguments before wrk's, such as `run --port shm:X ... --`).</summary>
    private sealed record Server(string Name, Process Process, string HostPort, int H2Port, string[]? Under);

    private static bool WaitForLine(Process p, string text, int seconds)
    {
        var read = Task.Run(() =>
        {
            string? line;
            while ((line = p.StandardOutput.ReadLine()) is not null) if (line.Contains(text)) return true;
            return false;
        });
        return read.Wait(TimeSpan.FromSeconds(seconds)) && read.Result;
    }

    [GeneratedRegex(@"Requests/sec:\s+([0-9.]+)")]
    private static partial Regex WrkRps();
    [GeneratedRegex(@"(\d+) requests in")]
    private static partial Regex WrkRequests();
    [GeneratedRegex(@"^\s+99%\s+([0-9.]+)(us|ms|s)\s*$", RegexOptions.Multiline)]
    private static partial Regex WrkP99();
    [GeneratedRegex(@"(?:Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+))|(?:Non-2xx or 3xx responses: (\d+))")]
    private static partial Regex WrkErrors();

    private static Load Wrk(Server server, double seconds, string? script, int depth)
    {
        var args = new List<string> { "-t", "2", "-c", Connections.ToString(), "-d", $"{seconds.ToString(CultureInfo.InvariantCulture)}s", "--latency", "-H", "Connection: keep-alive" };
        if (script is not null) args.AddRange(["-s", script]);
        args.Add($"http://{server.HostPort}/plaintext");
        if (script is not null) args.AddRange(["--", depth.ToString()]);
        string output = server.Under is null ? RunTool("wrk", args)
            : RunTool(Environment.ProcessPath!, [.. SelfProcess.PrefixArgs(), .. server.Under, "wrk", .. args]);
        double rps = WrkRps().Match(output) is { Success: true } m ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        long requests = WrkRequests().Match(output) is { Success: true } r ? long.Parse(r.Groups[1].Value) : 0;
        double p99 = double.NaN;
        if (WrkP99().Match(output) is { Success: true } p)
        {
            double v = double.Parse(p.Groups[1].Value, CultureInfo.InvariantCulture);
            p99 = p.Groups[2].Value switch { "us" => v / 1000, "s" => v * 1000, _ => v };
            // wrk's latency distribution breaks under a pipelining script (it prints 0.00us from the
            // 90th percentile up): a zero is no measurement, and the figure is left out.
            if (p99 <= 0) p99 = double.NaN;
        }
        long errors = 0;
        foreach (Match e in WrkErrors().Matches(output))
            for (int g = 1; g <= 5; g++) if (e.Groups[g].Success) errors += long.Parse(e.Groups[g].Value);
        return new Load(rps, p99, requests, errors);
    }

    [GeneratedRegex(@"finished in [0-9.]+m?s, ([0-9.]+) req/s")]
    private static partial Regex H2Rps();
    [GeneratedRegex(@"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored")]
    private static partial Regex H2Requests();

    /// <summary>h2load over cleartext HTTP/2 (prior knowledge): 16 connections, 16 streams each; reports no p99 of its own per request, so the mean's line is not used.</summary>
    private static Load H2load(int port, double seconds)
    {
        string output = RunTool("h2load", ["-c", "16", "-m", "16", "-t", "2", "-D", ((int)Math.Ceiling(seconds)).ToString(), $"http://127.0.0.1:{port}/plaintext"]);
        double rps = H2Rps().Match(output) is { Success: true } m ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        long ok = 0, errors = 0;
        if (H2Requests().Match(output) is { Success: true } r)
        {
            ok = long.Parse(r.Groups[2].Value);
            errors = long.Parse(r.Groups[3].Value) + long.Parse(r.Groups[4].Value);
        }
        return new Load(rps, double.NaN, ok, errors);
    }

    private static string RunTool(string tool, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return output + err.Result;
    }

    /// <summary>The hidden `bench kestrel-app` verb: the plaintext app on one transport, until killed.</summary>
    public static int App(string transport, string listen, int h2Port, string? portSpec, string? ip)
    {
        if (!IPEndPoint.TryParse(listen, out var endpoint)) return CliErrors.Report($"--listen '{listen}' is not ADDRESS:PORT", CliErrors.BadInput);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        switch (transport)
        {
            case "sockets": break;
            case "iouring": builder.WebHost.UseNetloomIoUring(o => o.ApplicationInline = false); break;
            case "iouring-inline": builder.WebHost.UseNetloomIoUring(o => o.ApplicationInline = true); break;
            case "stack":
                if (portSpec is null || ip is null) return CliErrors.Report("--transport stack needs --port-spec and --ip", CliErrors.BadInput);
                builder.WebHost.UseNetloomStack(portSpec, ip);
                break;
            default: return CliErrors.Report($"--transport '{transport}': expected sockets, iouring, iouring-inline or stack", CliErrors.BadInput);
        }
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(endpoint);
            if (h2Port > 0) k.Listen(endpoint.Address, h2Port, l => l.Protocols = HttpProtocols.Http2);
        });
        // Disposed at the end: the host's services with it, so a stack transport closes its port
        // (a shm port's file is removed) when the bench stops the app.
        using var app = builder.Build();
        app.MapGet("/plaintext", () => Results.Text("Hello, World!", "text/plain"));
        app.Start();
        Console.WriteLine("ready");
        app.WaitForShutdown();
        return CliErrors.Ok;
    }
}
