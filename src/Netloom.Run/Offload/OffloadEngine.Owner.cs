using Netloom.Offload;
using Netloom.Run.Native;
using static Netloom.Interop.IoUring;

namespace Netloom.Run;

/// <summary>
/// The owner mode (`netloom run --offload --single-issuer`, NETLOOM_SINGLE_ISSUER=1): the ring is
/// made SINGLE_ISSUER and DEFER_TASKRUN, so the kernel runs completions only when the ring's
/// owner enters, and wakes a waiting owner only when as many are ready as it waits for, not once
/// per packet. The owner is the thread that opened the program's first socket (the one that
/// attached the engine: a server's event loop, as a rule).
///
/// Only the owner enters the ring. Every other thread (the program's own, and the engine's
/// flusher) still calls the engine, under the same lock, and:
/// - prepares entries but never submits them: the owner does at its next call, and an owner
///   asleep in the ring is woken for them by an eventfd whose poll is armed there;
/// - never takes completions: it reads what the owner's completions left in the sockets, and a
///   wait sleeps (in ppoll, with the program's signal mask) until the owner has taken some, so it
///   is served only as often as the owner calls;
/// - before a dup2 or fork does the owner's prepared file reads and closes itself (their entries
///   become no-ops), so no queued close reaches a number the program reuses.
/// The flusher, which cannot enter, does by plain system calls what the owner left while it is away
/// (computing, or blocked elsewhere): the sends connections queued, the file reads and closes it
/// prepared, the FINs behind closed connections; so a reply still leaves.
/// </summary>
internal sealed unsafe partial class OffloadEngine
{
    /// <summary>The owner mode is on: the ring is SINGLE_ISSUER (<see cref="UringRing.OwnerOnly"/>).</summary>
    private bool SingleIssuer => _ring.OwnerOnly;
    // An eventfd the others write to wake an owner asleep in the ring (its poll is armed there while it waits).
    private readonly int _wakeFd = -1;
    private bool _wakeArmed;
    // The owner sleeps where the wake eventfd reaches it (in the ring, or in poll's ppoll).
    private volatile bool _ownerAsleep;
    // An eventfd the ring signals when completions wait (registered; enabled only while the owner sleeps in ppoll).
    private readonly int _readyFd = -1;
    // Others waiting for the owner's completions, the count of the owner's takes they wait on, and
    // the eventfd the owner writes when it took some while others wait.
    private int _othersWaiting;
    private long _ownerTakes;
    private readonly int _progressFd = -1;
    [ThreadStatic] private static long t_sawTakes;
    // The owner's calls (for the flusher: has it called since the last turn?), and what the flusher sent for it.
    private long _ownerCalls, _flusherSawOwner, _flusherSends, _othersSilentTurns;
    private bool _warnedSilent;
    // Connections whose send in the ring met a full socket: a poll for room is armed (the owner's to run).
    private readonly HashSet<OffloadConnection> _roomWaits = new();
    private const byte OwnerWake = 12;

    /// <summary>This thread may enter the ring: every thread, or in the owner mode only the owner.</summary>
    private bool MayEnter => _ring.MayEnter;

    /// <summary>Makes the owner mode's ring, or null when the kernel refuses it (the caller makes a plain one).</summary>
    private static UringRing? OwnerRing(uint entries)
    {
        try
        {
            var ring = new UringRing(entries, SetupSingleIssuer | SetupDeferTaskrun | SetupTaskrunFlag, entries * 4);
            ring.MarkOwnerThread();
            return ring;
        }
        catch (UringUnavailableException ex) when (ex.Errno == Errno.EINVAL)
        {
            Engine.Warn("this kernel's io_uring has no SINGLE_ISSUER/DEFER_TASKRUN (6.1 and later); --single-issuer is off");
            return null;
        }
    }

    private static (int Wake, int Ready, int Progress) OwnerDescriptors(UringRing ring)
    {
        int wake = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        int ready = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        int progress = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (wake < 0 || ready < 0 || progress < 0 || !ring.RegisterEventFd(ready))
            throw new UringUnavailableException($"the owner mode's eventfds ({Libc.Describe(Libc.Errno)})", Libc.Errno);
        return (wake, ready, progress);
    }

