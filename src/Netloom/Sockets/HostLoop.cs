using Netloom.Rings;
using Netloom.Stack;
using Netloom.Time;

namespace Netloom.Sockets;

/// <summary>
/// The owner loop of one interface in real time, on the caller's thread: polls, runs the work the
/// host asked for, and then either spins (busy-poll) or sleeps on the port until the next frame or
/// timer. The same loop as <see cref="NetStack"/>'s owner thread (<see cref="OwnerLoop"/>), without the lock.
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
    public void Run(CancellationToken stop, WaitMode mode, Action<Instant>? work = null, Func<Instant?>? deviceDue = null) =>
        new OwnerLoop(_interface, _port, _clock, stackLock: null, deviceDue).Run(() => stop.IsCancellationRequested, mode, work);
}
