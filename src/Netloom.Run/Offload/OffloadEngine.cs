using Netloom.Offload;
using Netloom.Run.Native;
using static Netloom.Interop.IoUring;

namespace Netloom.Run;

/// <summary>
/// The second engine (`netloom run --offload`, ESCA without the kernel patch): the program's TCP
/// sockets stay kernel sockets, visible to ss, tcpdump and nftables, and only the way their calls
/// reach the kernel changes. Listeners accept with one multishot accept; connections receive with
/// one multishot receive into a provided buffer ring, so read is served from data already here;
/// write queues the bytes and returns (ESCA's "assume success"), an error surfacing on the next
/// call as a socket's pending error does; epoll_wait becomes one io_uring_enter that submits
/// every queued operation and waits for completions. Client sockets (connect), UDP and everything
/// else are the kernel's as they are.
///
/// It is built on the project's one io_uring engine (<see cref="UringRing"/>, its Prep builders,
/// <see cref="ProvidedBuffers"/>). Every call takes the engine lock; the ring's waits happen
/// outside it, any number of threads at once.
/// </summary>
internal sealed unsafe partial class OffloadEngine : ISocketEngine
{
    private const ushort BufferGroup = 1;
    // Receive buffers: 1,024 of 16 KiB (16 MiB of address space) at most, of which the ring holds
    // only what the load needs, the most recently used first (ProvidedBuffers): the receive path's
    // working set, and the memory a process touches, stay near 64 buffers unless many connections
    // hold unread data. A connection whose receive finds none left stops until some come back
    // (ENOBUFS, _starved).
    private const int RecvBuffers = 1024;
    // Tag kinds beyond UringTag's.
    private const byte EpollWatch = 8;

    private readonly Lock _lock = new();
    private readonly UringRing _ring;
    private readonly ProvidedBuffers _buffers;
    private readonly int _busyPollUs;
    // Coalescing (NETLOOM_COALESCE, `netloom run --coalesce USEC`): a wait collects completions for
    // up to this long from its start, or until CoalesceBatch have come (0: off, or the kernel lacks it).
    private readonly uint _coalesceUs;
    private const uint CoalesceBatch = 32;
    private readonly DescriptorTable<OffloadSocket> _fds = new();
    private readonly List<OffloadSocket?> _slots = new();
    private readonly List<uint> _generations = new();
    private readonly Stack<int> _freeSlots = new();
    private readonly Dictionary<int, EpollSet> _epolls = new();
    // Per epoll set with kernel members: a poll on its descriptor is armed in the ring, or completed.
    private readonly Dictionary<int, (bool Armed, bool Ready)> _watches = new();
    private readonly List<OffloadConnection> _starved = new();
    private int _ringWaiters;
    // How a thread waiting in the ring is woken when another takes completions for it. With one
    // program thread, it waits in io_uring_enter and the other posts a NOP (PostWake). That NOP's
    // completion is nobody's in particular: when other threads call too, one of them can reap it
    // before the waiter's wait has begun in the kernel, which then waits for a later completion
    // (memcached's worker threads served connections up to a second late, at its main thread's
    // timer). So once a second program thread calls, waits are "shared" for good (WaitShared):
    // each sleeps in ppoll on the ring's descriptor and on an eventfd of its own (WaitTicket),
    // and a thread that took completions writes the eventfd of each waiter they concern
    // (WakeWaiters). An eventfd keeps its count until read, so no wake-up is lost; the price is a
    // second system call for a wait that submits (io_uring_enter, then ppoll).
    private sealed class WaitTicket
    {
        public readonly int Fd = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        public int SeenGen;       // _wakeGen when it last looked
        public int EpollFd = -1;  // the epoll set it waits on; -1: any socket
        public volatile bool Waiting, Woken;
        public bool Listed;
        ~WaitTicket() { if (Fd >= 0) Libc.Close(Fd); }
    }
    [ThreadStatic] private static WaitTicket? t_ticket;
    private readonly List<WaitTicket> _tickets = new(); // threads that wait or waited (under the lock)
    private bool _sharedWaits;
    private int _soleThread; // the one program thread seen so far (managed id), until a second comes
    private int _ringSleepers; // threads inside io_uring_enter's wait, which only a NOP reaches
    // Bumped by every wake-up (Reap). A thread that counted itself a waiter and has not yet gone
    // to sleep (it spins, or is on its way) does not, when it moved meanwhile, nor when its ticket
    // was woken (shared waits): a NOP could be reaped by another thread before its wait began.
    private int _wakeGen;
    private static bool WokenSincePrepare(int wakeGen) => t_ticket is { } t && (t.Woken || wakeGen != t.SeenGen);
    private readonly Thread _flusher;
    private volatile bool _exiting;

