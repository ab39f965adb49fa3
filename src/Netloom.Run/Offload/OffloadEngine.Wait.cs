using Netloom.Offload;
using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>
/// epoll, poll and select in the offload engine. epoll_wait is one io_uring_enter that submits
/// what is queued and waits for a completion; an epoll set with kernel members (a pipe, an
/// eventfd, a timerfd beside the offloaded sockets) gets a poll on its descriptor armed in the
/// same ring, so either side wakes that one wait.
/// </summary>
internal sealed unsafe partial class OffloadEngine
{
    public long EpollCtl(int epfd, int op, int fd, EpollEvent* ev)
    {
        if (op != Abi.EPOLL_CTL_DEL && ev is null) return -Errno.EFAULT;
        if (epfd == fd) return -Errno.EINVAL;
        lock (_lock)
        {
            if (Get(fd) is not { } s) return -Errno.EBADF;
            if (!_epolls.TryGetValue(epfd, out var set)) _epolls[epfd] = set = new EpollSet(epfd);
            long r = set.Control(op, fd, s, ev is null ? 0 : ev->Events, ev is null ? 0 : ev->Data);
            if (r == 0 && op == Abi.EPOLL_CTL_ADD) Engine.Host->MarkEpoll(epfd, 1);
            // Another thread may be asleep on this set (a dispatcher adding a connection that already
            // has bytes to a worker's set): an entry made ready here wakes it, as the kernel's would.
            if (r == 0 && op != Abi.EPOLL_CTL_DEL && _sharedWaits && set.Listed > 0) WakeWaiters();
            return r;
        }
    }

    public long EpollWait(int epfd, EpollEvent* events, int max, long timeoutNs, void* sigmask)
    {
        if (max <= 0 || events is null) return -Errno.EINVAL;
        // The clock is read only when the call must wait (a busy server's calls find events at once).
        long deadline = timeoutNs < 0 ? long.MaxValue : 0;
        var since = SignalMark.Now;
        while (true)
        {
            uint published;
            lock (_lock)
            {
                // With coalescing, completions still held as task work are left to the wait below,
                // whose one entry runs them, submits and collects more: not an entry for each.
                Reap(runTaskWork: !LazyTaskWork || timeoutNs == 0);
                int n = _epolls.TryGetValue(epfd, out var set) ? set.Collect(events, max) : 0;
                bool kernel = Engine.Host->EpollKernel(epfd) != 0;
                var watch = _watches.GetValueOrDefault(epfd);
                if (kernel && n < max && (watch.Ready || !watch.Armed))
                {
                    // Ask the kernel only when its poll said so, or when no poll is armed to say it.
                    int k = EpollSet.AskKernel(epfd, events + n, max - n);
                    if (k < 0 && n == 0) { Flush(); return -Libc.Errno; }
                    if (k > 0) n += k;
                    _watches[epfd] = (watch.Armed, k == max - n && k > 0);
                }
                if (n > 0 && DeferSubmission()) return n;
                if (n > 0 || timeoutNs == 0) { Flush(); return n; }
                if (deadline == 0) deadline = Clock.NowNs() + timeoutNs;
                else if (deadline != long.MaxValue && Clock.NowNs() >= deadline) { Flush(); return n; }
                if (kernel && !_watches.GetValueOrDefault(epfd).Armed)
                {
                    var sqe = _ring.NextSqe();
                    UringRing.PrepPollAdd(sqe, epfd, (uint)Abi.POLLIN);
                    sqe->UserData = UringTag.Make(EpollWatch, epfd, 0);
                    _watches[epfd] = (true, false);
                }
                published = PrepareWait(epfd);
            }
            if (WaitRing(published, deadline, sigmask, ref since) < 0) return -Errno.EINTR;
        }
    }

    /// <summary>
    /// With coalescing, an epoll_wait that finds events at once leaves the sends queued since the
    /// last one for the next call (which submits them, waiting or not), unless they fill a batch:
    /// one entry into the kernel then carries two loop turns' sends. Never twice in a row, so a
    /// reply waits at most one turn of the program's loop (and the flusher's millisecond).
    /// </summary>
    private bool DeferSubmission()
    {
        if (_coalesceUs == 0 || _deferredTurn || _kicks.Count + _ring.Unsubmitted >= CoalesceBatch) return false;
        _deferredTurn = true;
        return true;
    }

    // The last epoll_wait left its turn's sends queued; cleared by every submit (Flush, a wait).
    private bool _deferredTurn;

    public long EpollClose(int epfd)
    {
        lock (_lock)
        {
            if (_epolls.Remove(epfd, out var set)) set.Clear();
            if (_watches.Remove(epfd, out var w) && w.Armed) Cancel(UringTag.Make(EpollWatch, epfd, 0));
            Engine.Host->MarkEpoll(epfd, 0);
            Flush();
        }
        return 0;
    }

    public long Select(int nfds, ulong* read, ulong* write, ulong* except, long timeoutNs, void* sigmask) =>
        SelectAdapter.Select(this, nfds, read, write, except, timeoutNs, sigmask);

