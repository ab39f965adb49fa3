using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Netloom.Cli.Pktgen;
using Netloom.Rings;
using Netloom.Switching;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Cli.Commands;

/// <summary>
/// `netloom bench switch`: one forwarding thread moves frames from port 0 to port 1 while one
/// generator thread (the other core) feeds port 0 and drains port 1 through pipes; beside it,
/// DPDK's testpmd forwarding between two net_null devices, in the same run. The two headline
/// figures are measured the same way: whole seconds, in rounds that alternate switch and testpmd
/// (this machine's speed drifts from minute to minute), and the median second of each.
/// </summary>
internal static partial class BenchSwitch
{
    private const int Rounds = 2, Ring = 1024, Burst = 512;

    public static List<(string Key, object Value)> Run(Duration d)
    {
        var figures = new List<(string, object)>();
        Forward(64, sharedPool: true, Duration.FromSeconds(1)); // lets the JIT reach its final code first

        bool havePmd = TestPmdPath() is not null;
        List<double> sw = [], pmd = [];
        for (int round = 0; round < Rounds; round++)
        {
            sw.AddRange(Forward(64, sharedPool: true, d));
            if (havePmd) pmd.AddRange(TestPmd(d, "io"));
        }
        double mpps = Median(sw);
        figures.Add(("switch_mpps", Math.Round(mpps, 2)));
        double copyMpps = Median(Forward(64, sharedPool: false, d));
        figures.Add(("switch_copy_mpps", Math.Round(copyMpps, 2)));
        figures.Add(("switch_gbps_1500", Math.Round(Median(Forward(1500, sharedPool: true, d)) * 1500 * 8 / 1e3, 2)));
        figures.Add(("switch_copy_gbps_1500", Math.Round(Median(Forward(1500, sharedPool: false, d)) * 1500 * 8 / 1e3, 2)));
        figures.Add(("switch_mpps_seconds", string.Join(" ", sw.Select(x => x.ToString("F1")))));

        if (havePmd && pmd.Count > 0)
        {
            double t = Median(pmd);
            figures.Add(("testpmd_mpps", Math.Round(t, 2)));
            figures.Add(("testpmd_mpps_seconds", string.Join(" ", pmd.Select(x => x.ToString("F1")))));
            figures.Add(("ratio_vs_testpmd", Math.Round(mpps / t, 2)));
            figures.Add(("ratio_copy_vs_testpmd", Math.Round(copyMpps / t, 2)));
            // macswap reads and rewrites the MACs of every frame, as a learning switch must read them.
            var m = TestPmd(d, "macswap");
            if (m.Count > 0)
            {
                figures.Add(("testpmd_macswap_mpps", Math.Round(Median(m), 2)));
                figures.Add(("ratio_vs_testpmd_macswap", Math.Round(mpps / Median(m), 2)));
            }
        }
        else figures.Add(("testpmd", havePmd ? "not measured: testpmd printed no forwarding rate" : "not run: dpdk-testpmd not found (apt-get install dpdk-dev)"));
        figures.AddRange(LinuxHosts(d));
        return figures;
    }

    private static double Median(List<double> xs)
    {
        if (xs.Count == 0) return 0;
        var s = xs.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }

