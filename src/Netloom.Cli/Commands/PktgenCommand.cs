using System.CommandLine;
using System.Text.Json;
using Netloom.Cli.Pktgen;
using Netloom.Rings;
using Netloom.Time;

namespace Netloom.Cli.Commands;

/// <summary>`netloom pktgen`: netmap pkt-gen's job on any port spec.</summary>
internal static class PktgenCommand
{
    public static Command Create()
    {
        var port = new Option<string>("--port") { Description = $"The port: {PortSpec.Forms}", Required = true };
        var mode = new Option<PktgenMode>("--mode") { Description = "tx, rx, ping or pong", DefaultValueFactory = _ => PktgenMode.Tx };
        var size = new Option<int>("--size") { Description = "Frame size in bytes (60 to the buffer size)", DefaultValueFactory = _ => 64 };
        var batch = new Option<int>("--batch") { Description = "Slots per sync", DefaultValueFactory = _ => 256 };
        var duration = new Option<double>("--duration") { Description = "Seconds to run", DefaultValueFactory = _ => 5 };
        var rate = new Option<long>("--rate") { Description = "Packets per second to send (0: as fast as possible)", DefaultValueFactory = _ => 0 };
        var wait = new Option<WaitMode>("--wait") { Description = "BusyPoll (spin) or Block (sleep until woken)", DefaultValueFactory = _ => WaitMode.BusyPoll };
        var ring = new Option<int>("--ring-size") { Description = "Slots per ring", DefaultValueFactory = _ => 1024 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cpu = new Option<int>("--cpu") { Description = "Pin the polling thread to this CPU (-1: no pinning); a pipe peer goes on the next CPU", DefaultValueFactory = _ => -1 };
        var cmd = new Command("pktgen", "Generate, receive or ping-pong packets on a port and report Mpps, Gbit/s, batch and RTT. " +
            "For a pipe end, the other end runs in the same process with the matching mode (tx with rx, ping with pong).")
        { port, mode, size, batch, duration, rate, wait, ring, cpu, json };
        cmd.SetAction(r => Run(r.GetValue(port)!, r.GetValue(mode), r.GetValue(size), r.GetValue(batch), r.GetValue(duration),
            r.GetValue(rate), r.GetValue(wait), r.GetValue(ring), r.GetValue(cpu), r.GetValue(json)));
        return cmd;
    }

    private static int Run(string spec, PktgenMode mode, int size, int batch, double seconds, long rate, WaitMode wait, int ringSize, int cpu, bool json)
    {
        if (cpu >= Environment.ProcessorCount) return CliErrors.Report($"--cpu must be below {Environment.ProcessorCount} (or -1)", CliErrors.BadInput);
        if (!PortSpec.TryParse(spec, out var parsed, out var error)) return CliErrors.Report(error!, CliErrors.BadInput);
        if (batch < 1) return CliErrors.Report("--batch must be at least 1", CliErrors.BadInput);
        if (seconds <= 0 || seconds > 86_400) return CliErrors.Report("--duration must be between 0 and 86400 seconds", CliErrors.BadInput);
        if (rate < 0) return CliErrors.Report("--rate must not be negative", CliErrors.BadInput);
        var options = new PortOptions { RingSize = ringSize };
        try { options.Validate(); }
        catch (ArgumentOutOfRangeException e) { return CliErrors.Report(e.Message.Split(" (Parameter")[0], CliErrors.BadInput); }
        if (size < 60 || size > options.BufferSize) return CliErrors.Report($"--size must be from 60 to {options.BufferSize}", CliErrors.BadInput);

        using var cts = new CancellationTokenSource();
        using var signals = Signals.OnStop(cts.Cancel);
        var duration = Duration.FromNanoseconds((long)(seconds * 1e9));
        IPort port, peer;
        PktgenMode peerMode = mode switch { PktgenMode.Tx => PktgenMode.Rx, PktgenMode.Rx => PktgenMode.Tx, PktgenMode.Ping => PktgenMode.Pong, _ => PktgenMode.Ping };
        try
        {
            port = Ports.Open(parsed!, options);
            peer = parsed!.Kind == PortKind.Pipe ? Ports.Open(parsed with { PipeMaster = !parsed.PipeMaster }, options) : null!;
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            return CliErrors.Report(e.Message);
        }
        using var portScope = port;
        using var peerScope = peer;
        port.WaitMode = wait;
        var frame = Generator.Frame(size);
        Generator.Prefill(port, frame);
        if (peer is not null)
        {
            peer.WaitMode = wait;
            Generator.Prefill(peer, frame);
        }

        PktgenResult? peerResult = null;
        Thread? peerThread = null;
        if (peer is not null)
        {
            // The receiving side of a pair outlives the sender a little so that it drains the ring.
            var peerDuration = peerMode is PktgenMode.Rx or PktgenMode.Pong ? duration + Duration.FromMilliseconds(300) : duration;
            peerThread = new Thread(() =>
            {
                if (cpu >= 0) CpuAffinity.PinCurrentThread((cpu + 1) % Environment.ProcessorCount);
                peerResult = Generator.Run(peer, peerMode, size, batch, peerDuration, rate, cts.Token);
            }) { Name = "pktgen peer" };
            peerThread.Start();
        }
        if (cpu >= 0) CpuAffinity.PinCurrentThread(cpu);
        var result = Generator.Run(port, mode, size, batch, mode is PktgenMode.Rx or PktgenMode.Pong && peer is not null ? duration + Duration.FromMilliseconds(300) : duration, rate, cts.Token);
        if (mode is PktgenMode.Tx or PktgenMode.Ping) cts.CancelAfter(500);
        peerThread?.Join();

        string? xdpMode = (port as XdpPort)?.Mode;
        var xdpStats = port is XdpPort xp ? XdpStatistics(xp) : null;
        if (json) PrintJson(spec, result, peerResult, xdpMode, xdpStats);
        else
        {
            Print(spec, result);
            if (xdpMode is not null) Console.WriteLine($"  xdp mode: {xdpMode}; kernel: {string.Join(", ", xdpStats!.Select(p => $"{p.Key} {p.Value}"))}");
            if (peerResult is not null) Print($"{parsed with { PipeMaster = !parsed.PipeMaster }} (peer)", peerResult);
        }
        if (result.Failure is not null) return CliErrors.Report($"lost peer on {spec}: {result.Failure}", 3);
        return CliErrors.Ok;
    }

    private static void Print(string spec, PktgenResult r)
    {
        Console.WriteLine($"{spec} {r.Mode.ToString().ToLowerInvariant()}: {r.Packets:N0} packets in {r.Seconds:F2} s = {r.Mpps:F2} Mpps, {r.Gbps:F2} Gbit/s, average batch {r.AverageBatch:F1}");
        if (r.RttNs.Length > 0)
            Console.WriteLine($"  rtt ns: min {r.RttNs[0]}, p50 {r.Percentile(50)}, p99 {r.Percentile(99)}, max {r.RttNs[^1]} over {r.RttNs.Length} round trips");
    }

    /// <summary>The socket's kernel counters (XDP_STATISTICS): frames the kernel dropped before our rings saw them.</summary>
    private static List<(string Key, long Value)> XdpStatistics(XdpPort port)
    {
        port.ReadKernelStatistics();
        var s = port.KernelStatistics;
        return [("rx_dropped", (long)s.RxDropped), ("rx_ring_full", (long)s.RxRingFull), ("rx_fill_ring_empty", (long)s.RxFillRingEmptyDescs),
            ("rx_invalid_descs", (long)s.RxInvalidDescs), ("tx_invalid_descs", (long)s.TxInvalidDescs), ("tx_ring_empty", (long)s.TxRingEmptyDescs)];
    }

    private static void PrintJson(string spec, PktgenResult r, PktgenResult? peer, string? xdpMode, List<(string Key, long Value)>? xdpStats)
    {
        using var stdout = Console.OpenStandardOutput();
        using var w = new Utf8JsonWriter(stdout);
        w.WriteStartObject();
        WriteFields(w, spec, r);
        if (xdpMode is not null) w.WriteString("xdp_mode", xdpMode);
        if (xdpStats is not null)
        {
            w.WriteStartObject("xdp_kernel");
            foreach (var (k, v) in xdpStats) w.WriteNumber(k, v);
            w.WriteEndObject();
        }
        if (peer is not null)
        {
            w.WriteStartObject("peer");
            WriteFields(w, null, peer);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.Flush();
        stdout.WriteByte((byte)'\n');
    }

    private static void WriteFields(Utf8JsonWriter w, string? spec, PktgenResult r)
    {
        if (spec is not null) w.WriteString("port", spec);
        w.WriteString("mode", r.Mode.ToString().ToLowerInvariant());
        w.WriteNumber("packets", r.Packets);
        w.WriteNumber("bytes", r.Bytes);
        w.WriteNumber("seconds", Math.Round(r.Seconds, 6));
        w.WriteNumber("mpps", Math.Round(r.Mpps, 3));
        w.WriteNumber("gbps", Math.Round(r.Gbps, 3));
        w.WriteNumber("avg_batch", Math.Round(r.AverageBatch, 2));
        if (r.RttNs.Length > 0)
        {
            w.WriteStartObject("rtt_ns");
            w.WriteNumber("min", r.RttNs[0]);
            w.WriteNumber("p50", r.Percentile(50));
            w.WriteNumber("p99", r.Percentile(99));
            w.WriteNumber("max", r.RttNs[^1]);
            w.WriteNumber("count", r.RttNs.Length);
            w.WriteEndObject();
        }
        if (r.Failure is not null) w.WriteString("failure", r.Failure);
    }
}
