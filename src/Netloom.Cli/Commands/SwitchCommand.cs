using System.CommandLine;
using Netloom.Rings;
using Netloom.Switching;
using Netloom.Wire.Capture;
using Spectre.Console;

namespace Netloom.Cli.Commands;

/// <summary>`netloom switch`: a learning switch over the given ports, with a live counters table.</summary>
internal static class SwitchCommand
{
    public static Command Create()
    {
        var ports = new Option<string[]>("--port") { Description = $"A port to attach (repeat): {PortSpec.Forms}", Required = true, AllowMultipleArgumentsPerToken = false };
        var capture = new Option<string[]>("--capture") { Description = "PORTSPEC=FILE.pcapng: capture that port, both directions (repeatable; one file holds several ports)" };
        var batch = new Option<int>("--batch") { Description = "Frames per port per pass (default 512: half a default ring, so a port fills one half while the switch drains the other)", DefaultValueFactory = _ => 512 };
        var wait = new Option<WaitMode>("--wait") { Description = "BusyPoll (a core spins) or Block (naps when idle)", DefaultValueFactory = _ => WaitMode.Block };
        var duration = new Option<double>("--duration") { Description = "Stop after this many seconds (0: run until Ctrl-C)", DefaultValueFactory = _ => 0 };
        var noFast = new Option<bool>("--no-xdp-fastpath") { Description = "Keep every frame of xdp ports in user space (by default, unicast between stations the switch learned on two xdp ports is passed on by their XDP programs and redirected as a socket buffer by a TC program at their ingress, except while a capture is attached)" };
        var cmd = new Command("switch", "Run a VALE-style learning switch over any ports; prints live per-port counters, and totals on exit") { ports, capture, batch, wait, duration, noFast };
        cmd.SetAction(r => Run(r.GetValue(ports)!, r.GetValue(capture) ?? [], r.GetValue(batch), r.GetValue(wait), r.GetValue(duration), r.GetValue(noFast)));
        return cmd;
    }