    /// <summary>Millions of frames received at port 1's far end in each whole second of <paramref name="d"/> (at least one).</summary>
    private static List<double> Forward(int size, bool sharedPool, Duration d)
    {
        using var pool = sharedPool ? new PacketPool(2 * 4 * Ring + 1) : null;
        var options = new PortOptions { RingSize = Ring, SharedPool = pool };
        string tag = $"bsw{Environment.ProcessId}-{size}-{sharedPool}";
        var (g0, s0) = PipePort.OpenPair(tag + "a", options);
        var (g1, s1) = PipePort.OpenPair(tag + "b", options);
        using var sw = new Netloom.Switching.Switch(new LearningTable(), Burst);
        sw.AddPort(s0);
        sw.AddPort(s1);
        try
        {
            var frame = Generator.Frame(size);
            // Teach the switch where the destination lives, so the test frames are unicast.
            var dst = MacAddress.Read(frame);
            var tx1 = g1.Tx;
            frame.CopyTo(tx1.Buffer(tx1.Head));
            dst.Write(tx1.Buffer(tx1.Head)[6..]);
            tx1[tx1.Head].Length = (ushort)frame.Length;
            tx1.Release(1);
            g1.TxSync();
            sw.Forward(Instant.Zero);
            g0.RxSync();
            g0.Rx.Release(g0.Rx.Space);
            g0.RxSync();
            Generator.Prefill(g0, frame);

            using var stop = new CancellationTokenSource();
            var forwarder = new Thread(() =>
            {
                var clock = Stopwatch.StartNew();
                while (!stop.IsCancellationRequested) sw.Forward(new Instant(clock.ElapsedTicks));
            }) { Name = "bench switch" };
            forwarder.Start();

            // The generator: bursts of pre-filled frames into port 0 (only lengths are set, as
            // netmap's pkt-gen does), and everything port 1 received drained, on this thread.
            var tx = g0.Tx;
            var rx = g1.Rx;
            long second = Stopwatch.Frequency, received = 0;
            long start = Stopwatch.GetTimestamp() + second / 5; // a fifth of a second to settle
            int whole = Math.Max(1, (int)d.TotalSeconds);
            var rates = new List<double>(whole);
            long mark = 0, markTime = 0;
            while (rates.Count < whole)
            {
                long now = Stopwatch.GetTimestamp();
                if (markTime == 0 ? now >= start : now - markTime >= second)
                {
                    if (markTime != 0) rates.Add((received - mark) * (double)second / (now - markTime) / 1e6);
                    (mark, markTime) = (received, now);
                }
                int n = Math.Min(tx.Space, Burst);
                uint h = tx.Head;
                for (int i = 0; i < n; i++) { tx[h].Length = (ushort)frame.Length; h = tx.Next(h); }
                tx.Head = h;
                g0.TxSync();
                g1.RxSync();
                received += rx.Space;
                rx.Release(rx.Space);
            }
            stop.Cancel();
            forwarder.Join();
            return rates;
        }
        finally
        {
            g0.Dispose();
            g1.Dispose();
        }
    }

    [GeneratedRegex(@"Tx-pps:\s+(\d+)")]
    private static partial Regex TxPps();

    private static string? TestPmdPath() => new[] { "/usr/bin/dpdk-testpmd", "/usr/local/bin/dpdk-testpmd" }.FirstOrDefault(File.Exists);

    /// <summary>
    /// testpmd forwarding between two net_null ports, as the issue gives it, for
    /// <paramref name="d"/> plus its start-up; returns both ports' Tx-pps summed (what its one
    /// forwarding core moves), in millions, for each whole second of forwarding.
    /// </summary>
    private static List<double> TestPmd(Duration d, string mode)
    {
        if (TestPmdPath() is not { } exe) return [];
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in $"-l 0-1 --no-huge -m 1024 --no-pci --vdev=net_null0 --vdev=net_null1 -- --forward-mode={mode} --total-num-mbufs=16384 -a --stats-period 1".Split(' '))
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        Thread.Sleep(TimeSpan.FromSeconds(Math.Max(1, (int)d.TotalSeconds) + 5)); // start-up takes two to three seconds
        using (var kill = Process.Start("kill", ["-INT", p.Id.ToString()])) kill!.WaitForExit();
        if (!p.WaitForExit(10_000)) p.Kill();
        var rates = TxPps().Matches(output.Result).Select(m => double.Parse(m.Groups[1].Value)).ToList();
        // Each stats print lists port 0 then port 1, each rate over the second before it. The
        // prints before forwarding say 0, and the first with traffic covers its start: neither
        // counts. (On SIGINT testpmd prints totals in another form, so the last rate is whole.)
        var seconds = new List<double>();
        for (int i = 0; i + 1 < rates.Count; i += 2) seconds.Add((rates[i] + rates[i + 1]) / 1e6);
        int first = seconds.FindIndex(x => x > 0);
        return first < 0 ? [] : seconds.Skip(first + 1).ToList();
    }
}
