using Netloom.Time;
using System.CommandLine;
using System.Diagnostics;
using Netloom.Emulation;
using Netloom.Emulation.Topology;
using Spectre.Console;

namespace Netloom.Cli.Commands;

/// <summary>`netloom emulate FILE.yaml`: builds a topology, runs it, and reports per app and per link.</summary>
internal static class EmulateCommand
{
    public static Command Create()
    {
        var file = new Argument<string?>("file") { Description = "Topology file (YAML; see docs/EMULATION.md and examples/); optional with --serve (PUT /api/scenario loads one)", Arity = ArgumentArity.ZeroOrOne };
        var seed = new Option<int?>("--seed") { Description = "Seed for every random choice (overrides the file's)" };
        var pcap = new Option<string?>("--pcap") { Description = "Directory for one pcapng capture per link" };
        var report = new Option<string?>("--report") { Description = "Write the figures as JSON to this file" };
        var realtime = new Option<bool>("--realtime") { Description = "Run on the wall clock (needed for linux nodes; root)" };
        var serve = new Option<string?>("--serve") { Description = "Serve the control API, its OpenAPI document and the live view on ADDR:PORT (port 0: any free port)" };
        var speed = new Option<string?>("--speed") { Description = "With --serve: virtual seconds per wall second (default 1), or 'max' to run as fast as possible" };
        var paused = new Option<bool>("--paused") { Description = "With --serve: start paused (POST /api/resume or /api/step)" };
        var cmd = new Command("emulate", "Run an emulated network of hosts, switches, routers and impaired links, in virtual time") { file, seed, pcap, report, realtime, serve, speed, paused };
        cmd.SetAction(r =>
        {
            if (r.GetValue(serve) is { } addr)
                return Emulate.ServeCommand.Run(r.GetValue(file), addr, r.GetValue(seed), r.GetValue(pcap), r.GetValue(report), r.GetValue(realtime), r.GetValue(speed), r.GetValue(paused));
            if (r.GetValue(speed) is not null || r.GetValue(paused)) return CliErrors.Report("--speed and --paused go with --serve", CliErrors.BadInput);
            if (r.GetValue(file) is not { } f) return CliErrors.Report("emulate needs a topology file (or --serve ADDR:PORT)", CliErrors.BadInput);
            return Run(f, r.GetValue(seed), r.GetValue(pcap), r.GetValue(report), r.GetValue(realtime));
        });
        return cmd;
    }

    internal static int Run(string file, int? seed, string? pcap, string? reportPath, bool realtime) =>
        Run(() => Scenario.Load(file, seed, realtime), file, pcap, reportPath, realtime);

    /// <summary>Builds the scenario <paramref name="load"/> makes, runs it and prints the summary (shared with `demo`).</summary>
    internal static int Run(Func<Scenario> load, string file, string? pcap, string? reportPath, bool realtime)
    {
        Scenario sc;
        var build = Stopwatch.StartNew();
        try { sc = load(); }
        catch (TopologyException e)
        {
            foreach (var err in e.Errors) Console.Error.WriteLine(err);
            return CliErrors.Report($"{e.Errors.Count} problem{(e.Errors.Count == 1 ? "" : "s")} in {file}", CliErrors.BadInput);
        }
        catch (InvalidOperationException e) { return CliErrors.Report(e.Message); }
        build.Stop();
        using var net = sc.Network;
        if (pcap is not null)
        {
            try { sc.CaptureTo(pcap); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return CliErrors.Report($"cannot write captures to {pcap}: {e.Message}"); }
        }
        foreach (var l in net.Nodes.OfType<LinuxNode>())
            Console.Error.WriteLine($"linux node {l.Name}: run commands in it with: ip netns exec {l.Namespace} COMMAND");
        var wall = Stopwatch.StartNew();
        var stop = new CancellationTokenSource();
        // Ctrl-C or SIGTERM ends the run early with its report, and process nodes' programs are stopped.
        using var signals = Signals.OnStop(stop.Cancel);
        var title = $"{sc.Spec.Name ?? Path.GetFileNameWithoutExtension(file)}: {sc.Network.Nodes.Count} nodes, {sc.Network.Links.Count} links, {sc.Duration} {(realtime ? "real" : "virtual")} time, seed {sc.Spec.Seed}";
        if (!Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive)
        {
            AnsiConsole.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(p =>
                {
                    var t = p.AddTask(Markup.Escape(title), maxValue: 1.0);
                    sc.Run(f => t.Value = f, stop.Token);
                });
        }
        else
        {
            if (Console.IsOutputRedirected)
            {
                AnsiConsole.Profile.Width = 200; // a log file has no terminal width: do not wrap the tables
                AnsiConsole.Profile.Capabilities.Ansi = false;
            }
            Console.WriteLine(title);
            sc.Run(stop: stop.Token);
        }
        wall.Stop();
        if (stop.IsCancellationRequested) Console.Error.WriteLine($"stopped by Ctrl-C after {net.Elapsed} of {sc.Duration}: the figures cover that much");
        var rep = EmulationReport.From(net, sc.Spec.Name);
        Summary(rep, build.Elapsed, wall.Elapsed, pcap);
        if (reportPath is not null)
        {
            try
            {
                using var f = File.Create(reportPath);
                rep.WriteJson(f);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return CliErrors.Report($"cannot write {reportPath}: {e.Message}"); }
        }
        return CliErrors.Ok;
    }