    private static int Run(string[] specs, string[] captures, int batch, WaitMode wait, double seconds, bool noFastPath)
    {
        if (specs.Length < 2) return CliErrors.Report("a switch needs at least two --port", CliErrors.BadInput);
        if (batch < 1 || batch > 4096) return CliErrors.Report("--batch must be from 1 to 4096", CliErrors.BadInput);
        var parsed = new List<PortSpec>();
        foreach (var s in specs)
        {
            if (!PortSpec.TryParse(s, out var p, out var err)) return CliErrors.Report(err!, CliErrors.BadInput);
            parsed.Add(p!);
        }
        var captureFiles = new Dictionary<string, List<int>>();
        foreach (var c in captures)
        {
            int eq = c.LastIndexOf('=');
            int idx = eq > 0 ? parsed.FindIndex(p => p.ToString() == c[..eq]) : -1;
            if (idx < 0) return CliErrors.Report($"--capture '{c}': expected PORTSPEC=FILE.pcapng with PORTSPEC one of the --port values", CliErrors.BadInput);
            if (!c[(eq + 1)..].EndsWith(".pcapng", StringComparison.Ordinal)) return CliErrors.Report($"--capture '{c}': the file must end in .pcapng (it records both directions)", CliErrors.BadInput);
            (captureFiles.TryGetValue(c[(eq + 1)..], out var l) ? l : captureFiles[c[(eq + 1)..]] = []).Add(idx);
        }

        // All xdp ports take their UMEM from one pool, so the switch moves frames between them by
        // swapping buffer indexes.
        int xdpPorts = parsed.Count(p => p.Kind == PortKind.Xdp);
        using var xdpPool = xdpPorts > 0 ? new PacketPool(XdpPort.BuffersPerPort(new PortOptions().RingSize) * xdpPorts + 1, XdpPort.BufferBytes) : null;
        var xdpOptions = new PortOptions { SharedPool = xdpPool };
        using var sw = new Switch(new LearningTable(), batch) { LoggerFactory = StderrLoggerFactory.Instance };
        try
        {
            foreach (var p in parsed)
            {
                var port = Ports.Open(p, p.Kind == PortKind.Xdp ? xdpOptions : null);
                sw.AddPort(port);
                if (port is XdpPort x) Console.Error.WriteLine($"netloom switch: {p} runs in XDP {x.Mode} mode");
            }
            foreach (var (file, indexes) in captureFiles) sw.Capture(CaptureWriter.Create(file), [.. indexes]);
            if (xdpPorts > 0)
            {
                string? why = noFastPath ? "--no-xdp-fastpath" : sw.EnableXdpFastPath();
                Console.Error.WriteLine(why is null
                    ? "netloom switch: XDP fast path on: unicast between learned stations on xdp ports is forwarded in the kernel by a TC program (off while a capture is attached)"
                    : $"netloom switch: XDP fast path off: {why}");
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or NotSupportedException or UnauthorizedAccessException or ArgumentException)
        {
            return CliErrors.Report(e.Message);
        }

        using var taps = SwitchTaps.Start(sw); // its ports, live, for `netloom extcap`
        using var cts = new CancellationTokenSource();
        using var signals = Signals.OnStop(cts.Cancel);
        if (seconds > 0) cts.CancelAfter(TimeSpan.FromSeconds(seconds));
        var forwarder = new Thread(() => sw.Run(cts.Token, wait)) { Name = "switch forwarding" };
        forwarder.Start();

        if (!Console.IsOutputRedirected)
        {
            AnsiConsole.Live(Table(sw, 1)).Start(ctx =>
            {
                var last = Snapshot(sw);
                while (!cts.Token.WaitHandle.WaitOne(1000))
                {
                    var now = Snapshot(sw);
                    ctx.UpdateTarget(Table(sw, 1, last, now));
                    last = now;
                }
            });
        }
        forwarder.Join();
        if (sw.HasXdpFastPath)
        {
            sw.ReadFastPathCounters();
            long carried = Enumerable.Range(0, sw.PortCount).Sum(i => sw.Counters(i).FastPathPackets);
            Console.Error.WriteLine($"netloom switch: the XDP fast path carried {carried} frames");
        }
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;
        AnsiConsole.MarkupLine("[bold]totals[/]");
        AnsiConsole.Write(Table(sw, 0));
        foreach (var p in Enumerable.Range(0, sw.PortCount))
            if (sw.Port(p).Failure is { } f) AnsiConsole.MarkupLine($"[red]{Markup.Escape(sw.PortName(p))}: {Markup.Escape(f)}[/]");
        return CliErrors.Ok;
    }

    private static long[][] Snapshot(Switch sw) =>
        [.. Enumerable.Range(0, sw.PortCount).Select(i => { var c = sw.Counters(i); return new[] { c.RxPackets, c.TxPackets }; })];

    /// <summary>Per-port counters; with two snapshots a second apart, also the rates.</summary>
    private static Table Table(Switch sw, int live, long[][]? before = null, long[][]? after = null)
    {
        var t = new Table().Border(TableBorder.Rounded).AddColumn("port")
            .AddColumn(new TableColumn("rx pkts").RightAligned()).AddColumn(new TableColumn("rx bytes").RightAligned())
            .AddColumn(new TableColumn("tx pkts").RightAligned()).AddColumn(new TableColumn("tx bytes").RightAligned())
            .AddColumn(new TableColumn("flooded").RightAligned()).AddColumn(new TableColumn("xdp fast path pkts").RightAligned()).AddColumn(new TableColumn("drops: tx full / short / same / too long / invalid").RightAligned());
        if (live == 1) t.AddColumn(new TableColumn("rx pps").RightAligned()).AddColumn(new TableColumn("tx pps").RightAligned());
        for (int i = 0; i < sw.PortCount; i++)
        {
            var c = sw.Counters(i);
            var row = new List<string>
            {
                Markup.Escape(sw.PortName(i)), $"{c.RxPackets:N0}", $"{c.RxBytes:N0}", $"{c.TxPackets:N0}", $"{c.TxBytes:N0}", $"{c.Flooded:N0}", $"{c.FastPathPackets:N0}",
                $"{c.Drops(DropReason.TxRingFull):N0} / {c.Drops(DropReason.TooShort):N0} / {c.Drops(DropReason.SameSegment):N0} / {c.Drops(DropReason.TooLong):N0} / {c.Drops(DropReason.Invalid):N0}",
            };
            if (live == 1)
            {
                row.Add(before is null ? "" : $"{after![i][0] - before[i][0]:N0}");
                row.Add(before is null ? "" : $"{after![i][1] - before[i][1]:N0}");
            }
            t.AddRow([.. row]);
        }
        return t;
    }
}
