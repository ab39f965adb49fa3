using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Cli.Commands;

/// <summary>
/// `netloom bench tcp`: two user-level stacks in two processes over a shm port, each on its own
/// busy-polling owner thread with the application inline (Onload's spinning mode), against the
/// kernel's TCP over loopback in the same run: iperf3 for bulk throughput and sockperf
/// ping-pong for 64-byte round trips.
/// </summary>
internal static class BenchTcp
{
    private static readonly Ipv4Address Client = Ipv4Address.Parse("10.99.0.1"), Server = Ipv4Address.Parse("10.99.0.2");
    private static readonly Ipv6Address Client6 = Ipv6Address.Parse("fd00:99::1"), Server6 = Ipv6Address.Parse("fd00:99::2");
    private const ushort DiscardPort = 5001, EchoPort = 5002;

    private static StackOptions Options(Ipv4Address a, int mtu) => new()
    {
        Mac = new MacAddress(2, 0, 0, 0, 0x63, (byte)(a.Value & 0xFF)), Address = a, Mtu = mtu,
        // Dual stack: the same pair of stacks runs the IPv4 and the IPv6 rounds (no DAD: the addresses are ours alone).
        Ipv6 = true, Ipv6Address = a == Client ? Client6 : Server6, DadTransmits = 0,
        Tcp = new TcpSocketOptions { SendBufferSize = 4 << 20, ReceiveBufferSize = 4 << 20, InitialReceiveWindow = 1 << 20 },
    };

    public static List<(string Key, object Value)> Run(Duration d, int mtu)
    {
        var figures = new List<(string, object)>();
        string spec = $"shm:tcpbench{Environment.ProcessId}";
        using var port = ShmPort.Open(PortSpec.Parse(spec), new PortOptions { RingSize = 128, BufferSize = 65536, ChecksumOffload = true });
        port.WaitMode = WaitMode.BusyPoll;
        using var child = SelfProcess.Start(["bench", "tcp-peer", "--port", spec, "--mtu", mtu.ToString(CultureInfo.InvariantCulture),
            // The peer outlives every round: four bulk rounds of d and four ping-pong rounds of d/2, plus set-up.
            "--duration", (6 * d.TotalSeconds + 30).ToString(CultureInfo.InvariantCulture)]);
        var sw = Stopwatch.StartNew();
        while (!port.Connected && sw.ElapsedMilliseconds < 15_000 && !child.HasExited) Thread.Sleep(5);
        if (!port.Connected) throw new InvalidOperationException($"the peer stack never attached: {child.StandardError.ReadToEnd()}");

        var host = new OwnerLoop(port, Options(Client, mtu));
        // IPv4 and IPv6 rounds run on the same stacks in ABBA order (v4, v6, v6, v4), each figure the
        // mean of its two rounds: a first round runs colder code (JIT tiers), and order alone moved a
        // single v4-then-v6 pair by a factor of 3.5 on this machine.
        var (gbpsA, retransmitsA) = Bulk(host, d, v6: false);
        var (gbps6A, retransmits6A) = Bulk(host, d, v6: true);
        var (gbps6B, retransmits6B) = Bulk(host, d, v6: true);
        var (gbpsB, retransmitsB) = Bulk(host, d, v6: false);
        double gbps = (gbpsA + gbpsB) / 2, gbps6 = (gbps6A + gbps6B) / 2;
        long retransmits = retransmitsA + retransmitsB, retransmits6 = retransmits6A + retransmits6B;
        figures.Add(("netloom_gbps", Math.Round(gbps, 2)));
        figures.Add(("netloom_retransmits", (double)retransmits));
        var half = Duration.FromNanoseconds(d.Nanoseconds / 2);
        var rtts = Merge(PingPong(host, half, v6: false), PingPong(host, half, v6: true), out var rtts6, PingPong(host, half, v6: true), PingPong(host, half, v6: false));
        figures.Add(("netloom_half_rtt_p50_us", Math.Round(Percentile(rtts, 50) / 2000.0, 2)));
        figures.Add(("netloom_half_rtt_p99_us", Math.Round(Percentile(rtts, 99) / 2000.0, 2)));
        figures.Add(("netloom_round_trips", (double)rtts.Length));
        figures.Add(("netloom_ipv6_gbps", Math.Round(gbps6, 2)));
        figures.Add(("netloom_ipv6_retransmits", (double)retransmits6));
        figures.Add(("netloom_ipv6_half_rtt_p50_us", Math.Round(Percentile(rtts6, 50) / 2000.0, 2)));
        figures.Add(("netloom_ipv6_half_rtt_p99_us", Math.Round(Percentile(rtts6, 99) / 2000.0, 2)));
        if (gbps > 0) figures.Add(("ipv6_to_ipv4_throughput_ratio", Math.Round(gbps6 / gbps, 3)));
        if (rtts.Length > 0) figures.Add(("ipv6_to_ipv4_latency_p50_ratio", Math.Round(Percentile(rtts6, 50) / Percentile(rtts, 50), 3)));
        port.Dispose(); // the peer sees us go and exits
        if (!child.WaitForExit(10_000)) child.Kill();

        double kernelGbps = Iperf3(d);
        figures.Add(("kernel_iperf3_gbps", Math.Round(kernelGbps, 2)));
        var (p50, p99) = Sockperf(d);
        figures.Add(("kernel_sockperf_half_rtt_p50_us", p50));
        figures.Add(("kernel_sockperf_half_rtt_p99_us", p99));
        if (kernelGbps > 0) figures.Add(("throughput_ratio", Math.Round(gbps / kernelGbps, 2)));
        if (p50 > 0) figures.Add(("latency_p50_ratio", Math.Round(Percentile(rtts, 50) / 2000.0 / p50, 3)));
        figures.Add(("mtu", (double)mtu));
        figures.Add(("cores", (double)Environment.ProcessorCount));
        return figures;
    }