    internal static void Summary(EmulationReport rep, TimeSpan build, TimeSpan wall, string? pcap)
    {
        var apps = new Table().Border(TableBorder.Rounded).Title("apps");
        foreach (var c in new[] { "app", "kind", "host", "target", "bytes", "throughput", "sent/recv", "loss", "retx", "rtt/one-way p50", "p90", "p99", "status" }) apps.AddColumn(c);
        foreach (var a in rep.Apps)
        {
            string Lat(double? v) => v is { } x ? x >= 1000 ? $"{x / 1000:0.##} ms" : $"{x:0.#} us" : "";
            apps.AddRow(
                Markup.Escape(a.Name), a.Kind, Markup.Escape(a.Host), Markup.Escape(a.Target ?? ""),
                a.Bytes is { } b ? Bytes(b) : "",
                a.ThroughputBitsPerSecond is { } t ? Quantity.FormatRate(t) : "",
                a.Sent is not null || a.Received is not null ? $"{a.Sent?.ToString() ?? "-"}/{a.Received?.ToString() ?? "-"}" : "",
                a.Loss is { } l ? $"{l * 100:0.##}%" : "",
                a.Retransmissions?.ToString() ?? "",
                Lat(a.Latency?.P50Us), Lat(a.Latency?.P90Us), Lat(a.Latency?.P99Us),
                a.Error is { } e ? $"[red]{Markup.Escape(e)}[/]" : a.Completed ? "[green]done[/]" : "running");
        }
        AnsiConsole.Write(apps);
        var links = new Table().Border(TableBorder.Rounded).Title("links");
        foreach (var c in new[] { "link", "direction", "sent", "delivered", "bytes", "dropped", "dup", "corrupt", "reorder" }) links.AddColumn(c);
        foreach (var l in rep.Links)
            links.AddRow(Markup.Escape(l.Link), Markup.Escape($"{l.From} -> {l.To}"), l.Sent.ToString(), l.Delivered.ToString(), Bytes(l.DeliveredBytes),
                l.TotalDrops == 0 ? "0" : $"{l.TotalDrops} ({string.Join(", ", l.Drops.Select(d => $"{d.Key} {d.Value}"))})",
                l.Duplicated.ToString(), l.Corrupted.ToString(), l.Reordered.ToString());
        AnsiConsole.Write(links);
        double rate = rep.PacketHops / Math.Max(1e-9, wall.TotalSeconds);
        AnsiConsole.MarkupLine($"{rep.VirtualSeconds:0.###} s of network time in {wall.TotalSeconds:0.###} s ({rep.VirtualSeconds / Math.Max(1e-9, wall.TotalSeconds):0.#}x); built in {build.TotalMilliseconds:0} ms; {rep.PacketHops:N0} packet-hops ({rate / 1e6:0.##} M/s), {rep.Events:N0} events");
        if (pcap is not null) AnsiConsole.MarkupLine($"captures: {Markup.Escape(pcap)}/LINK.pcapng");
    }

    private static string Bytes(long b) => b switch
    {
        >= 1 << 30 => $"{b / (double)(1 << 30):0.##} GiB",
        >= 1 << 20 => $"{b / (double)(1 << 20):0.##} MiB",
        >= 1 << 10 => $"{b / 1024.0:0.#} KiB",
        _ => $"{b} B",
    };
}
