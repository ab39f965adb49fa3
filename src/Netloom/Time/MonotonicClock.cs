using System.Diagnostics;

namespace Netloom.Time;

/// <summary>
/// Real time as the stack sees it: an origin plus the monotonic stopwatch since construction.
/// Hosts and benchmarks turn the wall clock into <see cref="Instant"/>s through this; the stack
/// itself never reads a clock.
/// </summary>
internal sealed class MonotonicClock(Instant origin)
{
    private readonly long _start = Stopwatch.GetTimestamp();

    /// <summary>Starting at the current Unix time.</summary>
    public MonotonicClock() : this(new Instant((DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100)) { }

    public Instant Now => origin + Duration.FromNanoseconds((long)((Stopwatch.GetTimestamp() - _start) * (1e9 / Stopwatch.Frequency)));
}