    /// <summary>Under the lock, before the owner sleeps in the ring: the others can wake it.</summary>
    private void ArmOwnerWake()
    {
        if (_wakeArmed) return;
        var sqe = _ring.NextSqe();
        UringRing.PrepPollAdd(sqe, _wakeFd, (uint)Abi.POLLIN);
        sqe->UserData = UringTag.Make(OwnerWake, 0, 0);
        _wakeArmed = true;
    }

    private int OwnerWoken()
    {
        _wakeArmed = false;
        ulong count;
        _ = Libc.Read(_wakeFd, &count, sizeof(ulong)); // clears it; the poll is armed again before the next sleep
        return 0;
    }

    /// <summary>Another thread prepared work (or queued sends): an owner asleep in the ring is woken to submit it.</summary>
    private void WakeOwner()
    {
        if (!_ownerAsleep) return; // it submits at its next call, and the flusher sends meanwhile
        ulong one = 1;
        _ = Libc.Write(_wakeFd, &one, sizeof(ulong));
    }

    /// <summary>The owner took completions that concerned sockets: threads waiting on it look again.</summary>
    private void TellOthers()
    {
        Interlocked.Increment(ref _ownerTakes);
        ulong one = 1;
        _ = Libc.Write(_progressFd, &one, sizeof(ulong));
    }

    /// <summary>Under the lock, for a thread other than the owner about to wait: counts it, and notes what it has seen.</summary>
    private void PrepareOtherWait()
    {
        Interlocked.Increment(ref _othersWaiting);
        t_sawTakes = Volatile.Read(ref _ownerTakes);
        if (_kicks.Count > 0 || _ring.Unsubmitted > 0) WakeOwner();
    }

    /// <summary>
    /// A thread other than the owner waits until the owner takes completions again (a ppoll on an
    /// eventfd the owner writes then), at most until <paramref name="deadlineNs"/> and 10 ms at a
    /// time (its caller then looks again), with the program's <paramref name="sigmask"/>: a signal
    /// whose handler runs ends it with -EINTR, as the call it stands for would end.
    /// </summary>
    private long WaitForOwner(long deadlineNs, void* sigmask, ref SignalMark since, bool restartable)
    {
        try
        {
            if (Volatile.Read(ref _ownerTakes) != t_sawTakes) return 0;
            if (since.Interrupted(restartable)) return -Errno.EINTR; // a handler ran before the wait
            long left = deadlineNs == long.MaxValue ? 10_000_000 : Math.Min(10_000_000, deadlineNs - Clock.NowNs());
            if (left <= 0) return 0;
            var fd = new PollFd { Fd = _progressFd, Events = Abi.POLLIN };
            TimeSpec ts = TimeSpec.FromNanoseconds(left);
            int r = Sys.PPoll(&fd, 1, &ts, sigmask);
            if (r < 0) return since.EndsCall(Libc.Errno == Errno.EINTR ? -Errno.EINTR : 0, restartable) ? -Errno.EINTR : 0;
            if (r > 0)
            {
                ulong count;
                _ = Libc.Read(_progressFd, &count, sizeof(ulong)); // another waiter may have cleared it first: then EAGAIN
            }
            return since.EndsCall(0, restartable) ? -Errno.EINTR : 0;
        }
        finally { Interlocked.Decrement(ref _othersWaiting); }
    }

    /// <summary>
    /// The flusher's turn in the owner mode (lock held; true while it has work): when the owner has
    /// not called since the last turn and is not asleep, it does the owner's work by plain calls
    /// (<see cref="WorkForAbsentOwner"/>). Warns once when others wait on an owner that stays away
    /// for a second.
    /// </summary>
    private bool OwnerModeTurn()
    {
        OwnerAbsentTurn();
        return _kicks.Count > 0 || _sendsInFlight > 0 || _readsInFlight > 0 || Volatile.Read(ref _othersWaiting) > 0;
    }

    private void OwnerAbsentTurn()
    {
        bool away = !_ownerAsleep && _ownerCalls == _flusherSawOwner;
        _flusherSawOwner = _ownerCalls;
        if (!away) { _othersSilentTurns = 0; return; }
        if (Volatile.Read(ref _othersWaiting) > 0 && ++_othersSilentTurns >= 1000 && !_warnedSilent)
        {
            _warnedSilent = true;
            Engine.Warn("--single-issuer: a thread waits on sockets whose completions only the ring's owner thread (the one that opened the first socket) can take, and that thread has not called in for a second; run this program without --single-issuer");
        }
        WorkForAbsentOwner();
    }