    // What NETLOOM_STATS=1 prints at exit: completions by kind.
    private long _completions, _accepts, _receives, _sends, _waits, _taskRunEnters, _sharedWaitCalls;

    private OffloadEngine(UringRing ring, ProvidedBuffers buffers, int busyPollUs, int coalesceUs)
    {
        _ring = ring;
        if (ring.OwnerOnly) (_wakeFd, _readyFd, _progressFd) = OwnerDescriptors(ring);
        _buffers = buffers;
        _busyPollUs = busyPollUs;
        _coalesceUs = ring.SupportsMinWait ? (uint)coalesceUs : 0;
        _flusher = new Thread(Flusher) { IsBackground = true, Name = "netloom offload" };
        _flusher.Start();
    }

    public static OffloadEngine? Start(HostTable* host)
    {
        Engine.SetHost(host);
        _ = Engine.PrintStats; // the environment as it is now (static fields read it once, here)
        int entries = 1024, busy = 0, coalesce = 0;
        if (Environment.GetEnvironmentVariable("NETLOOM_RING_ENTRIES") is { Length: > 0 } e
            && (!int.TryParse(e, out entries) || entries is < 64 or > 32768 || (entries & (entries - 1)) != 0))
        {
            Engine.Warn($"NETLOOM_RING_ENTRIES '{e}' must be a power of two from 64 to 32768; this program's sockets stay on the kernel");
            return null;
        }
        if (Environment.GetEnvironmentVariable("NETLOOM_BUSY_POLL") is { Length: > 0 } b && (!int.TryParse(b, out busy) || busy is < 0 or > 10_000_000))
        {
            Engine.Warn($"NETLOOM_BUSY_POLL '{b}' must be microseconds from 0 to 10000000; this program's sockets stay on the kernel");
            return null;
        }
        if (Environment.GetEnvironmentVariable("NETLOOM_COALESCE") is { Length: > 0 } c && (!int.TryParse(c, out coalesce) || coalesce is < 0 or > 10_000))
        {
            Engine.Warn($"NETLOOM_COALESCE '{c}' must be microseconds from 0 to 10000; this program's sockets stay on the kernel");
            return null;
        }
        bool singleIssuer = Environment.GetEnvironmentVariable("NETLOOM_SINGLE_ISSUER") is { Length: > 0 } si && si != "0";
        UringRing? ring = null;
        try
        {
            if (singleIssuer) ring = OwnerRing((uint)entries); // null: refused, so the plain ring below
            // COOP_TASKRUN: completions wait for the program's next entry into the kernel instead of
            // interrupting it (an IPI each, costly in a VM); TASKRUN_FLAG says when some wait, so a
            // wait that finds the completion queue empty enters to run them first.
            if (ring is null)
            {
                try { ring = new UringRing((uint)entries, SetupCoopTaskrun | SetupTaskrunFlag, (uint)entries * 4); }
                catch (UringUnavailableException ex) when (ex.Errno == Errno.EINVAL) { ring = new UringRing((uint)entries, 0, (uint)entries * 4); }
            }
            if (!ring.Supports(OpAccept) || !ring.Supports(OpRecv) || !ring.Supports(OpPollAdd))
                throw new UringUnavailableException("this kernel's io_uring lacks accept, recv or poll", 0);
            var buffers = new ProvidedBuffers(ring, BufferGroup, RecvBuffers, 16 << 10);
            if (coalesce > 0 && !ring.SupportsMinWait) Engine.Warn("this kernel's io_uring has no minimum wait (6.12 and later); --coalesce is off");
            return new OffloadEngine(ring, buffers, busy, coalesce);
        }
        catch (Exception ex)
        {
            ring?.Dispose();
            Engine.Warn($"cannot start io_uring ({ex.Message}); this program's sockets stay on the kernel");
            return null;
        }
    }

