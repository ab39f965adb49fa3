using System.Globalization;
using Netloom.Time;

namespace Netloom.Stack.Devices;

/// <summary>
/// netem's basic impairments for one direction: random loss, duplication, delay with uniform
/// jitter, and reordering (that share of frames skips the delay, so it overtakes the others).
/// </summary>
internal sealed record Impairment
{
    public double Loss { get; init; }
    public double Duplicate { get; init; }
    public double Reorder { get; init; }
    public Duration Delay { get; init; }
    public Duration Jitter { get; init; }

    public bool IsNone => Loss == 0 && Duplicate == 0 && Reorder == 0 && Delay == Duration.Zero && Jitter == Duration.Zero;

    /// <summary>Parses "loss=1%,delay=10ms,jitter=2ms,duplicate=0.5%,reorder=5%" (any subset, any order).</summary>
    public static bool TryParse(string text, out Impairment result, out string? error)
    {
        result = new Impairment();
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
