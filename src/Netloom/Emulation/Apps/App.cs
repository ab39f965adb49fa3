using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Emulation.Apps;

/// <summary>
/// Traffic running on a host, driven by the host's polls in (virtual or real) time: it may do work
/// at every poll and says when it next needs one through <see cref="WakeAt"/>. Apps use the stack's
/// non-blocking sockets, so they allocate nothing per packet.
/// </summary>
internal abstract class App
{
    protected App(string name, HostNode host)
    {
        Name = name;
        Host = host;
    }

    public string Name { get; }
    public HostNode Host { get; }
    public abstract string Kind { get; }
    public bool Running { get; private set; }
    /// <summary>Why the app stopped early (refused, reset, timed out, host crashed), or null.</summary>
    public string? Error { get; protected set; }
    /// <summary>When the app next needs a poll even if no frame arrives (nanoseconds; MaxValue for never).</summary>
    public long WakeAt { get; protected set; } = long.MaxValue;
    protected Instant StartedAt { get; private set; }

    internal void Begin(Instant now)
    {
        if (Running || !Host.IsUp) return;
        Running = true;
        StartedAt = now;
        OnStart(now);
        Host.WakeAtTime(now.Nanoseconds);
    }

    protected void Finish(string? error = null)
    {
        Error ??= error;
        Running = false;
        WakeAt = long.MaxValue;
    }

    protected abstract void OnStart(Instant now);

    /// <summary>Does what can be done now; true when something moved (the host polls again).</summary>
    internal abstract bool Poll(Instant now);

    /// <summary>The host crashed: its sockets are gone.</summary>
    internal virtual void HostCrashed()
    {
        if (Running) Finish("host crashed");
    }

    /// <summary>The host came back with a fresh stack. Servers listen again; clients stay finished.</summary>
    internal virtual void HostRestarted(Instant now) { }

    /// <summary>What the app measured, for the summary table and the JSON report.</summary>
    public abstract AppReport Report(Instant now);

    protected static string Describe(Netloom.Stack.TcpError e) => e switch
    {
        Netloom.Stack.TcpError.None => "closed",
        _ => e.ToString().ToLowerInvariant(),
    };
}

/// <summary>One app's figures. Fields an app does not measure stay null.</summary>
public sealed record AppReport
{
    public required string Name { get; init; }
    public required string Kind { get; init; }
    public required string Host { get; init; }
    public string? Target { get; init; }
    public long? Bytes { get; init; }
    public double? ThroughputBitsPerSecond { get; init; }
    public long? Sent { get; init; }
    public long? Received { get; init; }
    public double? Loss { get; init; }
    public long? Duplicates { get; init; }
    public long? Reordered { get; init; }
    public long? Retransmissions { get; init; }
    public long? Timeouts { get; init; }
    public long? Connections { get; init; }
    public LatencySummary? Latency { get; init; }
    public bool Completed { get; init; }
    public string? Error { get; init; }
}

/// <summary>Latency percentiles in microseconds.</summary>
public sealed record LatencySummary(long Count, double MinUs, double MeanUs, double P50Us, double P90Us, double P99Us, double MaxUs, double StdDevUs);

/// <summary>
/// Latency samples in a log-linear histogram (HdrHistogram's shape): exact count, mean, standard
/// deviation, minimum and maximum; percentiles from buckets 1/128 of their value wide, each reported
/// as the mean of the samples it holds, so a percentile is within 0.8% of the true one and exact
/// when its bucket holds one value (a fixed delay). Memory is bounded however long the run: one
/// bucket array per power of two actually seen, allocated the first time; none per sample after that.
/// </summary>
internal sealed class LatencyStats
{
    private const int SubBuckets = 128; // per power of two from 256 ns up; below 256 ns every nanosecond has a bucket

    private struct Bucket
    {
        public long Count;
        public double Sum;
    }

    private readonly Bucket[]?[] _octaves = new Bucket[]?[56];
    private double _sum, _sumSq;
    private long _min = long.MaxValue, _max = long.MinValue;

    public long Count { get; private set; }

    public void Add(long nanoseconds)
    {
        long v = Math.Max(0, nanoseconds);
        Count++;
        _sum += v;
        _sumSq += (double)v * v;
        _min = Math.Min(_min, v);
        _max = Math.Max(_max, v);
        int octave, bucket;
        if (v < 2 * SubBuckets) { octave = 0; bucket = (int)v; }
        else
        {
            int e = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)v); // 8 and up
            octave = e - 7;
            bucket = (int)(v >> (e - 7)) - SubBuckets;
        }
        ref Bucket b = ref (_octaves[octave] ??= new Bucket[octave == 0 ? 2 * SubBuckets : SubBuckets])[bucket];
        b.Count++;
        b.Sum += v;
    }

    public double Mean => Count == 0 ? 0 : _sum / Count;
    public double StdDev => Count < 2 ? 0 : Math.Sqrt(Math.Max(0, (_sumSq - _sum * _sum / Count) / (Count - 1)));

    /// <summary>The sample of rank ⌊q·Count⌋ in sorted order, as its bucket's mean (nanoseconds).</summary>
    public double Percentile(double q)
    {
        if (Count == 0) return 0;
        long rank = Math.Min(Count - 1, (long)(q * Count)), seen = 0;
        foreach (var octave in _octaves)
        {
            if (octave is null) continue;
            foreach (var b in octave)
            {
                seen += b.Count;
                if (seen > rank) return Math.Clamp(b.Sum / b.Count, _min, _max);
            }
        }
        return _max;
    }

    public LatencySummary? Summary() => Count == 0 ? null
        : new LatencySummary(Count, _min / 1e3, Mean / 1e3, Percentile(0.5) / 1e3, Percentile(0.9) / 1e3, Percentile(0.99) / 1e3, _max / 1e3, StdDev / 1e3);
}

/// <summary>Where a client app sends: an address and port.</summary>
internal readonly record struct Endpoint(Ipv4Address Address, ushort Port)
{
    public override string ToString() => $"{Address}:{Port}";
}
