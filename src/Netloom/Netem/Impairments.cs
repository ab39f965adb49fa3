using Netloom.Time;

namespace Netloom.Netem;

/// <summary>How a link's delay varies around its mean (netem's distributions).</summary>
public enum DelayDistribution
{
    /// <summary>Uniform in [delay − jitter, delay + jitter] (netem's default).</summary>
    Uniform,
    /// <summary>Normal with mean delay and standard deviation jitter.</summary>
    Normal,
    /// <summary>Pareto (shape 3, a long right tail), shifted and scaled to mean delay and standard deviation jitter.</summary>
    Pareto,
}

/// <summary>
/// Gilbert-Elliott loss (netem's gemodel): a Good and a Bad state; each frame first moves between
/// them (Good→Bad with <see cref="P"/>, Bad→Good with <see cref="R"/>), then is lost with the
/// state's loss probability. Losses come in bursts of mean length 1/R in the Bad state.
/// </summary>
public readonly record struct GilbertElliott(double P, double R, double LossInBad = 1.0, double LossInGood = 0.0)
{
    /// <summary>The long-run loss rate: the share of time in Bad times its loss, plus Good's.</summary>
    public double MeanLoss => P + R == 0 ? LossInGood : (P * LossInBad + R * LossInGood) / (P + R);
}

/// <summary>
/// What one direction of a medium does to frames, netem's set: delay with jitter and a distribution,
/// random or Gilbert-Elliott loss, duplication, corruption, reordering, a rate limit with a queue
/// limit and per-frame overhead, and an MTU. Probabilities are 0..1. As in netem, jitter reorders
/// frames when there is no rate limit; with one, frames keep their order.
/// The one model for both users: an emulated link direction (<c>Emulation.LinkDirection</c>) and
/// the fault-injecting device decorator (<c>Stack.Devices.ImpairedDevice</c>) each run a
/// <see cref="NetemEngine"/> over it, so they make the same decisions in the same order.
/// </summary>
public sealed record Impairments
{
    public static readonly Impairments None = new();

    public Duration Delay { get; init; }
    public Duration Jitter { get; init; }
    public DelayDistribution Distribution { get; init; }
    /// <summary>Random loss probability (ignored when <see cref="GilbertElliott"/> is set).</summary>
    public double Loss { get; init; }
    public GilbertElliott? GilbertElliott { get; init; }
    public double Duplicate { get; init; }
    /// <summary>Probability that one random bit of the frame's IP packet is flipped.</summary>
    public double Corrupt { get; init; }
    /// <summary>Probability that a frame skips the delay and so overtakes those in flight (netem's reorder).</summary>
    public double Reorder { get; init; }
    /// <summary>Bits per second; 0 for no limit.</summary>
    public long RateBitsPerSecond { get; init; }
    /// <summary>Frames allowed to wait for the rate limiter (0: no packet limit).</summary>
    public int QueuePackets { get; init; }
    /// <summary>Bytes allowed to wait for the rate limiter (0: no byte limit).</summary>
    public long QueueBytes { get; init; }
    /// <summary>Bytes added to each frame's size when computing its time on the wire (preamble, FCS, gap: 24 for Ethernet).</summary>
    public int Overhead { get; init; }
    /// <summary>Largest IP packet the link carries; larger frames are dropped. 0: no limit beyond the nodes'.</summary>
    public int Mtu { get; init; }

    /// <summary>Whether frames pass untouched.</summary>
    public bool IsNone => this == None;

    /// <summary>Checks the values make sense; returns a message naming the first that does not.</summary>
    public string? Validate()
    {
        static bool P(double p) => p >= 0 && p <= 1 && !double.IsNaN(p);
        if (Delay < Duration.Zero) return "delay must not be negative";
        if (Jitter < Duration.Zero) return "jitter must not be negative";
        if (!P(Loss)) return "loss must be between 0% and 100%";
        if (!P(Duplicate)) return "duplicate must be between 0% and 100%";
        if (!P(Corrupt)) return "corrupt must be between 0% and 100%";
        if (!P(Reorder)) return "reorder must be between 0% and 100%";
        if (GilbertElliott is { } ge && (!P(ge.P) || !P(ge.R) || !P(ge.LossInBad) || !P(ge.LossInGood)))
            return "Gilbert-Elliott probabilities must be between 0% and 100%";
        if (RateBitsPerSecond < 0) return "rate must not be negative";
        if (QueuePackets < 0 || QueueBytes < 0) return "queue limit must not be negative";
        if ((QueuePackets > 0 || QueueBytes > 0) && RateBitsPerSecond == 0) return "a queue limit needs a rate (frames queue only behind a rate limit)";
        if (Overhead < 0 || Overhead > 1000) return "overhead must be 0 to 1000 bytes";
        if (Mtu != 0 && (Mtu < 68 || Mtu > 65522)) return "mtu must be 68 to 65522";
        return null;
    }

    /// <summary>
    /// Parses a flag's list, "loss=1%,delay=10ms,jitter=2ms,duplicate=0.5%,reorder=5%" (any subset,
    /// any order): the part of the model <c>--impair</c> offers.
    /// </summary>
    public static bool TryParse(string text, out Impairments result, out string? error)
    {
        result = None;
        error = null;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split('=', 2);
            if (kv.Length != 2) { error = $"'{part}': expected key=value"; return false; }
            string key = kv[0], v = kv[1];
            switch (key)
            {
                case "loss" or "duplicate" or "reorder":
                    if (!Quantity.TryPercent(v, out double p)) { error = $"{key}={v}: expected a percentage from 0% to 100%, such as 1.5%"; return false; }
                    result = key switch { "loss" => result with { Loss = p }, "duplicate" => result with { Duplicate = p }, _ => result with { Reorder = p } };
                    break;
                case "delay" or "jitter":
                    if (!Quantity.TryDuration(v, out var d) || d > Duration.FromSeconds(3600)) { error = $"{key}={v}: expected a time such as 10ms, 500us or 1s"; return false; }
                    result = key == "delay" ? result with { Delay = d } : result with { Jitter = d };
                    break;
                default:
                    error = $"unknown impairment '{key}'; use loss, delay, jitter, duplicate, reorder";
                    return false;
            }
        }
        if (result.Jitter > result.Delay && result.Jitter > Duration.Zero && result.Delay == Duration.Zero)
        {
            error = "jitter needs a delay at least as large (jitter moves frames around the delay)";
            return false;
        }
        return true;
    }
}