    /// <summary>
    /// poll over any mix: the offloaded sockets from the ring's completions, the kernel's with a
    /// zero timeout; then one ppoll over the kernel descriptors and the ring's own descriptor
    /// (readable when completions wait), or, with only offloaded sockets, a wait in the ring.
    /// </summary>
    public long Poll(PollFd* fds, ulong count, long timeoutNs, void* sigmask)
    {
        if (count > 1 << 20) return -Errno.EINVAL;
        int n = (int)count;
        long deadline = timeoutNs < 0 ? long.MaxValue : Clock.NowNs() + timeoutNs;
        var since = SignalMark.Now;
        int kernelCount = 0;
        lock (_lock) for (int i = 0; i < n; i++) if (Get(fds[i].Fd) is null) kernelCount++;
        PollFd* kernel = (PollFd*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)(kernelCount + 2), (nuint)sizeof(PollFd)); // and the ring's descriptor, or the owner's two eventfds
        try
        {
            while (true)
            {
                int ready = 0, k = 0;
                uint published = 0;
                WaitTicket? ticket = null;
                lock (_lock)
                {
                    Reap();
                    for (int i = 0; i < n; i++)
                    {
                        if (Get(fds[i].Fd) is not { } s) { kernel[k++] = fds[i]; continue; }
                        short now = s.Readiness();
                        if ((fds[i].Events & Abi.POLLRDNORM) != 0 && (now & Abi.POLLIN) != 0) now |= Abi.POLLRDNORM;
                        if ((fds[i].Events & Abi.POLLWRNORM) != 0 && (now & Abi.POLLOUT) != 0) now |= Abi.POLLWRNORM;
                        fds[i].Revents = (short)(now & (fds[i].Events | Abi.POLLERR | Abi.POLLHUP));
                        if (fds[i].Revents != 0) ready++;
                    }
                    // A sleep over kernel descriptors beside the ring's: once other threads take
                    // completions too, one may take this poll's before the sleep begins, and the
                    // ring's descriptor is then quiet. Waiting is marked before the lock is left,
                    // so such a thread writes this thread's eventfd, which the sleep also watches.
                    if (ready == 0 && k > 0 && timeoutNs != 0 && _sharedWaits && !SingleIssuer)
                    {
                        ticket = ArmTicket(-1);
                    }
                    Flush();
                }
                bool sleep = ready == 0 && timeoutNs != 0 && Clock.NowNs() < deadline;
                if (sleep && since.Interrupted(false)) { EndTicketWait(ticket, false); return -Errno.EINTR; } // a handler ran during the call (another thread's 10 ms slices included)
                int slots = k, ticketSlot = -1;
                // What wakes this sleep for the ring: its descriptor, readable when completions wait;
                // in the owner mode the eventfd the ring signals (completions the owner must run
                // first do not make the descriptor readable), and for the owner's other threads
                // nothing (they look again every 10 ms, after the owner's turns).
                // The owner also sleeps on the eventfd other threads write when they leave it work.
                bool ownerSleeps = sleep && k > 0 && SingleIssuer && MayEnter, runFirst = false;
                if (ownerSleeps)
                {
                    lock (_lock)
                    {
                        _ring.EventFdEnabled = true;
                        runFirst = _ring.CqReady > 0 || _ring.TaskWorkPending || _kicks.Count > 0 || _ring.Unsubmitted > 0;
                        _ownerAsleep = !runFirst;
                    }
                    kernel[slots++] = new PollFd { Fd = _readyFd, Events = Abi.POLLIN };
                    kernel[slots++] = new PollFd { Fd = _wakeFd, Events = Abi.POLLIN };
                }
                else if (sleep && k > 0 && !SingleIssuer)
                {
                    kernel[slots++] = new PollFd { Fd = _ring.Fd, Events = Abi.POLLIN };
                    if (ticket is { Fd: >= 0 }) { ticketSlot = slots; kernel[slots++] = new PollFd { Fd = ticket.Fd, Events = Abi.POLLIN }; }
                }
                int kernelReady = 0;
                if (k > 0)
                {
                    long left = !sleep || runFirst ? 0 : deadline == long.MaxValue ? -1 : Math.Max(0, deadline - Clock.NowNs());
                    if (sleep && !MayEnter && (left < 0 || left > 10_000_000)) left = 10_000_000;
                    TimeSpec ts = TimeSpec.FromNanoseconds(Math.Max(0, left));
                    int r = Sys.PPoll(kernel, (ulong)slots, left < 0 ? null : &ts, sleep ? sigmask : null);
                    int pollErrno = Libc.Errno;
                    EndTicketWait(ticket, ticketSlot >= 0 && kernel[ticketSlot].Revents != 0);
                    if (ownerSleeps)
                    {
                        _ownerAsleep = false;
                        _ring.EventFdEnabled = false;
                        ulong signalled;
                        _ = Libc.Read(_readyFd, &signalled, sizeof(ulong));
                        if (kernel[slots - 1].Revents != 0) _ = Libc.Read(_wakeFd, &signalled, sizeof(ulong));
                    }
                    if (r < 0) return -pollErrno;
                    for (int i = 0, j = 0; i < n; i++)
                    {
                        lock (_lock) if (Get(fds[i].Fd) is not null) continue;
                        fds[i].Revents = kernel[j++].Revents;
                        if (fds[i].Revents != 0) kernelReady++;
                    }
                }
                else if (sleep)
                {
                    lock (_lock) published = PrepareWait();
                    if (WaitRing(published, deadline, sigmask, ref since) < 0) return -Errno.EINTR;
                }
                if (ready + kernelReady > 0 || !sleep) return ready + kernelReady;
                if (Clock.NowNs() >= deadline) return 0;
            }
        }
        finally { System.Runtime.InteropServices.NativeMemory.Free(kernel); }
    }
}
