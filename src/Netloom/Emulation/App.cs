using Netloom.Stack;
using Netloom.Time;

namespace Netloom.Emulation;

/// <summary>
/// Traffic running on a host, driven by the host's polls in (virtual or real) time: it may do work
/// at every poll and says when it next needs one through <see cref="WakeAt"/>. Apps use the stack's
/// non-blocking sockets, so they allocate nothing per packet.
/// This base is the contract between a host and its apps, so it lives in the emulator's core; the
/// apps themselves (<c>Emulation.Apps</c>) build on it, and the core never names one of them.
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
        Started = true;
        Error = null;
        StartedAt = now;
        OnStart(now);
        Host.WakeAtTime(now.Nanoseconds);
    }

    /// <summary>Whether the app has begun at least once (an app with a later start time has not).</summary>
    public bool Started { get; private set; }

    /// <summary>Stops a running app now: its sockets are closed at once (TCP with a reset), and it reports "stopped".</summary>
    internal void Stop()
    {
        if (!Running) return;
        OnStop();
        Finish("stopped");
    }

    /// <summary>Whether <see cref="Begin"/> may run it again after it stopped: servers can, clients measured one run.</summary>
    internal virtual bool Restartable => false;

    /// <summary>Closes what the app holds open; called by <see cref="Stop"/>.</summary>
    protected virtual void OnStop() { }

    protected void Finish(string? error = null)
    {
        Error ??= error;
        Running = false;
        WakeAt = long.MaxValue;
    }

    protected abstract void OnStart(Instant now);

    /// <summary>Does what can be done now; true when something moved (the host polls again).</summary>
    internal abstract bool Poll(Instant now);

    /// <summary>The host's stack took an echo reply; an app that sent the request (same identifier) counts it.</summary>
    internal virtual void OnPingReply(in PingReply reply) { }
    internal virtual void OnPingReply6(in PingReply6 reply) { }

    /// <summary>The host crashed: its sockets are gone.</summary>
    internal virtual void HostCrashed()
    {
        if (Running) Finish("host crashed");
    }

    /// <summary>The host came back with a fresh stack. Servers listen again; clients stay finished.</summary>
    internal virtual void HostRestarted(Instant now) { }

    /// <summary>What the app measured, for the summary table and the JSON report.</summary>
    public abstract AppReport Report(Instant now);

    protected static string Describe(TcpError e) => e switch
    {
        TcpError.None => "closed",
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
