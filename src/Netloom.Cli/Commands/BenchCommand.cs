using System.CommandLine;
using System.Text.Json;
using Netloom.Cli.Pktgen;
using Netloom.Rings;
using Netloom.Time;

namespace Netloom.Cli.Commands;

/// <summary>`netloom bench NAME`: end-to-end benchmarks, each beside its reference when one can run here.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var seconds = new Option<double>("--duration") { Description = "Seconds per measurement", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var rings = new Command("rings", "Pipe and shm (two processes): tx to rx and ping-pong with 64 B frames, both sides spinning on the two cores") { seconds, json };
        rings.SetAction(r => Rings(r.GetValue(seconds), r.GetValue(json)));
        var switchBench = new Command("switch", "Switch forwarding, one forwarding thread and one generator thread, beside DPDK testpmd io forwarding") { seconds, json };
        switchBench.SetAction(r => Switch(r.GetValue(seconds), r.GetValue(json)));
        var requests = new Option<int>("--requests") { Description = "redis-benchmark -n (the pipelined run uses 5 times as many)", DefaultValueFactory = _ => 200_000 };
        var kv = new Command("kv", "redis-benchmark against netloom kv (uring and sockets engines) and redis-server, in the same run") { requests, json };
        kv.SetAction(r => Print(BenchKv.Run(r.GetValue(requests)), r.GetValue(json),
            "redis-benchmark -t set,get -c 50: median of 3 interleaved rounds (then one -P 16 run); uring: the defaults (a ring per core, sleeping between batches); uring_poll: --threads 1 --busy-poll 50; syscalls counted by strace -c -f over a separate run, divided by requests"));
        var mtu = new Option<int>("--mtu") { Description = "MTU of the two user-level stacks (the shm port carries 64 KiB frames, like loopback)", DefaultValueFactory = _ => 65000 };
        var tcp = new Command("tcp", "TCP bulk throughput and 64 B ping-pong between two user-level stacks in two processes over shm, beside the kernel over loopback (iperf3, sockperf)") { seconds, json, mtu };
        tcp.SetAction(r =>
        {
            double s = r.GetValue(seconds);
            if (s <= 0 || s > 600) return CliErrors.Report("--duration must be between 0 and 600 seconds", CliErrors.BadInput);
            return Print(BenchTcp.Run(Duration.FromNanoseconds((long)(s * 1e9)), r.GetValue(mtu)), r.GetValue(json),
                "both stacks busy-poll with the application inline, one process each (the 2 cores); kernel figures from iperf3 and sockperf ping-pong --tcp -m 64 over 127.0.0.1 in the same run; half RTT = RTT/2");
        });
        var peerPort = new Option<string>("--port") { Required = true };
        var peerFull = new Option<bool>("--full-checksums") { Description = "Do not declare the checksum capability on the port" };
        var peer = new Command("tcp-peer", "(internal) the server side of bench tcp") { peerPort, seconds, mtu, peerFull };
        peer.Hidden = true;
        peer.SetAction(r => BenchTcp.Peer(r.GetValue(peerPort)!, r.GetValue(mtu), r.GetValue(seconds), r.GetValue(peerFull)));
        var routers = new Option<int>("--routers") { Description = "Routers in the chain (each with a LAN)", DefaultValueFactory = _ => 10 };
        var hostsPerLan = new Option<int>("--hosts-per-lan") { Description = "Hosts on each LAN", DefaultValueFactory = _ => 100 };
        var streamRate = new Option<string>("--stream-rate") { Description = "Rate of each UDP stream", DefaultValueFactory = _ => "10mbit" };
        var emulate = new Command("emulate", "Build and run a 1,000-host emulated network (router chain, LAN switches, UDP streams end to end), beside the same shape in Linux namespaces") { seconds, json, routers, hostsPerLan, streamRate };
        emulate.SetAction(r =>
        {
            double s = r.GetValue(seconds);
            int rs = r.GetValue(routers), h = r.GetValue(hostsPerLan);
            if (s <= 0 || s > 600) return CliErrors.Report("--duration must be between 0 and 600 seconds", CliErrors.BadInput);
            if (rs < 2 || rs > 200 || h < 1 || h > 250) return CliErrors.Report("--routers must be 2 to 200 and --hosts-per-lan 1 to 250", CliErrors.BadInput);
            if (!Netloom.Time.Quantity.TryRate(r.GetValue(streamRate)!, out long rate)) return CliErrors.Report("--stream-rate must be a rate such as 10mbit", CliErrors.BadInput);
            return Print(BenchEmulate.Run(rs, h, s, rate), r.GetValue(json),
                "emulator: one thread, virtual time; packet-hops are frames delivered across links per second of wall time; linux_*: the same shape from namespaces, veth and bridges built with ip -batch, traffic from iperf3 UDP (no netem on this kernel)");
        });
        var busyPoll = new Option<int>("--busy-poll") { Description = "netloom run --busy-poll for the sockperf rounds (microseconds)", DefaultValueFactory = _ => 100_000 };
        var run = new Command("run", "Unmodified programs under netloom run over shm beside the kernel over loopback: sockperf ping-pong, iperf3, redis-benchmark, and the interposer's cost on a kernel descriptor") { seconds, json, busyPoll };
        run.SetAction(r =>
        {
            double s = r.GetValue(seconds);
            if (s <= 0 || s > 600) return CliErrors.Report("--duration must be between 0 and 600 seconds", CliErrors.BadInput);
            return Print(BenchRun.Run(s, Math.Max(0, r.GetValue(busyPoll))), r.GetValue(json),
                "both ends of each program under netloom run, one shm port between them, beside the same programs on the kernel over 127.0.0.1; 3 interleaved rounds, medians; sockperf p50 is its latency (half the round trip), netloom busy-polling (both sides spin: the 2 cores); iperf3 one stream, 64 KiB MTU over shm; redis-benchmark -t set,get -n 200000 -c 50 -P 16; pipe: write+read of 1 byte on a kernel pipe with and without the interposer, 6 rounds in ABBA order");
        });
        var offload = new Command("offload", "Unmodified redis-server and nginx, plain and under netloom run --offload (with and without busy polling), under redis-benchmark and wrk: throughput, CPU and system calls per request, p99") { seconds, json };
        offload.SetAction(r =>
        {
            double s = r.GetValue(seconds);
            if (s <= 0 || s > 600) return CliErrors.Report("--duration must be between 0 and 600 seconds", CliErrors.BadInput);
            return Print(BenchOffload.Run(s), r.GetValue(json),
                "servers on 127.0.0.1, plain / under netloom run --offload / --offload with --busy-poll 50 / --offload with --coalesce 50; 3 interleaved rounds, medians; redis-benchmark -t get (-c 50; -c 100 -P 16; and --threads 2), wrk -t 1 --latency against nginx (one process, sendfile) for a 1 KiB and a 64 KiB file at -c 50 and -c 256; cpu: the server's utime+stime per request (io_uring's work in the task included); syscalls: perf's raw_syscalls:sys_enter on the server per request; others_cpu: the whole machine's busy CPU (/proc/stat) less the server's, per request (the load generator, mostly); machine_busy: the share of all cores busy during the load");
        });
        var kestrel = new Command("kestrel", "TechEmpower plaintext on Kestrel: the sockets transport beside Netloom's io_uring transport (thread-pool and inline) and the user-level stack over shm (wrk under netloom run); wrk pipelined and plain, h2load; interleaved rounds; per request: the server's CPU, and others_cpu (the whole machine's busy CPU less the server's: the load generator, mostly); machine_busy: the share of all cores busy") { seconds, json };
        kestrel.SetAction(r =>
        {
            double s = r.GetValue(seconds);
            if (s <= 0 || s > 600) return CliErrors.Report("--duration must be between 0 and 600 seconds", CliErrors.BadInput);
            return Print(BenchKestrel.Run(s), r.GetValue(json),
                "Kestrel 10 serving TechEmpower plaintext on 127.0.0.1, one process per transport, all running, rounds interleaved (3, medians); wrk -t 2 -c 256 with 16-deep pipelining (pipelined) and without (plain); h2load -c 16 -m 16 -t 2 over h2c; cpu_us_per_request: the server's user+system CPU (/proc) over the requests served; uring: Netloom's io_uring transport (a ring per core), application on the thread pool; uring_inline: application continuations on the ring's thread; stack_shm: the app on Netloom's user-level stack over a shm port, wrk under netloom run on the other end (no h2load: it would need to run under netloom run too); wrk shares the 2 cores with the server");
        });
        var zerocopy = new Command("zerocopy", "Sender CPU time per GB with 64 KiB writes, zero-copy against copying sends, between two user-level stacks over shm; the kernel's MSG_ZEROCOPY against send over a veth pair for reference") { seconds, json, mtu };
        zerocopy.SetAction(r =>
        {
            double s = r.GetValue(seconds);
            if (s <= 0 || s > 600) return CliErrors.Report("--duration must be between 0 and 600 seconds", CliErrors.BadInput);
            int m = r.GetValue(mtu);
            if (m < 576 || m > 65000) return CliErrors.Report("--mtu must be between 576 and 65000", CliErrors.BadInput);
            return Print(BenchZeroCopy.Run(s, m), r.GetValue(json),
                "sender CPU: the sending process's user+system time over the bytes the peer acknowledged; copy (Send) and lent (SendReferenced, one copy into the frame) write 64 KiB at a time, zerocopy sends one shm loan buffer per send (SendLoan: zerocopy_write_bytes of payload, the frame is the buffer, no copy); 4 rounds of each in ABCDE EDCBA order, medians; both ends declare the checksum capability on the shm port, so the copy, lent and zerocopy rounds neither compute nor verify TCP checksums (checksum_offload 1; checksums_left_out counts their segments); full_*: the copy and zerocopy rounds again with the sender computing every checksum and the peer verifying it, full_cpu_per_byte_ratio = full_copy / full_zerocopy; the sender sleeps on the port when it can neither send nor receive; receiver: bench tcp-peer in a second process (busy-polling, discarding in place); cpu_per_byte_ratio = copy_cpu_s_per_gb / zerocopy_cpu_s_per_gb, lent_cpu_per_byte_ratio = copy / lent; kernel_*: a C sender with MSG_ZEROCOPY or plain send over a veth pair between two namespaces (1500 MTU), its getrusage; kernel_zerocopy_copied_sends counts sends whose completion carried SO_EE_CODE_ZEROCOPY_COPIED");
        });
        var transport = new Option<string>("--transport") { Required = true };
        var listen = new Option<string>("--listen") { Required = true };
        var h2Port = new Option<int>("--h2-port");
        var appPort = new Option<string?>("--port-spec");
        var appIp = new Option<string?>("--ip");
        var kestrelApp = new Command("kestrel-app", "(internal) the plaintext app of bench kestrel") { transport, listen, h2Port, appPort, appIp };
        kestrelApp.Hidden = true;
        kestrelApp.SetAction(r => BenchKestrel.App(r.GetValue(transport)!, r.GetValue(listen)!, r.GetValue(h2Port), r.GetValue(appPort), r.GetValue(appIp)));
        var genIf = new Option<string>("--ifname") { Required = true };
        var xdpGen = new Command("xdp-gen", "(internal) the kernel's XDP traffic generator out of an interface, for bench rings") { genIf, seconds };
        xdpGen.Hidden = true;
        xdpGen.SetAction(r => XdpGen(r.GetValue(genIf)!, r.GetValue(seconds)));
        return new Command("bench", "End-to-end benchmarks") { rings, switchBench, kv, tcp, peer, emulate, run, offload, kestrel, kestrelApp, zerocopy, xdpGen };
    }

    private static int Switch(double seconds, bool json)
    {
        if (seconds <= 0 || seconds > 600) return CliErrors.Report("--duration must be between 0 and 600 seconds", CliErrors.BadInput);
        return Print(BenchSwitch.Run(Duration.FromNanoseconds((long)(seconds * 1e9))), json,
            "switch: 1 forwarding thread, generator on the other core, pipes; zero copy unless *_copy; switch_mpps and testpmd_mpps are the median seconds of rounds alternating the two; testpmd_mpps is both ports' Tx-pps summed (one forwarding core); linux_hosts_*: iperf3 TCP between two namespaces through `netloom switch --wait Block` over xdp ports with the TC fast path (and the same with --wait BusyPoll), over xdp ports with --no-xdp-fastpath, over afpacket ports, and a Linux bridge, offloads off on all veth ends, 3 rounds alternating them, medians");
    }

    /// <summary>Prints figures as "key value" lines, or as one JSON object with a note.</summary>
    private static int Print(List<(string Key, object Value)> figures, bool json, string note)
    {
        if (!json)
        {
            foreach (var (k, v) in figures) Console.WriteLine($"{k,-28} {v}");
            return CliErrors.Ok;
        }
        using var stdout = Console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout))
        {
            w.WriteStartObject();
            foreach (var (k, v) in figures)
            {
                if (v is double x) w.WriteNumber(k, x); else w.WriteString(k, v.ToString());
            }
            w.WriteString("note", note);
            w.WriteEndObject();
        }
        stdout.WriteByte((byte)'\n');
        return CliErrors.Ok;
    }

    private static int Rings(double seconds, bool json)
    {
        if (seconds <= 0 || seconds > 600) return CliErrors.Report("--duration must be between 0 and 600 seconds", CliErrors.BadInput);
        var d = Duration.FromNanoseconds((long)(seconds * 1e9));
        var figures = new List<(string Key, double Value)>();

        var (tx, rx) = PipeRun(PktgenMode.Tx, PktgenMode.Rx, d);
        figures.Add(("pipe_mpps", Math.Round(rx.Mpps, 2)));
        figures.Add(("pipe_gbps", Math.Round(rx.Gbps, 2)));
        figures.Add(("pipe_avg_batch", Math.Round(tx.AverageBatch, 1)));
        var (ping, _) = PipeRun(PktgenMode.Ping, PktgenMode.Pong, d);
        figures.Add(("pipe_rtt_p50_ns", ping.Percentile(50)));
        figures.Add(("pipe_rtt_p99_ns", ping.Percentile(99)));

        var (shmTx, shmRx) = ShmRun(PktgenMode.Tx, PktgenMode.Rx, d);
        figures.Add(("shm_mpps", Math.Round(shmRx?.GetProperty("mpps").GetDouble() ?? 0, 2)));
        figures.Add(("shm_avg_batch", Math.Round(shmTx.AverageBatch, 1)));
        var (shmPing, _) = ShmRun(PktgenMode.Ping, PktgenMode.Pong, d);
        figures.Add(("shm_rtt_p50_ns", shmPing.Percentile(50)));
        figures.Add(("shm_rtt_p99_ns", shmPing.Percentile(99)));

        string? skipped = null, xdpMode = null;
        if (Environment.UserName != "root") skipped = "tap, afpacket and xdp figures need root (network namespaces)";
        else if (!File.Exists("/usr/sbin/ip") && !File.Exists("/sbin/ip") && !File.Exists("/usr/bin/ip")) skipped = "tap, afpacket and xdp figures need iproute2";
        else figures.AddRange(KernelPortRuns(d, out xdpMode));

        if (json)
        {
            using var stdout = Console.OpenStandardOutput();
            using (var w = new Utf8JsonWriter(stdout))
            {
                w.WriteStartObject();
                foreach (var (k, v) in figures) w.WriteNumber(k, v);
                if (skipped is not null) w.WriteString("skipped", skipped);
                if (xdpMode is not null) w.WriteString("xdp_mode", xdpMode);
                w.WriteNumber("frame_bytes", 64);
                w.WriteNumber("cores", Environment.ProcessorCount);
                w.WriteString("note", "sender and receiver spin (not pinned) on the two cores; *_mpps count packets received; shm runs between this process and a child pktgen");
                w.WriteEndObject();
            }
            stdout.WriteByte((byte)'\n');
        }
        else
        {
            foreach (var (k, v) in figures) Console.WriteLine($"{k,-18} {v}");
            if (skipped is not null) Console.WriteLine($"(skipped: {skipped})");
            if (xdpMode is not null) Console.WriteLine($"{"xdp_mode",-18} {xdpMode}");
        }
        return CliErrors.Ok;
    }

    /// <summary>
    /// TAP and AF_PACKET on a veth pair between two namespaces made here and removed after:
    /// pktgen tx into a TAP (frames handed to the kernel), and pktgen tx on one veth end with
    /// pktgen rx on the other (frames received).
    /// </summary>
    private static List<(string, double)> KernelPortRuns(Duration d, out string? xdpMode)
    {
        xdpMode = null;
        string tag = (Environment.ProcessId % 100000).ToString();
        string nsA = $"nlbA{tag}", nsB = $"nlbB{tag}", vA = $"nlbva{tag}", vB = $"nlbvb{tag}";
        var result = new List<(string, double)>();
        try
        {
            Ip("netns", "add", nsA);
            Ip("netns", "add", nsB);
            Ip("link", "add", vA, "netns", nsA, "type", "veth", "peer", "name", vB, "netns", nsB);
            Ip("-n", nsA, "link", "set", vA, "up");
            Ip("-n", nsB, "link", "set", vB, "up");
            string secs = (d.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
            string longer = (d.TotalSeconds + 1.5).ToString(System.Globalization.CultureInfo.InvariantCulture);

            var tap = ChildPktgen(nsA, $"tap:nlbt{tag}", "tx", secs);
            tap.WaitForExit(60_000);
            result.Add(("tap_tx_mpps", Math.Round(Figure(tap, "mpps"), 3)));

            var rx = ChildPktgen(nsB, $"afpacket:{vB}", "rx", longer);
            Thread.Sleep(700);
            var tx = ChildPktgen(nsA, $"afpacket:{vA}", "tx", secs);
            tx.WaitForExit(60_000);
            rx.WaitForExit(60_000);
            double afTx = Figure(tx, "mpps"), afRx = Figure(rx, "mpps");
            result.Add(("afpacket_tx_mpps", Math.Round(afTx, 3)));
            result.Add(("afpacket_rx_mpps", Math.Round(afRx, 3)));

            // The same pair of ends over AF_XDP (the receiver's program steals every frame from its
            // kernel): as the port chooses (native mode on veth), then forced to generic mode.
            var modes = new List<string>();
            foreach (var (prefix, forced) in new[] { ("xdp", (string?)null), ("xdp_generic", "generic") })
            {
                var xrx = ChildPktgen(nsB, $"xdp:{vB}", "rx", longer, forced);
                Thread.Sleep(700);
                var xtx = ChildPktgen(nsA, $"xdp:{vA}", "tx", secs, forced);
                xtx.WaitForExit(60_000);
                xrx.WaitForExit(60_000);
                string txText = xtx.StandardOutput.ReadToEnd(), rxText = xrx.StandardOutput.ReadToEnd();
                double xTx = Figure(txText, "mpps"), xRx = Figure(rxText, "mpps");
                result.Add(($"{prefix}_tx_mpps", Math.Round(xTx, 3)));
                result.Add(($"{prefix}_rx_mpps", Math.Round(xRx, 3)));
                if (afTx > 0) result.Add(($"{prefix}_tx_vs_afpacket", Math.Round(xTx / afTx, 2)));
                if (afRx > 0) result.Add(($"{prefix}_rx_vs_afpacket", Math.Round(xRx / afRx, 2)));
                result.Add(($"{prefix}_rx_kernel_dropped", Figure(rxText, "xdp_kernel", "rx_dropped") + Figure(rxText, "xdp_kernel", "rx_ring_full")));
                modes.Add(FigureText(rxText, "xdp_mode") is { } m ? $"{prefix}: receiver {m}, sender {FigureText(txText, "xdp_mode")}"
                    : $"{prefix}: failed: {xrx.StandardError.ReadToEnd().Trim()} {xtx.StandardError.ReadToEnd().Trim()}");
            }
            xdpMode = string.Join("; ", modes);

            // The receivers again, now fed by the kernel's XDP generator (XdpGenerator) on the other
            // end, which outruns both senders: these are the receivers' own rates. veth hands XDP
            // frames to a peer only when the peer's NAPI runs: an XDP program (the xdp port) or
            // GRO, which AF_PACKET's receiver gets here (frames become socket buffers there).
            foreach (var kind in new[] { "afpacket", "xdp" })
            {
                if (kind == "afpacket") Ip("netns", "exec", nsB, "ethtool", "-K", vB, "gro", "on");
                var krx = ChildPktgen(nsB, $"{kind}:{vB}", "rx", (d.TotalSeconds + 3).ToString(System.Globalization.CultureInfo.InvariantCulture));
                Thread.Sleep(700);
                using var gen = SelfProcess.Start(["bench", "xdp-gen", "--ifname", vA, "--duration", secs], "ip", "netns", "exec", nsA);
                gen.WaitForExit(60_000);
                krx.WaitForExit(60_000);
                if (kind == "afpacket") Ip("netns", "exec", nsB, "ethtool", "-K", vB, "gro", "off");
                string genText = gen.StandardOutput.ReadToEnd(), rxText = krx.StandardOutput.ReadToEnd();
                result.Add(($"xdpgen_{kind}_offered_mpps", Math.Round(Figure(genText, "mpps"), 3)));
                result.Add(($"xdpgen_{kind}_rx_mpps", Math.Round(Figure(rxText, "mpps"), 3)));
                if (kind == "xdp") result.Add(("xdpgen_xdp_rx_kernel_dropped", Figure(rxText, "xdp_kernel", "rx_dropped") + Figure(rxText, "xdp_kernel", "rx_ring_full")));
            }
            double gx = result.Find(f => f.Item1 == "xdpgen_xdp_rx_mpps").Item2, ga = result.Find(f => f.Item1 == "xdpgen_afpacket_rx_mpps").Item2;
            if (ga > 0) result.Add(("xdpgen_xdp_rx_vs_afpacket", Math.Round(gx / ga, 2)));
        }
        finally
        {
            Ip("netns", "del", nsA);
            Ip("netns", "del", nsB);
        }
        return result;
    }

    /// <summary>`bench xdp-gen`: 64 B frames (pktgen's) out of an interface for a while; prints {"frames", "seconds", "mpps"}.</summary>
    private static int XdpGen(string ifname, double seconds)
    {
        if (seconds <= 0 || seconds > 600) return CliErrors.Report("--duration must be between 0 and 600 seconds", CliErrors.BadInput);
        try
        {
            int ifindex = Netloom.Interop.Netdevice.Index(ifname);
            using var gen = new XdpGenerator("bench xdp-gen");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
            long frames = gen.Run("bench xdp-gen", ifindex, Generator.Frame(64), stop.Token);
            double s = clock.Elapsed.TotalSeconds;
            Console.WriteLine(FormattableString.Invariant($"{{\"frames\":{frames},\"seconds\":{s:F3},\"mpps\":{frames / s / 1e6:F3}}}"));
            return CliErrors.Ok;
        }
        catch (IOException e) { return CliErrors.Report(e.Message); }
    }

    private static void Ip(params string[] args)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("ip", args) { RedirectStandardError = true })!;
        p.WaitForExit();
    }

    private static System.Diagnostics.Process ChildPktgen(string ns, string spec, string mode, string seconds, string? xdpMode = null) =>
        xdpMode is null
            ? SelfProcess.Start(["pktgen", "--port", spec, "--mode", mode, "--duration", seconds, "--json"], "ip", "netns", "exec", ns)
            : SelfProcess.Start(["pktgen", "--port", spec, "--mode", mode, "--duration", seconds, "--json"], "ip", "netns", "exec", ns, "env", $"NETLOOM_XDP_MODE={xdpMode}");

    private static double Figure(System.Diagnostics.Process p, string key) => Figure(p.StandardOutput.ReadToEnd(), key);

    /// <summary>A number from a child's JSON output, following <paramref name="path"/>; 0 when it is not there.</summary>
    private static double Figure(string text, params string[] path)
    {
        text = text.Trim();
        if (!text.StartsWith('{')) return 0;
        using var doc = JsonDocument.Parse(text);
        var e = doc.RootElement;
        foreach (var key in path) if (!e.TryGetProperty(key, out e)) return 0;
        return e.ValueKind == JsonValueKind.Number ? e.GetDouble() : 0;
    }

    private static string? FigureText(string text, string key)
    {
        text = text.Trim();
        if (!text.StartsWith('{')) return null;
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }

    /// <summary>
    /// This process opens shm:NAME as server and runs <paramref name="mode"/>; a child netloom
    /// process runs the peer mode and reports in JSON.
    /// </summary>
    private static (PktgenResult Main, JsonElement? Peer) ShmRun(PktgenMode mode, PktgenMode peerMode, Duration d)
    {
        string spec = $"shm:bench{Environment.ProcessId}{mode}";
        using var port = (ShmPort)Ports.Open(spec);
        port.WaitMode = WaitMode.BusyPoll;
        Generator.Prefill(port, Generator.Frame(64));
        using var child = SelfProcess.Start(["pktgen", "--port", spec, "--mode", peerMode.ToString().ToLowerInvariant(), "--duration",
            (d.TotalSeconds + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), "--json"]);
        var output = child.StandardOutput.ReadToEndAsync();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!port.Connected && sw.ElapsedMilliseconds < 15_000 && !child.HasExited) Thread.Sleep(5);
        if (!port.Connected) throw new InvalidOperationException($"the child pktgen never connected: {child.StandardError.ReadToEnd()}");
        var main = Generator.Run(port, mode, 64, 256, d, 0, CancellationToken.None);
        port.Dispose(); // the child sees its peer go and stops
        if (!child.WaitForExit(10_000)) child.Kill();
        string text = output.Result.Trim();
        JsonElement? peer = text.StartsWith('{') ? JsonDocument.Parse(text).RootElement.Clone() : null;
        return (main, peer);
    }

    private static (PktgenResult Main, PktgenResult Peer) PipeRun(PktgenMode mode, PktgenMode peerMode, Duration d)
    {
        var (a, b) = PipePort.OpenPair($"bench-{Environment.ProcessId}-{mode}", new PortOptions { RingSize = 1024 });
        using var _a = a;
        using var _b = b;
        a.WaitMode = b.WaitMode = WaitMode.BusyPoll;
        var frame = Generator.Frame(64);
        Generator.Prefill(a, frame);
        using var cts = new CancellationTokenSource();
        PktgenResult? peer = null;
        // Not pinned: on this VM pinning both spinners made figures worse and no steadier (see BENCHMARKS.md).
        var t = new Thread(() => peer = Generator.Run(b, peerMode, 64, 256, d + Duration.FromMilliseconds(300), 0, cts.Token));
        t.Start();
        var main = Generator.Run(a, mode, 64, 256, d, 0, cts.Token);
        cts.CancelAfter(500);
        t.Join();
        return (main, peer!);
    }
}
