using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>
/// One thread's way to sleep until a Netloom socket changes. The thread registers under the stack
/// lock after finding nothing ready, so an event that comes between the check and the sleep still
/// wakes it. It spins (busy polling: a wake-up only sets a flag), sleeps on the port itself
/// (frames wake it directly, and a wake-up interrupts the port's wait) or sleeps on its eventfd,
/// which a wake-up writes; waits that also involve kernel descriptors put the eventfd into the
/// same ppoll.
/// </summary>
internal sealed unsafe class Waiter
{
    [ThreadStatic] private static Waiter? _current;
    public readonly int Fd;
    /// <summary>True while registered with the engine (under the stack lock).</summary>
    public bool Registered;
    /// <summary>
    /// What the registered wait is for: a socket (recv, send, accept, connect), an epoll set, or
    /// null for anything (poll and select over several sockets). Only events that concern it
    /// wake the thread (<see cref="Engine.WakeSleepers"/>).
    /// </summary>
    public object? Interest;
    // How the thread waits now, which decides how a wake-up reaches it.
    public const int OnEventFd = 0, OnPort = 1, Spinning = 2;
    private int _signalled, _mode;

    /// <summary>Set by a wake-up; a busy-polling thread watches it instead of the eventfd.</summary>
    public bool Signalled => Volatile.Read(ref _signalled) != 0;

    /// <summary>Cleared when the thread registers, before it looks at its sockets a last time.</summary>
    public void Reset() => Volatile.Write(ref _signalled, 0);

    /// <summary>
    /// Says how the thread waits from now on (<see cref="OnEventFd"/>, <see cref="OnPort"/>,
    /// <see cref="Spinning"/>); true when a wake-up already came (so it should not wait). The full
    /// fences pair with <see cref="Wake"/>'s: either the waker sees the new mode, or the thread
    /// sees the wake-up.
    /// </summary>
    public bool SetMode(int mode)
    {
        Interlocked.Exchange(ref _mode, mode);
        return Volatile.Read(ref _signalled) != 0;
    }

    private Waiter(int fd) => Fd = fd;

    /// <summary>This thread's waiter, made on its first blocking call (null if no eventfd could be had).</summary>
    public static Waiter? Current
    {
        get
        {
            if (_current is { } w) return w;
            int fd = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
            return fd < 0 ? null : _current = new Waiter(fd);
        }
    }

    ~Waiter() => Libc.Close(Fd);

    /// <summary>
    /// Wakes the thread: through the port's wait when it sleeps there, not at all beyond the flag
    /// when it spins, else through its eventfd.
    /// </summary>
    public void Wake(Netloom.Rings.PortBase? port)
    {
        Interlocked.Exchange(ref _signalled, 1);
        switch (Volatile.Read(ref _mode))
        {
            case Spinning: return;
            case OnPort when port is not null: port.InterruptRxWait(); return;
        }
        ulong one = 1;
        Libc.Write(Fd, &one, 8);
    }

    /// <summary>Empties the counter after a wake-up.</summary>
    public void Drain()
    {
        ulong value;
        Libc.Read(Fd, &value, 8);
    }

    /// <summary>
    /// Sleeps until woken, the deadline (monotonic ns, long.MaxValue for none) or a signal.
    /// Returns 0, or -EINTR when a signal arrived.
    /// </summary>
    public long Sleep(long deadlineNs, void* sigmask)
    {
        PollFd p = new() { Fd = Fd, Events = Abi.POLLIN };
        long left = deadlineNs == long.MaxValue ? -1 : Math.Max(0, deadlineNs - Clock.NowNs());
        TimeSpec ts = TimeSpec.FromNanoseconds(left < 0 ? 0 : left);
        int r = Sys.PPoll(&p, 1, left < 0 ? null : &ts, sigmask);
        if (r < 0 && Libc.Errno == Errno.EINTR) return -Errno.EINTR;
        if (r > 0) Drain();
        return 0;
    }
}

/// <summary>The monotonic clock the engine's deadlines use.</summary>
internal static class Clock
{
    public static long NowNs() => (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (1_000_000_000.0 / System.Diagnostics.Stopwatch.Frequency));
}
