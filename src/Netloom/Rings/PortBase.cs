using System.Diagnostics;
using Netloom.Interop;
using Netloom.Time;

namespace Netloom.Rings;

/// <summary>
/// What every ring-backed port shares: the waits. A wait syncs, and if the ring is not ready
/// either spins (busy-poll) or sleeps on a futex word that the peer's publish wakes.
/// Switching <see cref="WaitMode"/> takes effect at the next wait.
/// </summary>
internal abstract unsafe class PortBase : IPort
{
    protected PortBase(string name) => Name = name;

    public string Name { get; }
    public abstract Ring Tx { get; }
    public abstract Ring Rx { get; }
    public WaitMode WaitMode { get; set; }
    public virtual string? Failure => null;

    public abstract void TxSync();
    public abstract void RxSync();

    /// <summary>The word a sleeping RX waiter watches and the flag that asks the peer to wake it (futex-backed ports).</summary>
    protected virtual (nint Word, nint Flag) RxWaitWord => throw new NotSupportedException($"{GetType().Name} must override Block or RxWaitWord");
    /// <summary>The word a sleeping TX waiter watches (the peer's consumer head) and its flag.</summary>
    protected virtual (nint Word, nint Flag) TxWaitWord => throw new NotSupportedException($"{GetType().Name} must override Block or TxWaitWord");

    /// <summary>Longest single sleep, so liveness checks run even when no one wakes us.</summary>
    protected virtual long MaxSleepNs => 100_000_000;

    public bool WaitRx(Duration timeout) => Wait(rx: true, timeout);
    public bool WaitTx(Duration timeout) => Wait(rx: false, timeout);

    /// <summary>
    /// <see cref="WaitRx"/> for a thread that shares the port with others: its syncs hold
    /// <paramref name="ringLock"/>, the lock the ring's other users sync and read under (a
    /// stack's lock). A ring has one user at a time: a sync on this thread while another reads
    /// the slots would refill slots under that reader (a TAP's read(2) into a buffer being
    /// parsed), or move indexes a second sync is moving.
    /// </summary>
    internal bool WaitRx(Duration timeout, Lock? ringLock) => Wait(rx: true, timeout.Nanoseconds, interruptible: false, ringLock) == WaitOutcome.Ready;

