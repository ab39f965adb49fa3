using Netloom.Rings;
using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>
/// Who takes the frames from the port: the program's threads or the stack's owner thread.
///
/// A program thread with nothing to do sleeps on the port itself when it can
/// (<see cref="SleepOnPort"/>), so the frames wake the thread that will read them. While one does,
/// or while the program's threads called in within the last millisecond, the owner thread stands
/// back (<see cref="StandBack"/>): it runs the timers and sleeps without watching the port. It
/// watches the port again as soon as a program thread sleeps on its eventfd instead (a wait
/// that also covers kernel descriptors, or a second sleeping thread), and when the program has
/// not called in for a millisecond (it computes or sleeps elsewhere), so ACKs and retransmissions
/// never wait for the program. This is Onload's split between the application polling its stack
/// and the interrupt-driven helper that runs only when no application thread does.
///
/// An epoll set with kernel members can still be waited for on the port: the owner thread then
/// watches the epoll descriptor for the sleeper and interrupts its sleep when a kernel member
/// becomes ready.
/// </summary>
internal sealed unsafe partial class Engine
{
    /// <summary>How long the owner thread stands back after a program thread last polled the stack.</summary>
    private const long StandBackNs = 1_000_000;
    /// <summary>Longest single sleep on the port (then the thread looks again).</summary>
    private const long PortSleepCapNs = 1_000_000_000;

    // When a program thread last took frames from the port (stack nanoseconds).
    private long _lastPollNs;
    // 1 while a program thread sleeps on the port (one at a time: the port has one waiting flag),
    // the kernel descriptor that thread also waits for (an epoll set's, or -1), and a count of
    // such sleeps, so the owner knows a new one from one whose descriptor it already reported.
    private int _portSleeper /* the sleeping thread's managed id, or 0 */, _watchFd = -1, _sleepGeneration, _firedGeneration = -1;
    // Program threads sleeping on their eventfds: the owner must watch the port for them.
    private int _eventfdSleepers;
    // The owner thread's side: 1 while it stands back in ppoll, the descriptor it watches there,
    // and the eventfd that ends that sleep early.
    private int _ownerStandingBack, _ownerWatching = -1;
    private readonly int _ownerKick;

    /// <summary>
    /// Before <see cref="Advance"/>'s poll: notes that a program thread is taking frames now.
    /// </summary>
    private void NotePoll(long nowNs) => Volatile.Write(ref _lastPollNs, nowNs);

    /// <summary>
    /// After <see cref="Register"/> and leaving the lock: sleeps on the port itself until frames
    /// come, a wake-up, a kernel descriptor of <paramref name="watchFd"/> (an epoll set, watched
    /// by the owner thread), the deadline or a signal (-EINTR). Returns null when this thread
    /// cannot (a port that cannot be woken, another thread already sleeping on it, a signal mask
    /// to apply), and the caller sleeps on its eventfd.
    /// </summary>
    private long? SleepOnPort(Waiter w, long deadlineNs, void* sigmask, int watchFd)
    {
        if (_wakeablePort is not { } port || sigmask is not null) return null;
        if (watchFd >= 0 && _ownerKick < 0) return null;
        if (Interlocked.CompareExchange(ref _portSleeper, Environment.CurrentManagedThreadId, 0) != 0) return null;
        if (Volatile.Read(ref _portClosing)) { Volatile.Write(ref _portSleeper, 0); return null; } // after the exchange: pairs with ClearPortSleeper
        try
        {
            Volatile.Write(ref _watchFd, watchFd);
            Interlocked.Increment(ref _sleepGeneration);
            // An owner already standing back without this descriptor would not see it become ready.
            if (watchFd >= 0 && Volatile.Read(ref _ownerStandingBack) != 0 && Volatile.Read(ref _ownerWatching) != watchFd) KickOwner();
            if (w.SetMode(Waiter.OnPort)) return 0; // already woken
            long left = deadlineNs == long.MaxValue ? PortSleepCapNs : Math.Clamp(deadlineNs - Clock.NowNs(), 0, PortSleepCapNs);
            if (left == 0) return 0;
            return port.WaitRxOrInterrupt(left, Lock) == PortBase.WaitOutcome.Signal ? -Errno.EINTR : 0;
        }
        finally
        {
            w.SetMode(Waiter.OnEventFd);
            Volatile.Write(ref _watchFd, -1);
            Volatile.Write(ref _portSleeper, 0);
        }
    }