    // ---- descriptors and slots (call with the lock held) ----

    private OffloadSocket? Get(int fd) => _fds[fd];

    private bool Adopt(int fd, OffloadSocket s)
    {
        if (!_fds.Name(fd, s)) return false;
        s.Names++;
        return true;
    }

    private OffloadSocket? Forget(int fd)
    {
        var s = _fds.Forget(fd);
        if (s is null) return null;
        s.Names--;
        s.Epoll.Closed(fd);
        return s;
    }

    /// <summary>Gives the socket a slot, so completions name it by slot and generation.</summary>
    private void TakeSlot(OffloadSocket s)
    {
        int slot;
        if (_freeSlots.Count > 0) slot = _freeSlots.Pop();
        else { slot = _slots.Count; _slots.Add(null); _generations.Add(0); }
        _generations[slot]++;
        _slots[slot] = s;
        s.Slot = slot;
        s.Generation = _generations[slot];
    }

    private void FreeSlot(OffloadSocket s)
    {
        if (s.Slot < 0 || _slots[s.Slot] != s) return;
        if (s is OffloadConnection c) _roomWaits.Remove(c);
        _slots[s.Slot] = null;
        _freeSlots.Push(s.Slot);
        s.Slot = -1;
    }

    private OffloadSocket? Resolve(ulong tag)
    {
        int slot = UringTag.Slot(tag);
        if ((uint)slot >= (uint)_slots.Count) return null;
        var s = _slots[slot];
        return s is not null && s.Generation == UringTag.Generation(tag) ? s : null;
    }

    // ---- the ring (call with the lock held) ----

    private void ArmAccept(OffloadListener l)
    {
        if (l.Armed || l.Accepted.Count >= OffloadListener.MaxQueued) return;
        var sqe = _ring.NextSqe();
        UringRing.PrepMultishotAccept(sqe, l.IoFd, Abi.SOCK_CLOEXEC | Abi.SOCK_NONBLOCK);
        sqe->UserData = UringTag.Make(UringTag.Accept, l.Slot, l.Generation);
        l.Armed = true;
    }

    private void ArmRecv(OffloadConnection c)
    {
        if (c.RecvArmed || c.Eof || c.RecvError != 0 || c.Closed) return;
        var sqe = _ring.NextSqe();
        UringRing.PrepRecvMultishot(sqe, c.IoFd, BufferGroup);
        sqe->UserData = UringTag.Make(UringTag.Recv, c.Slot, c.Generation);
        c.RecvArmed = true;
        c.Starved = false;
    }

    /// <summary>Queues the next send of a connection, one in flight at a time so the bytes keep their order.</summary>
    private void KickSend(OffloadConnection c)
    {
        if (c.SendInFlight) return;
        if (!MayEnter) { KickLater(c); return; } // the owner prepares it, or the flusher sends it meanwhile
        if (c.SendError != 0 || c.Output.Queued == 0)
        {
            if (c.ShutWritePending && c.SendError == 0) { c.ShutWritePending = false; Sys.Shutdown(c.IoFd, Abi.SHUT_WR); }
            if (c.Closed) FinishClose(c);
            return;
        }
        var (address, length) = c.Output.Next();
        if (length == 0) return; // a read in the ring still fills what comes next (sendfile)
        var sqe = _ring.NextSqe();
        // In the owner mode a send the socket cannot take at once ends with EAGAIN (MSG_DONTWAIT)
        // rather than wait in the ring for room: that retry would be completion work only the owner
        // runs, and an owner gone elsewhere would leave the bytes stuck, where the flusher can send them.
        UringRing.PrepSend(sqe, c.IoFd, (void*)address, (uint)length, Abi.MSG_NOSIGNAL | (SingleIssuer ? Abi.MSG_DONTWAIT : 0));
        sqe->UserData = UringTag.Make(UringTag.Send, c.Slot, c.Generation);
        c.SendInFlight = true;
        _sendsInFlight++;
    }