    /// <summary>One stack on a port, polled on the calling thread with the app's work in between (no lock, no sleeping).</summary>
    private sealed class OwnerLoop
    {
        private readonly MonotonicClock _clock = new(Instant.FromSeconds(1));
        public readonly Interface Stack;

        public OwnerLoop(IPort port, StackOptions o)
        {
            Stack = new Interface(o, new PortDevice(port, o.Mtu));
            Poll();
        }

        public void Poll() => Stack.Poll(_clock.Now);

        public TcpSocket Connect(ushort port, bool v6 = false)
        {
            var s = v6 ? Stack.Connect(Server6, port) : Stack.Connect(Server, port);
            var sw = Stopwatch.StartNew();
            while (s.State == TcpState.SynSent && sw.ElapsedMilliseconds < 10_000) Poll();
            if (s.State != TcpState.Established) throw new InvalidOperationException($"bench connection to port {port}: {s.State} {s.Error}");
            return s;
        }
    }

    private static (double Gbps, long Retransmits) Bulk(OwnerLoop host, Duration d, bool v6)
    {
        var s = host.Connect(DiscardPort, v6);
        var chunk = new byte[256 << 10];
        new Random(1).NextBytes(chunk);
        long written = 0, startAcked = 0;
        long warmEnd = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 2, end = 0, start = 0;
        while (true)
        {
            host.Poll();
            while (s.SendSpace > 0) written += s.Send(chunk);
            long t = Stopwatch.GetTimestamp();
            if (start == 0 && t >= warmEnd) { start = t; startAcked = written - s.SendQueued; end = t + (long)(d.TotalSeconds * Stopwatch.Frequency); }
            if (start != 0 && t >= end) break;
        }
        long acked = written - s.SendQueued - startAcked;
        double seconds = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
        long retransmits = s.Retransmits;
        if (Environment.GetEnvironmentVariable("NETLOOM_BENCH_DEBUG") is not null)
            Console.Error.WriteLine($"{s.Describe()} segs={s.SegmentsOut} in={s.SegmentsIn} blocked={host.Stack.GetCounters().TcpTransmitBlocked} rtt={s.SmoothedRtt}");
        s.Abort();
        host.Poll();
        return (acked * 8 / seconds / 1e9, retransmits);
    }

    private static long[] PingPong(OwnerLoop host, Duration d, bool v6)
    {
        var s = host.Connect(EchoPort, v6);
        s.NoDelay = true;
        var msg = new byte[64];
        var reply = new byte[64];
        var samples = new long[4_000_000];
        int n = 0;
        long warmEnd = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 2, end = warmEnd + (long)(d.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            long t0 = Stopwatch.GetTimestamp();
            if (t0 >= end || n == samples.Length) break;
            s.Send(msg);
            int got = 0;
            while (got < 64)
            {
                host.Poll();
                got += s.Receive(reply.AsSpan(got));
            }
            long t1 = Stopwatch.GetTimestamp();
            if (t0 >= warmEnd) samples[n++] = (long)((t1 - t0) * (1e9 / Stopwatch.Frequency));
        }
        s.Abort();
        host.Poll();
        var result = samples[..n];
        Array.Sort(result);
        return result;
    }