    /// <summary>
    /// What the engine's other threads do for an owner that is not there (lock held): take the
    /// completions already posted (sends the owner submitted end at once, MSG_DONTWAIT), take back
    /// the sends it prepared and did not submit, then send what connections queued by plain
    /// non-blocking sends, do its prepared file reads and closes, and send the FINs behind.
    /// </summary>
    private void WorkForAbsentOwner()
    {
        Reap(byProgram: false);
        if (_roomWaits.Count > 0)
        {
            foreach (var c in _roomWaits) KickLater(c); // the owner's poll for room may never run meanwhile
            _roomWaits.Clear();
        }
        if (_kicks.Count == 0 && _readsInFlight == 0 && _closing.Count == 0 && _sendsInFlight == 0) return;
        TakeBackPreparedSends();
        SendForAbsentOwner(); // the bytes ahead of a file's first: a file read that fails must not take them with it
        DoFileWorkOfAbsentOwner();
        SendForAbsentOwner();
    }

    /// <summary>Sends the owner prepared and has not published become no-ops, their connections queued for plain sends.</summary>
    private void TakeBackPreparedSends()
    {
        if (_sendsInFlight == 0) return;
        for (uint i = _ring.PublishedTail; i != _ring.PreparedTail; i++)
        {
            Sqe* sqe = _ring.EntryAt(i);
            if (sqe->Opcode != OpSend || UringTag.Kind(sqe->UserData) != UringTag.Send) continue;
            var c = Resolve(sqe->UserData) as OffloadConnection;
            _ring.TryNeutralize(i, Ignored);
            _sendsInFlight--;
            if (c is null) continue;
            c.SendInFlight = false;
            KickLater(c);
        }
    }

    /// <summary>Plain sends of what connections queued, in order, and the FIN or close that waits behind the last byte.</summary>
    private void SendForAbsentOwner()
    {
        for (int i = _kicks.Count - 1; i >= 0; i--)
        {
            var c = _kicks[i];
            if (c.Slot < 0 || c.IoFd < 0) { c.KickPending = false; _kicks.RemoveAt(i); continue; } // freed, or aborted
            if (c.SendInFlight) continue;
            long before = c.Output.Queued;
            if (before > 0) SendQueuedNow(c, aheadOfFills: true);
            if (c.Output.Queued < before) _flusherSends++;
            if ((c.Output.Queued > 0 && c.SendError == 0) || c.Output.Filling) continue; // the socket is full, or a file read still fills: next turn
            if (c.ShutWritePending && c.SendError == 0) Sys.Shutdown(c.IoFd, Abi.SHUT_WR);
            c.ShutWritePending = false;
            if (c.Closed)
            {
                // The FIN goes now: the ring's receive, whose cancel waits for the owner, still
                // holds the socket open after the close. Entries prepared on the descriptor this
                // closes (a poll for room) become no-ops first.
                if (c.SendError == 0) Sys.Shutdown(c.IoFd, Abi.SHUT_WR);
                ForgetPreparedOn(c.IoFd, -1);
                FinishClose(c);
            }
            c.KickPending = false;
            _kicks.RemoveAt(i);
        }
    }

    // A user data the dispatcher ignores (a close's), for entries turned into no-ops.
    private static ulong Ignored => UringTag.Make(UringTag.Close, 0, 0);

    /// <summary>
    /// The file reads and closes the absent owner prepared and has not submitted are done here by
    /// plain calls (pread, close), and their entries become no-ops: a reply whose body such a
    /// read fills, or a FIN behind it, does not wait for the owner's return.
    /// </summary>
    private void DoFileWorkOfAbsentOwner()
    {
        if (_readsInFlight == 0 && _closing.Count == 0) return;
        for (uint i = _ring.PublishedTail; i != _ring.PreparedTail; i++)
        {
            Sqe* sqe = _ring.EntryAt(i);
            byte kind = UringTag.Kind(sqe->UserData);
            if (kind == FileRead && sqe->Opcode == OpRead)
            {
                var done = new Cqe { UserData = sqe->UserData };
                nint r = Sys.PRead(sqe->Fd, (void*)sqe->Addr, sqe->Len, (long)sqe->Off);
                done.Res = r >= 0 ? (int)r : -Libc.Errno;
                _ring.TryNeutralize(i, Ignored);
                FileReadDone(done);
            }
            else if (kind == FileClose && sqe->Opcode == OpClose)
            {
                int fd = sqe->Fd;
                _ring.TryNeutralize(i, Ignored);
                Libc.Close(fd);
                _closing.Remove(fd);
            }
        }
    }