    /// <summary>
    /// A write queued bytes: the connection's send is prepared just before the ring is next
    /// submitted (<see cref="KickPendingSends"/>), not now. Writes between two submits become one
    /// send, and a sendfile after a write still finds the write's bytes only queued, free to go
    /// ahead of the file by one send of their own (<see cref="SendQueuedNow"/>).
    /// </summary>
    private void KickLater(OffloadConnection c)
    {
        if (c.KickPending || c.SendInFlight) return;
        c.KickPending = true;
        _kicks.Add(c);
        if (!MayEnter) WakeOwner(); // an owner asleep submits it (one away: the flusher sends it)
    }

    /// <summary>Prepares the sends that writes since the last submit asked for (before every submit and wait).</summary>
    private void KickPendingSends()
    {
        if (_kicks.Count == 0) return;
        foreach (var c in _kicks)
        {
            c.KickPending = false;
            KickSend(c);
        }
        _kicks.Clear();
    }

    private readonly List<OffloadConnection> _kicks = new();

    private void Cancel(ulong tag)
    {
        var sqe = _ring.NextSqe();
        UringRing.PrepCancel(sqe, tag, 0);
        sqe->UserData = UringTag.Make(UringTag.Close, 0, 0);
    }

    /// <summary>
    /// Takes every completion the kernel posted; returns how many concerned sockets. Completions
    /// the kernel still holds as task work are run first by an entry, unless
    /// <paramref name="runTaskWork"/> is false (the caller is about to wait in the ring, which runs them).
    /// </summary>
    private int Reap(bool byProgram = true, bool runTaskWork = true)
    {
        if (byProgram)
        {
            _programReaps++; // a count, not a clock read: this runs on every call
            if (!_sharedWaits) NoteThread();
        }
        if (SingleIssuer)
        {
            // Only the owner runs completions. The flusher takes those already posted while the
            // owner is away (OwnerAbsentTurn); the program's other threads leave them to the owner.
            if (MayEnter) _ownerCalls++;
            else if (byProgram) return 0;
            else runTaskWork = false;
        }
        // Completions the kernel holds back as task work (COOP_TASKRUN) run at an entry.
        if (runTaskWork && _ring.CqReady == 0 && _ring.TaskWorkPending) { _ring.Submit(getEvents: true); _taskRunEnters++; _emptyReadsWithoutRun = 0; }
        int events = 0;
        while (_ring.TryPeek(out var cqe))
        {
            _ring.Advance();
            _completions++;
            events += Dispatch(cqe);
        }
        // A wait by another thread may have missed these events (its wake-up was reaped here).
        if (events > 0 && SingleIssuer) { if (Volatile.Read(ref _othersWaiting) > 0) TellOthers(); }
        else if (events > 0)
        {
            // Threads that have not gone to sleep yet see the count; those asleep on their eventfd
            // (shared waits) have it written; those inside io_uring_enter's wait get a NOP.
            _wakeGen++;
            if (_sharedWaits) WakeWaiters();
            // The count and the tickets before the sleepers are read: a thread on its way into
            // io_uring_enter counts itself a sleeper first, then looks at them.
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref _ringSleepers) > 0) PostWake();
        }
        return events;
    }

    private void PostWake()
    {
        var sqe = _ring.NextSqe();
        UringRing.PrepNop(sqe);
        sqe->UserData = UringTag.Make(UringTag.Wake, 0, 0);
        _ring.Submit();
    }

    private int Dispatch(in Cqe cqe)
    {
        byte kind = UringTag.Kind(cqe.UserData);
        bool more = (cqe.Flags & CqeFMore) != 0;
        switch (kind)
        {
            case SendZcTag: return OnSendZeroCopy(cqe);
            case OwnerWake: return OwnerWoken();
            case EpollWatch:
            {
                int epfd = UringTag.Slot(cqe.UserData);
                if (_watches.ContainsKey(epfd)) _watches[epfd] = (false, true);
                return 1;
            }
            case UringTag.Accept:
            {
                if (Resolve(cqe.UserData) is not OffloadListener l)
                {
                    if (cqe.Res >= 0) Libc.Close(cqe.Res); // accepted for a listener since closed
                    return 0;
                }
                if (!more) l.Armed = false;
                if (cqe.Res >= 0) { l.Accepted.Enqueue(cqe.Res); _accepts++; }
                else if (cqe.Res != -Errno.ECANCELED && cqe.Res != -Errno.EMFILE && cqe.Res != -Errno.ENFILE) l.Error = -cqe.Res;
                l.Moved();
                // Re-armed here unless descriptors ran out (then the next accept call re-arms).
                if (!l.Armed && cqe.Res >= 0) ArmAccept(l);
                return 1;
            }
            case UringTag.Recv:
            {
                bool hasBuffer = (cqe.Flags & CqeFBuffer) != 0;
                ushort id = (ushort)(cqe.Flags >> CqeBufferShift);
                if (hasBuffer) _buffers.Took(id);
                if (Resolve(cqe.UserData) is not OffloadConnection c || c.Closed)
                {
                    if (hasBuffer) Recycle(id);
                    return 0;
                }
                if (!more) c.RecvArmed = false;
                if (cqe.Res > 0 && hasBuffer)
                {
                    _receives++;
                    c.Input.Enqueue((id, cqe.Res));
                    c.Available += cqe.Res;
                }
                else
                {
                    if (hasBuffer) Recycle(id);
                    if (cqe.Res == 0) c.Eof = true;
                    else if (cqe.Res == -Errno.ENOBUFS)
                    {
                        c.Starved = true;
                        _starved.Add(c);
                        if (_buffers.RanDry()) ArmStarved(); // more buffers in the ring now
                    }
                    else if (cqe.Res != -Errno.ECANCELED) c.RecvError = -cqe.Res;
                }
                c.Moved();
                if (!c.RecvArmed && cqe.Res > 0) ArmRecv(c);
                return 1;
            }
            case UringTag.Send:
            {
                _sendsInFlight--;
                if (Resolve(cqe.UserData) is not OffloadConnection c) return 0;
                c.SendInFlight = false;
                _sends++;
                if (cqe.Res > 0) c.Output.Sent(cqe.Res);
                else if (cqe.Res == -Errno.EAGAIN && SingleIssuer)
                {
                    ArmWritePoll(c, full: false); // the send is made again when there is room
                    _roomWaits.Add(c); // or by the flusher, if the owner is away when it comes
                    c.Moved();
                    return 1;
                }
                else if (cqe.Res < 0)
                {
                    c.SendError = -cqe.Res;
                    c.Output.Dispose();
                }
                c.Moved();
                KickSend(c);
                return 1;
            }
        }
        if (kind == FileRead) return FileReadDone(cqe);
        if (kind == WritePoll) return WritePollDone(cqe);
        return 0; // wake-ups, cancels, closes
    }

    private void Recycle(ushort id)
    {
        _buffers.Recycle(id);
        ArmStarved();
    }

    /// <summary>Buffers came back (or the ring holds more now): connections whose receive stopped for want of them start again.</summary>
    private void ArmStarved()
    {
        if (_starved.Count == 0) return;
        foreach (var c in _starved) if (c.Starved) ArmRecv(c);
        _starved.Clear();
    }

    /// <summary>One line on stderr with the engine's counts (NETLOOM_STATS=1 at exit): what a test or a user checks the offload by.</summary>
    private void Report()
    {
        if (!Engine.PrintStats) return;
        Engine.Warn($"offload: {_accepts} accepted, {_receives} receives, {_sends} sends, {_completions} completions in {_ring.Enters} io_uring_enter calls ({_waits} waits, {_taskRunEnters} to run task work, the rest submitting); {_fileReads} file reads, {_fileCloses} closes in the ring; {_buffers.Published} receive buffers in the ring, {_buffers.DryCount} times empty{(_sharedWaits ? $"; shared waits: {_sharedWaitCalls} in ppoll" : "")}{(_coalesceUs > 0 ? $"; coalescing {_coalesceUs} us" : "")}{(SingleIssuer ? $"; single issuer, {_flusherSends} sends by the flusher for an absent owner" : "")}");
        ReportZeroCopy();
    }

    /// <summary>
    /// Calls other than waits leave completions the kernel holds as task work to the next wait
    /// (coalescing, and the owner mode, where they are pending almost always under load: only the
    /// owner's entries run them, not any system call's return as with COOP_TASKRUN).
    /// </summary>
    private bool LazyTaskWork => _coalesceUs > 0 || SingleIssuer;

    // Reads that found nothing and left task work pending since the last entry (LazyTaskWork).
    private int _emptyReadsWithoutRun;

    /// <summary>
    /// Publishes and submits what is prepared (no wait). With <paramref name="runTaskWork"/> the
    /// owner mode's entry also runs the task work its kernel holds for the owner (DEFER_TASKRUN),
    /// so a cancelled multishot operation lets go of its socket now, not at the owner's next wait:
    /// a close's FIN must not wait for that (the owner may block in the kernel elsewhere first).
    /// An entry runs a bounded batch of that work (20 items twice on 6.13 and later) and the
    /// cancellation is queued behind what came before it, so entries follow while the kernel
    /// says work remains (IORING_SQ_TASKRUN), at most 64.
    /// </summary>
    private void Flush(bool runTaskWork = false)
    {
        if (!MayEnter)
        {
            if (_kicks.Count > 0 || _ring.Unsubmitted > 0) WakeOwner();
            return;
        }
        _deferredTurn = false;
        KickPendingSends();
        runTaskWork &= SingleIssuer;
        if (_ring.Unsubmitted > 0) _ring.Submit(getEvents: runTaskWork);
        for (int i = 0; runTaskWork && i < 64 && _ring.TaskWorkPending; i++)
        {
            _ring.Submit(getEvents: true);
            _taskRunEnters++;
        }
    }

    /// <summary>
    /// After the lock: submits what it published and waits in the ring for a completion, until
    /// <paramref name="deadlineNs"/> (monotonic; long.MaxValue for none). With a busy-poll budget it
    /// spins on the completion queue first. Returns 0, or -EINTR when a signal handler ran since
    /// the program's call began (<paramref name="since"/>): an io_uring_enter that submitted
    /// entries returns their count even when a handler cut its wait short, so the interposer's
    /// count of the handlers run on this thread says it instead. For a call the kernel restarts
    /// after an SA_RESTART handler (<paramref name="restartable"/>: recv, send, accept without a
    /// timeout), only a handler without SA_RESTART ends it; after the others it waits again.
    /// </summary>
    private long WaitRing(uint published, long deadlineNs, void* sigmask, ref SignalMark since, bool restartable = false)
    {
        if (!MayEnter) return WaitForOwner(deadlineNs, sigmask, ref since, restartable);
        if (_sharedWaits && !SingleIssuer) return WaitShared(published, deadlineNs, sigmask, ref since, restartable);
        try
        {
            int r;
            if (_busyPollUs > 0)
            {
                if (published > 0) { lock (_lock) _ring.Submit(); published = 0; } // submits what PrepareWait published
                if (BusyPoll(deadlineNs, ref since, restartable) is <= 0 and var spun) return spun;
            }
            // A handler that ran before the wait (while the call collected, or spun) ends it now,
            // as the kernel's wait ends at a pending signal; what this call published goes in first.
            if (since.Interrupted(restartable))
            {
                if (published > 0) lock (_lock) _ring.Submit();
                return -Errno.EINTR;
            }
            Interlocked.Increment(ref _ringSleepers); // before the check: a waker reads it after bumping the count and marking the tickets
            try
            {
                if (WokenSincePrepare(Volatile.Read(ref _wakeGen)))
                {
                    if (published > 0) lock (_lock) _ring.Submit();
                    return 0;
                }
                long left = deadlineNs == long.MaxValue ? -1 : Math.Max(0, deadlineNs - Clock.NowNs());
                Interlocked.Increment(ref _waits);
                _emptyReadsWithoutRun = 0;
                r = _ring.EnterAndWait(published, left, sigmask, _coalesceUs, CoalesceBatch);
            }
            finally { Interlocked.Decrement(ref _ringSleepers); }
            return since.EndsCall(r == -Errno.EINTR ? -Errno.EINTR : 0, restartable) ? -Errno.EINTR : 0;
        }
        finally
        {
            _ownerAsleep = false;
            if (t_ticket is { } t) t.Waiting = false;
            Interlocked.Decrement(ref _ringWaiters);
        }
    }

    /// <summary>
    /// Spins for the busy-poll budget (at most until <paramref name="deadlineNs"/>): 0 when
    /// completions came or this thread was woken, -EINTR when a handler ran, 1 when the budget ran out.
    /// </summary>
    private int BusyPoll(long deadlineNs, ref SignalMark since, bool restartable)
    {
        long spinEnd = Math.Min(deadlineNs, Clock.NowNs() + _busyPollUs * 1000L);
        while (Clock.NowNs() < spinEnd)
        {
            if (_ring.CqReady > 0 || WokenSincePrepare(Volatile.Read(ref _wakeGen))) return 0;
            if (since.Interrupted(restartable)) return -Errno.EINTR;
            Thread.SpinWait(20);
        }
        return 1;
    }

    /// <summary>
    /// <see cref="WaitRing"/> once several program threads call (see <see cref="WaitTicket"/>):
    /// submits what this call published, then sleeps in ppoll on the ring's descriptor (readable
    /// while completions wait) and this thread's eventfd, which <see cref="WakeWaiters"/> writes.
    /// </summary>
    private long WaitShared(uint published, long deadlineNs, void* sigmask, ref SignalMark since, bool restartable)
    {
        var t = t_ticket!;
        bool written = false;
        try
        {
            if (published > 0) lock (_lock) _ring.SubmitAll();
            if (_busyPollUs > 0 && BusyPoll(deadlineNs, ref since, restartable) is <= 0 and var spun) return spun;
            if (since.Interrupted(restartable)) return -Errno.EINTR;
            if (t.Woken) return 0;
            long left = deadlineNs == long.MaxValue ? -1 : Math.Max(0, deadlineNs - Clock.NowNs());
            // Without an eventfd (none could be had) it looks again every 10 ms.
            if (t.Fd < 0 && (left < 0 || left > 10_000_000)) left = 10_000_000;
            Interlocked.Increment(ref _sharedWaitCalls);
            _emptyReadsWithoutRun = 0;
            PollFd* p = stackalloc PollFd[2];
            p[0] = new PollFd { Fd = _ring.Fd, Events = Abi.POLLIN };
            p[1] = new PollFd { Fd = t.Fd, Events = Abi.POLLIN };
            TimeSpec ts = TimeSpec.FromNanoseconds(Math.Max(0, left));
            int r = Sys.PPoll(p, t.Fd >= 0 ? 2ul : 1ul, left < 0 ? null : &ts, sigmask);
            int err = Libc.Errno;
            written = t.Fd >= 0 && p[1].Revents != 0;
            if (r < 0) return since.EndsCall(err == Errno.EINTR ? -Errno.EINTR : 0, restartable) ? -Errno.EINTR : 0;
            return since.EndsCall(0, restartable) ? -Errno.EINTR : 0;
        }
        finally
        {
            EndTicketWait(t, written);
            Interlocked.Decrement(ref _ringWaiters);
        }
    }

    /// <summary>
    /// A sleep beside the ring (a shared wait, a poll's) ended: its ticket stops waiting, and a
    /// wake-up the sleep saw written to its eventfd is read. A write that lands after the sleep is read by the next sleep
    /// that sees it: going by <see cref="WaitTicket.Woken"/> instead, read without the lock, a
    /// late write stayed unread and every later sleep returned at once.
    /// </summary>
    private static void EndTicketWait(WaitTicket? ticket, bool written)
    {
        if (ticket is null) return;
        ticket.Waiting = false;
        ulong drained;
        if (written) _ = Libc.Read(ticket.Fd, &drained, sizeof(ulong));
    }

    /// <summary>
    /// (Lock held, shared waits.) Completions taken here concerned sockets: writes the eventfd of
    /// each other waiting thread whose epoll set they made ready, or that waits on any socket.
    /// </summary>
    private void WakeWaiters()
    {
        var mine = t_ticket;
        foreach (var t in _tickets)
        {
            if (t == mine || !t.Waiting || t.Woken || !Concerns(t)) continue;
            t.Woken = true;
            ulong one = 1;
            if (t.Fd >= 0) _ = Libc.Write(t.Fd, &one, sizeof(ulong));
        }
    }

    private bool Concerns(WaitTicket t) =>
        t.EpollFd < 0 ||
        (_epolls.TryGetValue(t.EpollFd, out var set) && set.Listed > 0) ||
        (_watches.TryGetValue(t.EpollFd, out var w) && w.Ready);

    /// <summary>(Lock held.) Lists this thread's ticket, dropping those of threads not waiting once there are many (threads come and go).</summary>
    private WaitTicket Ticket()
    {
        var t = t_ticket ??= new WaitTicket();
        if (t.Listed) return t;
        if (_tickets.Count >= 64)
        {
            foreach (var old in _tickets) if (!old.Waiting) old.Listed = false;
            _tickets.RemoveAll(old => !old.Listed);
        }
        _tickets.Add(t);
        t.Listed = true;
        return t;
    }

    /// <summary>(Lock held.) This thread waits from now on, on <paramref name="epfd"/>'s set (-1: on any socket): wake-ups may find it.</summary>
    private WaitTicket ArmTicket(int epfd)
    {
        var t = Ticket();
        t.SeenGen = _wakeGen;
        t.EpollFd = epfd;
        t.Woken = false;
        t.Waiting = true;
        return t;
    }

    /// <summary>(Lock held.) Notes the calling program thread; a second one makes every wait from now on shared.</summary>
    private void NoteThread()
    {
        int id = Environment.CurrentManagedThreadId;
        if (_soleThread == 0) _soleThread = id;
        else if (id != _soleThread) _sharedWaits = true;
    }

    /// <summary>Under the lock, before leaving it to wait: counts this thread as a waiter and publishes the prepared entries.</summary>
    private uint PrepareWait(int epfd = -1)
    {
        if (!MayEnter) { PrepareOtherWait(); return 0; }
        if (SingleIssuer) { ArmOwnerWake(); _ownerAsleep = true; }
        ArmTicket(epfd);
        Interlocked.Increment(ref _ringWaiters);
        _deferredTurn = false;
        KickPendingSends();
        return _ring.Publish();
    }

    /// <summary>
    /// Progress when the program does not wait: every millisecond while operations are queued or in
    /// flight (every 20 ms otherwise), submit what is prepared and take completions, so a reply the
    /// program wrote before it went computing still leaves. Its signals are blocked (it starts
    /// while the interposer attaches the engine).
    /// </summary>
    private void Flusher()
    {
        while (!_exiting)
        {
            bool busy = true;
            try
            {
                lock (_lock) busy = SingleIssuer ? OwnerModeTurn() : FlusherTurn();
            }
            catch (Exception e)
            {
                // This thread must not end the program (an exception here would): say it, go on.
                if (Interlocked.Increment(ref _flusherFailures) <= 3) Engine.Warn($"the offload engine's flusher: {e.GetType().Name}: {e.Message}");
            }
            Thread.Sleep(busy ? 1 : 20);
        }
    }

    /// <summary>One turn of the flusher (lock held); true while operations are queued or in flight.</summary>
    private int _flusherFailures;

    private bool FlusherTurn()
    {
        // A program thread that drove the ring within the last millisecond, or waits in it
        // now, takes its own completions: taking them here would only cost it a wake-up.
        bool driven = Volatile.Read(ref _ringWaiters) > 0 || _programReaps != _flusherSawReaps;
        _flusherSawReaps = _programReaps;
        if (!driven) Reap(byProgram: false);
        Flush();
        bool busy = _ring.Unsubmitted > 0 || _kicks.Count > 0 || _sendsInFlight > 0 || _readsInFlight > 0 || _closing.Count > 0;
        if (_closing.Count > 0 && _ring.Unsubmitted == 0) PruneClosing();
        return busy;
    }

    // How many times program threads took completions, and that count at the flusher's last turn
    // (so "driven since the last turn" costs no clock read per call); sends in flight (for the
    // flusher and exit).
    private long _programReaps, _flusherSawReaps;
    private int _sendsInFlight;

    /// <summary>Bytes are queued or in flight on some connection (every queued byte has a send in flight, or its connection failed).</summary>
    private bool HasOutstandingSends() => _sendsInFlight > 0 || _readsInFlight > 0 || _kicks.Count > 0;
}