    public bool Flush(Duration timeout)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.Nanoseconds * (Stopwatch.Frequency / 1e9));
        while (true)
        {
            TxSync();
            if (Tx.Space == Tx.Size - 1) return true;
            if (Failure is not null || Stopwatch.GetTimestamp() >= deadline) return false;
            if (WaitMode == WaitMode.BusyPoll) Thread.SpinWait(20);
            else Thread.Yield();
        }
    }

    private bool Wait(bool rx, Duration timeout) => Wait(rx, timeout.Nanoseconds, interruptible: false, ringLock: null) == WaitOutcome.Ready;

    /// <summary>How a wait ended.</summary>
    internal enum WaitOutcome { Ready, TimedOut, Interrupted, Signal }

    /// <summary>
    /// Waits for RX frames like <see cref="WaitRx"/>, and tells how it ended: frames, the timeout,
    /// <see cref="InterruptRxWait"/>, or a signal handler that ran on this thread (which a
    /// program's blocking call must see as EINTR). Its syncs hold <paramref name="ringLock"/>, as
    /// in <see cref="WaitRx(Duration, Lock?)"/>.
    /// </summary>
    internal WaitOutcome WaitRxOrInterrupt(long timeoutNs, Lock? ringLock) => Wait(rx: true, timeoutNs, interruptible: true, ringLock);

    /// <param name="interruptible">
    /// Whether <see cref="InterruptRxWait"/> ends this wait. Only the waits it is meant for take
    /// its flag: a plain <see cref="WaitRx"/> (a stack's owner thread) that sleeps on the same
    /// port at the same moment must not take the interrupt from the thread it was for.
    /// </param>
    /// <param name="ringLock">Held around each sync, when others use the ring too (null: only this thread does).</param>
    private WaitOutcome Wait(bool rx, long timeoutNs, bool interruptible, Lock? ringLock)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeoutNs * (Stopwatch.Frequency / 1e9));
        int spins = 0;
        // A port that failed during the wait ends it at once (its user notices). One already failed
        // when the wait began (a shm server between peers) sleeps like a quiet port, one slice at
        // most: a caller that waits in a loop must not spin until a new peer comes.
        bool failedBefore = Failure is not null;
        while (true)
        {
            if (SyncReady(rx, ringLock)) return WaitOutcome.Ready;
            if (interruptible && Interlocked.Exchange(ref _rxInterrupted, 0) != 0) return WaitOutcome.Interrupted;
            if (Failure is not null && !failedBefore) return WaitOutcome.TimedOut;
            if (WaitMode == WaitMode.BusyPoll)
            {
                if ((++spins & 255) == 0 && Stopwatch.GetTimestamp() >= deadline) return WaitOutcome.TimedOut;
                Thread.SpinWait(1);
                continue;
            }
            long left = (long)((deadline - Stopwatch.GetTimestamp()) * (1e9 / Stopwatch.Frequency));
            if (left <= 0) return WaitOutcome.TimedOut;
            if (!Block(rx, Math.Min(left, MaxSleepNs), interruptible)) return WaitOutcome.Signal;
            failedBefore = false; // after one slice, a failed port ends the wait as above
        }
    }

    /// <summary>
    /// Syncs the ring (holding <paramref name="ringLock"/> if any) and tells whether it is ready.
    /// A busy-polling wait only tries the lock: whoever holds it is taking the frames already,
    /// and a spinner taking it on every turn would keep the program's own threads out.
    /// </summary>
    private bool SyncReady(bool rx, Lock? ringLock)
    {
        if (ringLock is null) return SyncReady(rx);
        if (WaitMode == WaitMode.BusyPoll)
        {
            if (!ringLock.TryEnter()) return false;
            try { return SyncReady(rx); }
            finally { ringLock.Exit(); }
        }
        using (ringLock.EnterScope()) return SyncReady(rx);
    }

    private bool SyncReady(bool rx)
    {
        if (rx) { RxSync(); return !Rx.IsEmpty; }
        TxSync();
        return !Tx.IsEmpty;
    }

    // Set by InterruptRxWait, taken by the interruptible RX wait it ends (or the next one, which then returns at once).
    private int _rxInterrupted;

    /// <summary>Whether <see cref="InterruptRxWait"/> can end a sleeping <see cref="WaitRx"/> (futex-backed ports; descriptor ports sleep in poll).</summary>
    internal virtual bool RxWaitInterruptible => true;

    /// <summary>
    /// Ends a <see cref="WaitRx"/> sleeping on another thread (it returns false), or the next one
    /// to start: how a thread sleeping on the port for frames is also woken by an event that
    /// did not come through the port.
    /// </summary>
    internal void InterruptRxWait()
    {
        Interlocked.Exchange(ref _rxInterrupted, 1); // full fence: a waiter setting its flag after this sees it
        uint* f = (uint*)RxWaitWord.Flag;
        if (Interlocked.Exchange(ref *f, 0) != 0) Futex.Wake(f);
    }

    /// <summary>
    /// Sleeps until the ring may be ready or <paramref name="timeoutNs"/> passes. The default
    /// sleeps on the ring's waiting flag: set to 1 here, cleared (and woken) by the peer after it
    /// publishes, or by <see cref="InterruptRxWait"/>. Descriptor-backed ports poll(2) instead.
    /// </summary>
    /// <returns>False when a signal handler ran while it slept.</returns>
    protected virtual bool Block(bool rx, long timeoutNs, bool interruptible)
    {
        var (word, flag) = rx ? RxWaitWord : TxWaitWord;
        uint* w = (uint*)word, f = (uint*)flag;
        uint seen = Volatile.Read(ref *w);
        Interlocked.Exchange(ref *f, 1); // full fence: the peer's publish either sees the flag or we see its value
        bool interrupted = interruptible && Volatile.Read(ref _rxInterrupted) != 0;
        bool quiet = interrupted || ReadyWithoutSync(rx, seen) || Futex.Wait(f, 1, timeoutNs);
        Volatile.Write(ref *f, 0);
        return quiet;
    }

    /// <summary>poll(2) on one descriptor, for ports backed by a file descriptor; false when a signal handler ran.</summary>
    protected static bool PollDescriptor(int fd, bool rx, long timeoutNs)
    {
        var p = new Libc.PollFd { Fd = fd, Events = rx ? Libc.POLLIN : Libc.POLLOUT };
        return Libc.Poll(&p, 1, (int)Math.Max(1, timeoutNs / 1_000_000)) >= 0 || Libc.Errno != Errno.EINTR;
    }

    /// <summary>Whether the watched word already moved since the sync (so sleeping would miss it).</summary>
    private bool ReadyWithoutSync(bool rx, uint seen)
    {
        var (word, _) = rx ? RxWaitWord : TxWaitWord;
        return Volatile.Read(ref *(uint*)word) != seen || (rx ? !Rx.IsEmpty : !Tx.IsEmpty);
    }

    /// <summary>
    /// Called by a producer after publishing a word: if the other side sleeps (its flag set),
    /// clears the flag and wakes it. The sleeper waits on the flag itself, so a clear that comes
    /// before it falls asleep makes the sleep return at once: no wake-up is lost.
    /// </summary>
    protected static void WakeIfWaiting(uint* flag)
    {
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref *flag) != 0 && Interlocked.Exchange(ref *flag, 0) != 0) Futex.Wake(flag);
    }

    public abstract void Dispose();
}
