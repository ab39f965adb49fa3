using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Emulation.Apps;

/// <summary>
/// Traffic running on a host, driven by the host's polls in (virtual or real) time: it may do work
/// at every poll and says when it next needs one through <see cref="WakeAt"/>. Apps use the stack's
/// non-blocking sockets, so they allocate nothing per packet.
/// </summary>
public abstract class App
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
/// Latency samples: exact count, mean, standard deviation, minimum and maximum, and percentiles
/// from the first <see cref="Capacity"/> samples plus a seeded reservoir after that (bounded memory,
/// the same figures for the same run).
/// </summary>
public sealed class LatencyStats
{
    public const int Capacity = 200_000;
    private readonly List<long> _samples = [];
    private readonly Random _reservoir = new(12345);
    private double _sum, _sumSq;
    private long _min = long.MaxValue, _max = long.MinValue;

    public long Count { get; private set; }

    public void Add(long nanoseconds)
    {
        Count++;
        _sum += nanoseconds;
        _sumSq += (double)nanoseconds * nanoseconds;
        _min = Math.Min(_min, nanoseconds);
        _max = Math.Max(_max, nanoseconds);
        if (_samples.Count < Capacity) _samples.Add(nanoseconds);
        else
        {
            long j = _reservoir.NextInt64(Count);
            if (j < Capacity) _samples[(int)j] = nanoseconds;
        }
    }

    public double Mean => Count == 0 ? 0 : _sum / Count;
    public double StdDev => Count < 2 ? 0 : Math.Sqrt(Math.Max(0, (_sumSq - _sum * _sum / Count) / (Count - 1)));

    public LatencySummary? Summary()
    {
        if (Count == 0) return null;
        var sorted = _samples.ToArray();
        Array.Sort(sorted);
        double P(double q) => sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))] / 1e3;
        return new LatencySummary(Count, _min / 1e3, Mean / 1e3, P(0.5), P(0.9), P(0.99), _max / 1e3, StdDev / 1e3);
    }
}

/// <summary>Where a client app sends: an address and port.</summary>
public readonly record struct Endpoint(Ipv4Address Address, ushort Port)
{
    public override string ToString() => $"{Address}:{Port}";
}
