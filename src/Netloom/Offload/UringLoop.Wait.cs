using System.Collections.Concurrent;
using System.Diagnostics;
using Netloom.Interop;

namespace Netloom.Offload;

/// <summary>Waiting for completions (asleep, or busy polling first) and being woken by other threads.</summary>
internal sealed unsafe partial class UringLoop
{
    // Other threads bump an eventfd that the ring keeps a read on. The gate orders those writes
    // against the descriptor's close, so a late Wake or Interrupt never writes to a reused number.
    private readonly Lock _wakeGate = new();
    private int _wakeFd = -1;
    private ulong* _wakeBuffer;
    private readonly ConcurrentQueue<long> _woken = new();
    private int _signalled, _loopThread = -1;
    private Action<Connection>? _wakeHook;

    private void CreateWake()
    {
        _wakeFd = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (_wakeFd < 0) throw new IOException($"eventfd: {Libc.Describe(Libc.Errno)}");
        _wakeBuffer = (ulong*)_memory.Alloc(sizeof(ulong));
        _wakeHook = c =>
        {
            _woken.Enqueue((long)c.Id << 32 | (uint)c.Generation);
            // On the loop's own thread (an application running inline): the loop drains the queue
            // before it next waits, no eventfd needed. Elsewhere, one eventfd write per wake-up of
            // the loop: later wakes see the flag and ride on it (the loop clears it before draining).
            if (Environment.CurrentManagedThreadId == _loopThread) return;
            if (Interlocked.Exchange(ref _signalled, 1) == 0) Interrupt();
        };
    }

    private void FreeWake()
    {
        lock (_wakeGate)
        {
            if (_wakeFd >= 0) Libc.Close(_wakeFd);
            _wakeFd = -1;
        }
        _memory.Free(_wakeBuffer, sizeof(ulong));
        _wakeBuffer = null;
    }

    /// <summary>From any thread: ends the loop's current wait soon (a stop request, a woken connection).</summary>
    public void Interrupt()
    {
        lock (_wakeGate)
        {
            if (_wakeFd < 0) return;
            ulong one = 1;
            Libc.Write(_wakeFd, &one, sizeof(ulong));
        }
    }

    private void ArmWake()
    {
        var s = _ring.NextSqe();
        UringRing.PrepRead(s, _wakeFd, _wakeBuffer, sizeof(ulong), 0);
        s->UserData = UringTag.Make(UringTag.Wake, 0, 0);
    }

    /// <summary>Other threads asked for connections to be served: the handler produces their output here.</summary>
    private void Woken()
    {
        Volatile.Write(ref _signalled, 0); // before draining: a wake queued from now on writes the eventfd again
        while (_woken.TryDequeue(out long item))
        {
            var slot = _table[(int)(item >> 32)];
            if (slot.Fd < 0 || slot.Generation != (uint)item || slot.Closing) continue;
            Volatile.Write(ref slot.Connection.WakePending, 0);
            _handler.OnWake(slot.Connection);
            AfterHandler(slot);
        }
    }

    /// <summary>
    /// Submits what the turn prepared and waits for completions: asleep in the kernel, or first
    /// spinning on the ring (its CQ, and with deferred task work the IORING_SQ_TASKRUN flag) for
    /// up to the busy-poll budget, entering only once there is something to reap. Under load the
    /// thread never sleeps, so the clients' sends stop paying to wake it (Onload's EF_POLL_USEC).
    /// </summary>
    private void Wait()
    {
        if (_pollTicks == 0) { _ring.Submit(waitFor: 1); return; }
        if (_ring.Unsubmitted == 0)
        {
            long deadline = Stopwatch.GetTimestamp() + _pollTicks;
            while (!_ring.TaskWorkPending && _ring.CqReady == 0)
            {
                if (Stopwatch.GetTimestamp() >= deadline || _stop.IsCancellationRequested) { _ring.Submit(waitFor: 1); return; }
                Thread.SpinWait(4);
            }
        }
        _ring.Submit(getEvents: true); // submit, run the completions' task work, do not sleep
    }
}