    /// <summary>ABBA ping-pong rounds: the two IPv4 rounds merged (returned) and the two IPv6 rounds (<paramref name="b"/>).</summary>
    private static long[] Merge(long[] a1, long[] b1, out long[] b, long[] b2, long[] a2)
    {
        b = [.. b1, .. b2];
        Array.Sort(b);
        long[] a = [.. a1, .. a2];
        Array.Sort(a);
        return a;
    }

    private static double Percentile(long[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * p / 100))];

    /// <summary>The peer process: a server stack that discards on one port and echoes on another, until the port goes.</summary>
    public static int Peer(string spec, int mtu, double seconds, bool fullChecksums = false)
    {
        using var port = Ports.Open(spec, new PortOptions { ChecksumOffload = !fullChecksums });
        port.WaitMode = WaitMode.BusyPoll;
        var host = new OwnerLoop(port, Options(Server, mtu));
        var discard = host.Stack.Listen(DiscardPort);
        var echo = host.Stack.Listen(EchoPort);
        var open = new List<(TcpSocket S, bool Echo)>();
        var buf = new byte[65536];
        long end = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        int idle = 0;
        while (port.Failure is null && Stopwatch.GetTimestamp() < end)
        {
            host.Poll();
            while (discard.TryAccept(out var a)) open.Add((a, false));
            while (echo.TryAccept(out var b)) { b.NoDelay = true; open.Add((b, true)); }
            foreach (var (s, isEcho) in open)
            {
                if (isEcho)
                {
                    int n;
                    while (s.SendSpace >= buf.Length && (n = s.Receive(buf)) > 0) s.Send(buf.AsSpan(0, n));
                }
                else
                {
                    // Zero-copy discard: look at the bytes in the receive buffer and let them go.
                    s.PeekReceived(out var first, out var second);
                    if (first.Length + second.Length > 0) s.Consume(first.Length + second.Length);
                }
            }
            open.RemoveAll(x => x.S.State == TcpState.Closed);
            if (++idle % 100_000 == 0 && open.Count == 0 && port is ShmPort shm && !shm.Connected) break;
        }
        return CliErrors.Ok;
    }

    private static double Iperf3(Duration d)
    {
        if (ExternalTool.Which("iperf3") is null) return 0;
        int p = 5300 + Environment.ProcessId % 500;
        using var server = Process.Start(new ProcessStartInfo("iperf3", ["-s", "-1", "-p", p.ToString(CultureInfo.InvariantCulture)]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        Thread.Sleep(500);
        using var client = Process.Start(new ProcessStartInfo("iperf3", ["-c", "127.0.0.1", "-p", p.ToString(CultureInfo.InvariantCulture), "-t",
            Math.Max(1, Math.Round(d.TotalSeconds)).ToString(CultureInfo.InvariantCulture), "-O", "1", "-J"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string json = client.StandardOutput.ReadToEnd();
        client.WaitForExit();
        if (!server.WaitForExit(5000)) server.Kill();
        try { return JsonDocument.Parse(json).RootElement.GetProperty("end").GetProperty("sum_received").GetProperty("bits_per_second").GetDouble() / 1e9; }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException) { return 0; }
    }

    private static (double P50, double P99) Sockperf(Duration d)
    {
        if (ExternalTool.Which("sockperf") is null) return (0, 0);
        string p = (11000 + Environment.ProcessId % 500).ToString(CultureInfo.InvariantCulture);
        using var server = Process.Start(new ProcessStartInfo("sockperf", ["server", "--tcp", "-i", "127.0.0.1", "-p", p]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        Thread.Sleep(500);
        using var client = Process.Start(new ProcessStartInfo("sockperf", ["ping-pong", "--tcp", "-i", "127.0.0.1", "-p", p, "-m", "64", "-t",
            Math.Max(1, Math.Round(d.TotalSeconds)).ToString(CultureInfo.InvariantCulture)]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string text = client.StandardOutput.ReadToEnd() + client.StandardError.ReadToEnd();
        client.WaitForExit();
        server.Kill();
        // sockperf reports one-way latency (half the round trip) in microseconds.
        double Pick(string pct) => System.Text.RegularExpressions.Regex.Match(text, $@"percentile {pct} =\s+([\d.]+)") is { Success: true } m
            ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        return (Pick("50.000"), Pick("99.000"));
    }
}
