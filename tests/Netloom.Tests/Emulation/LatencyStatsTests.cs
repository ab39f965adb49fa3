using Netloom.Emulation.Apps;

namespace Netloom.Tests.Emulation;

public class LatencyStatsTests
{
    [Fact]
    public void Percentiles_are_within_a_bucket_of_the_exact_ones()
    {
        var rng = new Random(7);
        var stats = new LatencyStats();
        var all = new long[300_000];
        for (int i = 0; i < all.Length; i++)
        {
            // Spread over six powers of ten: 100 ns to 100 ms, log-uniform.
            all[i] = (long)Math.Pow(10, 2 + 6 * rng.NextDouble());
            stats.Add(all[i]);
        }
        Array.Sort(all);
        foreach (double q in new[] { 0.01, 0.1, 0.5, 0.9, 0.99, 0.999 })
        {
            double exact = all[(int)(q * all.Length)];
            double got = stats.Percentile(q);
            Assert.True(Math.Abs(got - exact) <= exact / 128 + 1, $"p{q * 100}: {got} against {exact}");
        }
        Assert.Equal(all.Average(), stats.Mean, 1e-6 * all.Average());
        var s = stats.Summary()!;
        Assert.Equal(all[0] / 1e3, s.MinUs);
        Assert.Equal(all[^1] / 1e3, s.MaxUs);
    }

    [Fact]
    public void A_fixed_delay_gives_exact_percentiles()
    {
        var stats = new LatencyStats();
        for (int i = 0; i < 1000; i++) stats.Add(4_000_000);
        stats.Add(9_123_457);
        Assert.Equal(4000, stats.Summary()!.P50Us);
        Assert.Equal(4000, stats.Summary()!.P99Us);
        Assert.Equal(9123.457, stats.Summary()!.MaxUs);
    }

    [Fact]
    public void Memory_stops_growing_once_the_range_is_seen()
    {
        var stats = new LatencyStats();
        for (int i = 0; i < 10_000; i++) stats.Add(1_000 + i * 1_000L);
        AddCycles(stats, 100_000); // warm-up: the runtime's own first-call work on this thread (tiering, once 1,968 bytes) happens here
        long before = GC.GetAllocatedBytesForCurrentThread();
        AddCycles(stats, 1_000_000);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(1_110_000, stats.Count);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void AddCycles(LatencyStats stats, int n)
    {
        for (int i = 0; i < n; i++) stats.Add(1_000 + (i % 10_000) * 1_000L);
    }

    [Fact]
    public void Negative_and_huge_samples_are_kept_in_range()
    {
        var stats = new LatencyStats();
        stats.Add(-5);
        stats.Add(long.MaxValue);
        Assert.Equal(0, stats.Percentile(0));
        Assert.Equal(long.MaxValue, stats.Percentile(0.99), 1e-6 * long.MaxValue);
    }
}
