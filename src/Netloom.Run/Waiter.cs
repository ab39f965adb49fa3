using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>
/// One thread's way to sleep until a Netloom socket changes: an eventfd that the stack writes
/// when the thread is registered as a sleeper. The thread registers under the stack lock after
/// finding nothing ready, so an event that comes between the check and the sleep still wakes it.
/// Waits that also involve kernel descriptors put this eventfd into the same ppoll.
/// </summary>
internal sealed unsafe class Waiter
{
    [ThreadStatic] private static Waiter? _current;
    public readonly int Fd;
    /// <summary>True while registered with the engine (under the stack lock).</summary>
    public bool Registered;
    /// <summary>Set by a wake-up; a busy-polling thread watches it instead of the eventfd.</summary>
    public bool Signalled;

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

    public void Wake()
    {
        Volatile.Write(ref Signalled, true);
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
