using Netloom.Rings;
using Netloom.Stack;
using Netloom.Time;

namespace Netloom.Sockets;

/// <summary>
/// The owner loop of one interface in real time: polls, runs the work the host asked for, and
/// then either spins (busy-poll) or sleeps on the port until the next frame or timer.
/// </summary>
internal sealed class HostLoop
{
    private readonly Interface _interface;
    private readonly IPort _port;
    private readonly MonotonicClock _clock = new();

    public HostLoop(Interface iface, IPort port)
    {
        _interface = iface;
        _port = port;
    }

    /// <summary>Wall-clock time as the stack sees it (monotonic from start).</summary>
    public Instant Now => _clock.Now;

    /// <summary>Runs until <paramref name="stop"/>; <paramref name="work"/> runs after every poll, on this thread.</summary>
    /// <param name="deviceDue">When a device decorator next has a frame due (delay lines), if any.</param>
    public void Run(CancellationToken stop, WaitMode mode, Action<Instant>? work = null, Func<Instant?>? deviceDue = null)
    {
        _port.WaitMode = mode;
        while (!stop.IsCancellationRequested)
        {
            var now = Now;
            int moved = _interface.Poll(now);
            work?.Invoke(now);
            if (moved > 0) continue;
            if (mode == WaitMode.BusyPoll) { Thread.SpinWait(10); continue; }
            var next = _interface.PollAt();
            if (deviceDue?.Invoke() is { } d && (next is null || d < next.Value)) next = d;
            long waitNs = next is { } n ? Math.Clamp(n.Nanoseconds - Now.Nanoseconds, 0, 50_000_000) : 50_000_000;
            if (waitNs > 0) _port.WaitRx(Duration.FromNanoseconds(waitNs));
        }
    }
}