    private bool _portClosing;

    /// <summary>
    /// Before the port is released at exit: no program thread may sleep on it any longer (its wait
    /// syncs the ring, which would then be gone). New port sleeps are refused, and one under way is
    /// interrupted and waited for (its thread goes on sleeping on its eventfd).
    /// </summary>
    private void ClearPortSleeper()
    {
        if (_wakeablePort is not { } port) return;
        Volatile.Write(ref _portClosing, true);
        Interlocked.MemoryBarrier(); // the flag before the look: a sleeper exchanges, then reads the flag
        // Not when the sleeper is this very thread (a signal handler that called exit while its
        // thread slept on the port): that sleep never resumes, and waiting for it would only stall.
        int me = Environment.CurrentManagedThreadId;
        for (int i = 0; i < 2000 && Volatile.Read(ref _portSleeper) is not 0 and var sleeper && sleeper != me; i++)
        {
            port.InterruptRxWait();
            Thread.Sleep(1);
        }
    }

    /// <summary>A program thread is about to sleep on its eventfd: the owner must watch the port.</summary>
    private void BeginEventfdSleep()
    {
        Interlocked.Increment(ref _eventfdSleepers);
        if (Volatile.Read(ref _ownerStandingBack) != 0) KickOwner();
    }

    private void EndEventfdSleep() => Interlocked.Decrement(ref _eventfdSleepers);

    private void KickOwner()
    {
        ulong one = 1;
        Libc.Write(_ownerKick, &one, 8);
    }

    /// <summary>
    /// The owner thread's question before it sleeps on the port for up to <paramref name="maxNs"/>:
    /// stand back instead? When program threads take the frames, it sleeps here (on its kick
    /// eventfd, and on the port sleeper's epoll descriptor if it has one) and answers true: until
    /// the next timer while a program thread sleeps on the port, for at most a millisecond while
    /// the program only polled lately.
    /// </summary>
    private bool StandBack(long maxNs)
    {
        if (_wakeablePort is not { } port || _ownerKick < 0) return false;
        if (!ShouldStandBack()) return false;
        int generation = Volatile.Read(ref _sleepGeneration);
        int watch = Volatile.Read(ref _portSleeper) != 0 && generation != _firedGeneration ? Volatile.Read(ref _watchFd) : -1;
        Volatile.Write(ref _ownerWatching, watch);
        Interlocked.Exchange(ref _ownerStandingBack, 1); // full fence: pairs with the sleepers' checks
        try
        {
            // Decide again now that sleepers can see the flag: one that began before it did not kick.
            if (!ShouldStandBack()) return false;
            if (Volatile.Read(ref _portSleeper) != 0 && Volatile.Read(ref _watchFd) != watch && Volatile.Read(ref _sleepGeneration) != _firedGeneration)
                return true; // a new sleeper's descriptor: come back at once to watch it
            PollFd* p = stackalloc PollFd[2];
            p[0] = new PollFd { Fd = _ownerKick, Events = Abi.POLLIN };
            int n = 1;
            if (watch >= 0) p[n++] = new PollFd { Fd = watch, Events = Abi.POLLIN };
            // Beside a port sleeper, until the next timer; otherwise a millisecond, then see whether
            // the program still polls.
            long sleepNs = Volatile.Read(ref _portSleeper) != 0 ? maxNs : Math.Min(maxNs, StandBackNs);
            var ts = TimeSpec.FromNanoseconds(Math.Max(0, sleepNs));
            Sys.PPoll(p, (ulong)n, &ts, null);
            if (p[0].Revents != 0)
            {
                ulong value;
                Libc.Read(_ownerKick, &value, 8);
            }
            if (n > 1 && p[1].Revents != 0)
            {
                // A kernel member of the sleeper's epoll set is ready: end its sleep, once.
                _firedGeneration = generation;
                port.InterruptRxWait();
            }
            return true;
        }
        finally
        {
            Volatile.Write(ref _ownerStandingBack, 0);
            Volatile.Write(ref _ownerWatching, -1);
        }
    }

    /// <summary>A program thread sleeps on the port, or polled within the last millisecond and none sleeps on an eventfd.</summary>
    private bool ShouldStandBack() =>
        Volatile.Read(ref _portSleeper) != 0 ||
        (Volatile.Read(ref _eventfdSleepers) == 0 && Stack.Now.Nanoseconds - Volatile.Read(ref _lastPollNs) < StandBackNs);
}
