using Netloom.Rings;
using Netloom.Stack;
using Netloom.Time;

namespace Netloom.Sockets;

/// <summary>
/// The one owner loop of an interface in real time, behind both <see cref="NetStack"/> (its own
/// thread, the stack lock) and <see cref="HostLoop"/> (a caller's thread and work): poll the
/// stack, run the owner's work, then spin (busy-poll) or sleep on the port until the next frame,
/// timer or delayed frame of a device decorator.
/// </summary>
internal sealed class OwnerLoop
{
    // Threads other than the owner may arm timers (a socket call's retransmission timer) while the
    // owner sleeps on the port, which only a frame wakes: the sleep is capped so such a timer is late
    // by at most this much.
    internal static readonly Duration MaxSleep = Duration.FromMilliseconds(10);

    private readonly Interface _interface;
    private readonly IPort _port;
    private readonly MonotonicClock _clock;
    private readonly Lock? _lock;
    private readonly Func<Instant?>? _deviceDue;
    private readonly Func<long, bool>? _standBack;

    /// <param name="stackLock">Taken around each poll when other threads call into the stack; null when only the owner does.</param>
    /// <param name="deviceDue">When a device decorator next has a frame due (delay lines), if any.</param>
    /// <param name="standBack">Offered each sleep (its longest, in ns): true when it slept elsewhere because other threads take the frames.</param>
    public OwnerLoop(Interface iface, IPort port, MonotonicClock clock, Lock? stackLock = null, Func<Instant?>? deviceDue = null, Func<long, bool>? standBack = null)
    {
        _standBack = standBack;
        _interface = iface;
        _port = port;
        _clock = clock;
        _lock = stackLock;
        _deviceDue = deviceDue;
    }

    /// <summary>Bytes the loop's thread has allocated since <see cref="Run"/> began (flat in steady state).</summary>
    public long AllocatedBytes { get; private set; }

    /// <summary>
    /// Runs until <paramref name="stop"/> answers true; <paramref name="work"/> runs after every poll,
    /// on this thread, with the lock held when there is one. Exceptions go to the caller.
    /// </summary>
    public void Run(Func<bool> stop, WaitMode mode, Action<Instant>? work = null)
    {
        _port.WaitMode = mode;
        long allocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
        while (!stop())
        {
            int moved;
            Instant? next;
            if (_lock is null) moved = Step(work, out next);
            else
            {
                using (_lock.EnterScope()) moved = Step(work, out next);
            }
            AllocatedBytes = GC.GetAllocatedBytesForCurrentThread() - allocatedAtStart;
            if (moved > 0) continue;
            if (mode == WaitMode.BusyPoll) { Thread.SpinWait(10); continue; }
            long waitNs = next is { } n ? Math.Clamp(n.Nanoseconds - _clock.Now.Nanoseconds, 0, MaxSleep.Nanoseconds) : MaxSleep.Nanoseconds;
            if (waitNs <= 0) continue;
            if (_standBack?.Invoke(waitNs) != true) Sleep(Duration.FromNanoseconds(waitNs));
        }
    }

    /// <summary>
    /// Sleeps on the port until frames come. The wait syncs the ring to see them, and other
    /// threads may be reading it under the stack lock meanwhile (netloom run's program threads
    /// poll the stack themselves), so its syncs take the lock too.
    /// </summary>
    private void Sleep(Duration timeout)
    {
        if (_port is PortBase port) port.WaitRx(timeout, _lock);
        else _port.WaitRx(timeout);
    }

    private int Step(Action<Instant>? work, out Instant? next)
    {
        var now = _clock.Now;
        int moved = _interface.Poll(now);
        work?.Invoke(now);
        next = _interface.PollAt();
        if (_deviceDue?.Invoke() is { } d && (next is null || d < next.Value)) next = d;
        return moved;
    }
}
