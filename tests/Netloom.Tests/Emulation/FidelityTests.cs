using Netloom.Emulation;
using Netloom.Netem;
using Netloom.Time;

namespace Netloom.Tests.Emulation;

/// <summary>
/// The link reproduces what it is configured to do, within 2% over long runs (the bar).
/// Each test sends hundreds of thousands to millions of frames through one link; sample sizes are
/// chosen so that 2% is at least about three standard errors, and the seed is fixed, so a pass is
/// repeatable and a fail means the model is off rather than the dice.
/// </summary>
public class FidelityTests
{
    private static readonly Duration Ms = Duration.FromMilliseconds(1);

    private static void Within(double expected, double actual, double tolerance = 0.02, string what = "")
    {
        double rel = Math.Abs(actual - expected) / expected;
        Assert.True(rel <= tolerance, $"{what}: expected {expected:G6}, got {actual:G6} ({rel:P2} off, allowed {tolerance:P0})");
    }

    private static (double Mean, double Sd, double Median) Stats(double[] x)
    {
        double mean = x.Average();
        double sd = Math.Sqrt(x.Sum(v => (v - mean) * (v - mean)) / (x.Length - 1));
        var sorted = (double[])x.Clone();
        Array.Sort(sorted);
        return (mean, sd, sorted[sorted.Length / 2]);
    }

    [Fact]
    public void Uniform_jitter_has_the_configured_mean_and_spread()
    {
        var p = new LinkProbe(new Impairments { Delay = Ms * 20, Jitter = Ms * 4 }, 300_000, Duration.FromMicroseconds(100));
        p.Run();
        var (mean, sd, _) = Stats(p.Delays());
        Within(20e6, mean, what: "mean delay");
        Within(4e6 / Math.Sqrt(3), sd, what: "standard deviation (uniform: jitter/sqrt 3)");
        Assert.True(p.Delays().Min() >= 16e6 && p.Delays().Max() <= 24e6);
    }

    [Fact]
    public void Normal_jitter_has_the_configured_mean_and_standard_deviation()
    {
        var p = new LinkProbe(new Impairments { Delay = Ms * 20, Jitter = Ms * 2, Distribution = DelayDistribution.Normal }, 300_000, Duration.FromMicroseconds(100));
        p.Run();
        var (mean, sd, median) = Stats(p.Delays());
        Within(20e6, mean, what: "mean delay");
        Within(2e6, sd, what: "standard deviation");
        Within(20e6, median, what: "median");
    }

    [Fact]
    public void Pareto_jitter_has_the_configured_mean_and_a_long_right_tail()
    {
        var p = new LinkProbe(new Impairments { Delay = Ms * 20, Jitter = Ms * 2, Distribution = DelayDistribution.Pareto }, 400_000, Duration.FromMicroseconds(100));
        p.Run();
        var d = p.Delays();
        var (mean, _, median) = Stats(d);
        Within(20e6, mean, what: "mean delay");
        // Pareto(shape 3) standardised: the median sits 0.277 standard deviations below the mean.
        Within(20e6 - 0.2774 * 2e6, median, what: "median");
        // Never below mean - 0.577 sd; a tail well past mean + 3 sd.
        Assert.True(d.Min() >= 20e6 - 0.578 * 2e6);
        Assert.True(d.Max() > 20e6 + 3 * 2e6);
    }

    [Fact]
    public void Random_loss_matches_the_configured_rate()
    {
        var p = new LinkProbe(new Impairments { Loss = 0.10 }, 500_000, Duration.FromMicroseconds(10));
        p.Run();
        double lost = 1 - p.Dst.Arrivals.Count / 500_000.0;
        Within(0.10, lost, what: "loss rate");
        Assert.Equal(500_000 - p.Dst.Arrivals.Count, p.Link.AtoB.Counters.Drops(LinkDrop.Loss));
    }

    [Fact]
    public void Gilbert_Elliott_loss_matches_its_mean_rate_and_burst_length()
    {
        var ge = new GilbertElliott(P: 0.01, R: 0.20);
        const int n = 3_000_000;
        var p = new LinkProbe(new Impairments { GilbertElliott = ge }, n, Duration.FromMicroseconds(1));
        p.Run();
        var got = new bool[n];
        foreach (var a in p.Dst.Arrivals) got[a.Seq] = true;
        long lost = 0, bursts = 0;
        for (int i = 0; i < n; i++)
        {
            if (got[i]) continue;
            lost++;
            if (i == 0 || got[i - 1]) bursts++;
        }
        Within(ge.MeanLoss, lost / (double)n, what: "mean loss (p/(p+r))");
        Within(1 / ge.R, lost / (double)bursts, what: "mean burst length (1/r)");
    }

