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

    private bool Wait(bool rx, Duration timeout)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.Nanoseconds * (Stopwatch.Frequency / 1e9));
        int spins = 0;
        while (true)
        {
            if (rx) { RxSync(); if (!Rx.IsEmpty) return true; }
            else { TxSync(); if (!Tx.IsEmpty) return true; }
            if (Failure is not null) return false;
            if (WaitMode == WaitMode.BusyPoll)
            {
                if ((++spins & 255) == 0 && Stopwatch.GetTimestamp() >= deadline) return false;
                Thread.SpinWait(1);
                continue;
            }
            long left = (long)((deadline - Stopwatch.GetTimestamp()) * (1e9 / Stopwatch.Frequency));
            if (left <= 0) return false;
            Block(rx, Math.Min(left, MaxSleepNs));
        }
    }

    /// <summary>
    /// Sleeps until the ring may be ready or <paramref name="timeoutNs"/> passes. The default
    /// sleeps on the futex word the peer publishes; descriptor-backed ports poll(2) instead.
    /// </summary>
    protected virtual void Block(bool rx, long timeoutNs)
    {
        var (word, flag) = rx ? RxWaitWord : TxWaitWord;
        uint* w = (uint*)word, f = (uint*)flag;
        uint seen = Volatile.Read(ref *w);
        Interlocked.Exchange(ref *f, 1); // full fence: the peer's publish either sees the flag or we see its value
        if (!ReadyWithoutSync(rx, seen)) Futex.Wait(w, seen, timeoutNs);
        Volatile.Write(ref *f, 0);
    }

    /// <summary>poll(2) on one descriptor, for ports backed by a file descriptor.</summary>
    protected static void PollDescriptor(int fd, bool rx, long timeoutNs)
    {
        var p = new Libc.PollFd { Fd = fd, Events = rx ? Libc.POLLIN : Libc.POLLOUT };
        Libc.Poll(&p, 1, (int)Math.Max(1, timeoutNs / 1_000_000));
    }

    /// <summary>Whether the watched word already moved since the sync (so sleeping would miss it).</summary>
    private bool ReadyWithoutSync(bool rx, uint seen)
    {
        var (word, _) = rx ? RxWaitWord : TxWaitWord;
        return Volatile.Read(ref *(uint*)word) != seen || (rx ? !Rx.IsEmpty : !Tx.IsEmpty);
    }

    /// <summary>Called by a producer after publishing a word: wakes the waiter if it asked.</summary>
    protected static void WakeIfWaiting(uint* word, uint* flag)
    {
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref *flag) != 0) Futex.Wake(word);
    }

    public abstract void Dispose();
}
