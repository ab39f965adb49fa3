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
/// DPDK's testpmd forwarding between two net_null devices, in the same run.
/// </summary>
internal static partial class BenchSwitch
{
    public static List<(string Key, object Value)> Run(Duration d)
    {
        var figures = new List<(string, object)>();
        var (mpps, _) = Forward(64, sharedPool: true, d);
        figures.Add(("switch_mpps", Math.Round(mpps, 2)));
        var (copyMpps, _) = Forward(64, sharedPool: false, d);
        figures.Add(("switch_copy_mpps", Math.Round(copyMpps, 2)));
        var (_, gbps) = Forward(1500, sharedPool: true, d);
        figures.Add(("switch_gbps_1500", Math.Round(gbps, 2)));
        var (_, copyGbps) = Forward(1500, sharedPool: false, d);
        figures.Add(("switch_copy_gbps_1500", Math.Round(copyGbps, 2)));

        var testpmd = TestPmd(d, "io");
        if (testpmd is { } t)
        {
            figures.Add(("testpmd_mpps", Math.Round(t.Total, 2)));
            figures.Add(("testpmd_port_mpps", Math.Round(t.PerPort, 2)));
            figures.Add(("ratio_vs_testpmd", Math.Round(mpps / t.Total, 2)));
            figures.Add(("ratio_copy_vs_testpmd", Math.Round(copyMpps / t.Total, 2)));
            // macswap reads and rewrites the MACs of every frame, as a learning switch must read them.
            if (TestPmd(d, "macswap") is { } m)
            {
                figures.Add(("testpmd_macswap_mpps", Math.Round(m.Total, 2)));
                figures.Add(("ratio_vs_testpmd_macswap", Math.Round(mpps / m.Total, 2)));
            }
        }
        else figures.Add(("testpmd", "not run: dpdk-testpmd not found (apt-get install dpdk-dev)"));
        return figures;
    }

    /// <summary>Frames per second (and Gbit/s) received at port 1's far end.</summary>
    private static (double Mpps, double Gbps) Forward(int size, bool sharedPool, Duration d)
    {
        const int ring = 1024;
        using var pool = sharedPool ? new PacketPool(2 * 4 * ring + 1) : null;
        var options = new PortOptions { RingSize = ring, SharedPool = pool };
        string tag = $"bsw{Environment.ProcessId}-{size}-{sharedPool}";
        var (g0, s0) = PipePort.OpenPair(tag + "a", options);
        var (g1, s1) = PipePort.OpenPair(tag + "b", options);
        using var sw = new Netloom.Switching.Switch(new LearningTable(), 256);
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

            var tx = g0.Tx;
            var rx = g1.Rx;
            long received = 0, warm = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 5;
            long start = 0, end = 0;
            while (true)
            {
                long now = Stopwatch.GetTimestamp();
                if (start == 0 && now >= warm) { start = now; received = 0; end = start + (long)(d.TotalSeconds * Stopwatch.Frequency); }
                if (start != 0 && now >= end) break;
                int n = Math.Min(tx.Space, 256);
                uint h = tx.Head;
                for (int i = 0; i < n; i++) { tx[h].Length = (ushort)frame.Length; h = tx.Next(h); }
                tx.Head = h;
                g0.TxSync();
                g1.RxSync();
                received += rx.Space;
                rx.Release(rx.Space);
            }
            double seconds = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
            stop.Cancel();
            forwarder.Join();
            return (received / seconds / 1e6, received * (double)frame.Length * 8 / seconds / 1e9);
        }
        finally
        {
            g0.Dispose();
            g1.Dispose();
        }
    }

    [GeneratedRegex(@"Tx-pps:\s+(\d+)")]
    private static partial Regex TxPps();

    /// <summary>testpmd io forwarding between two net_null ports, as the issue gives it; the last stats print is used.</summary>
    private static (double Total, double PerPort)? TestPmd(Duration d, string mode)
    {
        string? exe = new[] { "/usr/bin/dpdk-testpmd", "/usr/local/bin/dpdk-testpmd" }.FirstOrDefault(File.Exists);
        if (exe is null) return null;
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in $"-l 0-1 --no-huge -m 1024 --no-pci --vdev=net_null0 --vdev=net_null1 -- --forward-mode={mode} --total-num-mbufs=16384 -a --stats-period 1".Split(' '))
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        Thread.Sleep(TimeSpan.FromSeconds(d.TotalSeconds + 3)); // start-up takes a second or two; stats print every second
        using (var kill = Process.Start("kill", ["-INT", p.Id.ToString()])) kill!.WaitForExit();
        if (!p.WaitForExit(10_000)) p.Kill();
        var rates = TxPps().Matches(output.Result).Select(m => double.Parse(m.Groups[1].Value)).ToList();
        // Each stats print lists port 0 then port 1. The first print is start-up and the last
        // may be taken while stopping, so report the best whole second.
        double best = 0;
        for (int i = 0; i + 1 < rates.Count; i += 2) best = Math.Max(best, rates[i] + rates[i + 1]);
        return best > 0 ? (best / 1e6, best / 2e6) : null;
    }
}