    [Fact]
    public void Duplication_matches_the_configured_rate()
    {
        var p = new LinkProbe(new Impairments { Duplicate = 0.05 }, 500_000, Duration.FromMicroseconds(10));
        p.Run();
        Within(0.05, (p.Dst.Arrivals.Count - 500_000) / 500_000.0, what: "duplicate rate");
    }

    [Fact]
    public void Corruption_flips_one_bit_in_the_configured_share_of_frames()
    {
        var p = new LinkProbe(new Impairments { Corrupt = 0.05 }, 500_000, Duration.FromMicroseconds(10));
        p.Run();
        Within(0.05, p.Dst.Arrivals.Count(a => !a.Intact) / 500_000.0, what: "corrupt rate");
    }

    [Fact]
    public void Reordering_sends_the_configured_share_past_the_delay()
    {
        var p = new LinkProbe(new Impairments { Delay = Ms * 10, Reorder = 0.05 }, 500_000, Duration.FromMicroseconds(100));
        p.Run();
        var arrivals = p.Dst.Arrivals;
        Within(0.05, arrivals.Count(a => a.At == a.SentAt) / 500_000.0, what: "share sent without delay");
        long highest = -1, late = 0;
        foreach (var a in arrivals) { if (a.Seq < highest) late++; else highest = a.Seq; }
        Assert.True(late > 0, "no frame arrived after a later one");
    }

    [Fact]
    public void A_rate_limit_delivers_the_configured_rate_and_drops_past_the_queue()
    {
        // 1000-byte frames offered at 16 Mbit/s into 8 Mbit/s with 24 bytes of overhead and a 50-frame queue.
        var p = new LinkProbe(new Impairments { RateBitsPerSecond = 8_000_000, Overhead = 24, QueuePackets = 50 }, 200_000, Duration.FromMicroseconds(500), size: 1000);
        p.Run();
        var a = p.Dst.Arrivals;
        double seconds = (a[^1].At - a[0].At) / 1e9;
        double wireRate = (a.Count - 1) * (1000 + 24) * 8 / seconds;
        Within(8e6, wireRate, 0.001, "delivered rate on the wire");
        Within(1 - 500.0 / 1024, 1 - a.Count / 200_000.0, 0.02, "share dropped at the queue (offered one frame per 500 us, one leaves per 1024 us)");
        Assert.True(p.Link.AtoB.Counters.Drops(LinkDrop.Queue) > 0);
        // The queue never holds more than 50 frames: no frame waits longer than 50 frame times.
        double frameTime = (1000 + 24) * 8 / 8e6 * 1e9;
        Assert.True(a.Max(x => x.At - x.SentAt) <= 51 * frameTime, "a frame waited longer than the queue allows");
    }

    [Fact]
    public void Jitter_reorders_without_a_rate_and_keeps_order_with_one()
    {
        static long Late(LinkProbe p)
        {
            long highest = -1, late = 0;
            foreach (var a in p.Dst.Arrivals) { if (a.Seq < highest) late++; else highest = a.Seq; }
            return late;
        }
        var free = new LinkProbe(new Impairments { Delay = Ms * 10, Jitter = Ms * 2 }, 20_000, Duration.FromMicroseconds(100));
        free.Run();
        Assert.True(Late(free) > 1000);
        var rated = new LinkProbe(new Impairments { Delay = Ms * 10, Jitter = Ms * 2, RateBitsPerSecond = 100_000_000 }, 20_000, Duration.FromMicroseconds(100));
        rated.Run();
        Assert.Equal(0, Late(rated));
        Assert.Equal(20_000, rated.Dst.Arrivals.Count);
    }

    [Fact]
    public void A_byte_limited_queue_holds_at_most_its_bytes()
    {
        var p = new LinkProbe(new Impairments { RateBitsPerSecond = 8_000_000, QueueBytes = 10_000 }, 20_000, Duration.FromMicroseconds(500), size: 1000);
        p.Run();
        double frameTime = 1000 * 8 / 8e6 * 1e9;
        Assert.True(p.Dst.Arrivals.Max(x => x.At - x.SentAt) <= 11 * frameTime);
        Assert.True(p.Link.AtoB.Counters.Drops(LinkDrop.Queue) > 0);
    }

    [Fact]
    public void Frames_over_the_link_mtu_are_dropped_and_counted()
    {
        var p = new LinkProbe(new Impairments { Mtu = 500 }, 10, Ms, size: 600);
        p.Run();
        Assert.Empty(p.Dst.Arrivals);
        Assert.Equal(10, p.Link.AtoB.Counters.Drops(LinkDrop.Mtu));
    }
}