    /// <summary>
    /// Before a thread other than the owner closes an offloaded socket (its number is free once
    /// libc closes it): entries the owner published are being taken by its entry in progress, so
    /// this waits for that (microseconds; 10 ms at most).
    /// </summary>
    private void WaitOwnerEntry()
    {
        for (int i = 0; i < 10_000 && !_ring.AllPublishedConsumed; i++) Thread.Yield();
    }

    /// <summary>
    /// Under the lock, on a thread other than the owner closing <paramref name="fd"/> (or the
    /// flusher closing a connection's own descriptor): entries prepared on that number and not
    /// published must not reach a file that later takes it. With <paramref name="keep"/> (the
    /// descriptor that keeps a closed connection's socket while its bytes leave) sends, zero-copy
    /// sends and polls for room move to it; otherwise they become no-ops that keep their user data
    /// (a send's completes it with nothing sent, a receive's ends it), and an accept's is dropped.
    /// </summary>
    private void ForgetPreparedOn(int fd, int keep)
    {
        for (uint i = _ring.PublishedTail; i != _ring.PreparedTail; i++)
        {
            Sqe* sqe = _ring.EntryAt(i);
            if (sqe->Fd != fd || sqe->Opcode == OpNop || sqe->Opcode == OpRead || sqe->Opcode == OpClose) continue; // reads and closes name files
            byte kind = UringTag.Kind(sqe->UserData);
            bool completes = kind is UringTag.Send or UringTag.Recv or WritePoll or SendZcTag;
            if (keep >= 0 && kind is UringTag.Send or WritePoll or SendZcTag) sqe->Fd = keep;
            else _ring.TryNeutralize(i, completes ? sqe->UserData : Ignored);
        }
    }

    /// <summary>
    /// A thread other than the owner closed <paramref name="fd"/> (lock held, before libc closes
    /// the number): entries prepared on it follow the socket to the descriptor that keeps it, or
    /// become no-ops; a connection closed with nothing left to send gets its FIN now, and a
    /// listener stops listening, since the receive or accept whose cancel waits for the owner
    /// holds the socket open.
    /// </summary>
    private void OtherClosed(int fd, OffloadSocket s)
    {
        int keep = s is OffloadConnection { Closed: true } k && k.IoFd >= 0 && k.IoFd != fd ? k.IoFd : -1;
        ForgetPreparedOn(fd, keep);
        if (keep < 0 && s is OffloadConnection c && !(c.LingerOn != 0 && c.LingerSeconds == 0)) Sys.Shutdown(fd, Abi.SHUT_WR);
        // A listener likewise stops listening now (shutdown SHUT_RD on a listening TCP socket), as
        // its close would make it, though the accept in the ring still holds it.
        if (s is OffloadListener) Sys.Shutdown(fd, Abi.SHUT_RD);
    }

    /// <summary>
    /// Settle (dup2, close_range, fork) on a thread other than the owner: queued closes the owner
    /// has not published become no-ops and their files are closed here; published ones are being
    /// submitted by the owner's entry in progress, so this waits for the kernel to take them.
    /// </summary>
    private void SettleForOther()
    {
        DoFileWorkOfAbsentOwner(); // reads of those files first, and the closes in order
        foreach (var (fd, index) in _closing.ToArray())
        {
            if (_ring.Consumed(index)) { _closing.Remove(fd); continue; }
            if (_ring.TryNeutralize(index, Ignored)) { Libc.Close(fd); _closing.Remove(fd); continue; }
            for (int i = 0; i < 1000 && !_ring.Consumed(index); i++) Thread.Sleep(1);
            _closing.Remove(fd);
        }
    }

    /// <summary>At exit on a thread other than the owner: the absent owner's work is done here, until the bytes are out or the linger time is over.</summary>
    private void ExitForOther(long deadlineNs)
    {
        while (Clock.NowNs() < deadlineNs)
        {
            lock (_lock)
            {
                WorkForAbsentOwner();
                if (_kicks.Count == 0 && _readsInFlight == 0) return;
            }
            Thread.Sleep(1);
        }
    }
}
