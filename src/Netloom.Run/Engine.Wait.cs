using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>
/// poll, select and epoll over any mix of Netloom and kernel descriptors. The Netloom sockets are
/// checked first, under the stack lock; then the kernel's with a zero timeout; and when nothing is
/// ready the thread sleeps in one ppoll over the kernel descriptors and its own wake-up eventfd,
/// so whichever side moves first wakes it (Onload's order: user level first, then the kernel,
/// then block). A wait over Netloom sockets only sleeps on the port itself when it can
/// (<see cref="SleepOnPort"/>), so the frames wake the thread that reads them.
/// </summary>
internal sealed unsafe partial class Engine
{
    public long Poll(PollFd* fds, ulong count, long timeoutNs, void* sigmask)
    {
        if (count > 1 << 20) return -Errno.EINVAL;
        int n = (int)count;
        // The kernel's part: its descriptors, and a last slot for this thread's eventfd.
        int kernelCount = 0;
        for (int i = 0; i < n; i++) if (!IsOurs(fds[i].Fd)) kernelCount++;
        PollFd* small = stackalloc PollFd[256];
        PollFd* kernel = kernelCount < 256 ? small : (PollFd*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)(kernelCount + 1), (nuint)sizeof(PollFd));
        try
        {
            int k = 0;
            for (int i = 0; i < n; i++) if (!IsOurs(fds[i].Fd)) kernel[k++] = fds[i];
            var w = Waiter.Current;
            long deadline = timeoutNs < 0 ? long.MaxValue : Clock.NowNs() + timeoutNs;
            var since = SignalMark.Now;
            while (true)
            {
                int ready;
                lock (Lock)
                {
                    Advance();
                    ready = CheckOurs(fds, n);
                    if (ready == 0 && timeoutNs != 0 && w is not null && Clock.NowNs() < deadline) Register(w, SoleSocket(fds, n));
                }
                bool sleeping = w is { Registered: true };
                if (sleeping && k == 0 && SleepOnPort(w!, deadline, sigmask, -1) is { } slept)
                {
                    // Only Netloom sockets: the thread slept on the port itself.
                    Unregister(w!);
                    if (slept < 0 || since.Interrupted(false)) return -Errno.EINTR; // a handler ran, maybe as the sleep timed out
                    if (Clock.NowNs() >= deadline) { lock (Lock) { Advance(); return CheckOurs(fds, n); } }
                    continue;
                }
                // With something ready (or nothing to wait for) the kernel's descriptors are only looked at.
                long waitNs = sleeping ? (deadline == long.MaxValue ? -1 : Math.Max(0, deadline - Clock.NowNs())) : 0;
                int slots = k;
                if (sleeping && since.Interrupted(false)) { Unregister(w!); return -Errno.EINTR; } // a handler ran during the call
                if (sleeping) { kernel[slots++] = new PollFd { Fd = w!.Fd, Events = Abi.POLLIN }; BeginEventfdSleep(); }
                int r = KernelPoll(kernel, slots, waitNs, sleeping ? sigmask : null);
                if (sleeping) { EndEventfdSleep(); Unregister(w!); }
                if (r < 0) return r;
                int kernelReady = 0;
                for (int i = 0, j = 0; i < n; i++)
                {
                    if (IsOurs(fds[i].Fd)) continue;
                    fds[i].Revents = kernel[j++].Revents;
                    if (fds[i].Revents != 0) kernelReady++;
                }
                if (sleeping && kernel[k].Revents != 0) w!.Drain();
                if (ready + kernelReady > 0 || !sleeping) return ready + kernelReady;
                if (Clock.NowNs() >= deadline) return 0;
                // Woken by a Netloom socket: look again (a spurious wake-up just loops).
            }
        }
        finally
        {
            if (kernelCount >= 256) System.Runtime.InteropServices.NativeMemory.Free(kernel);
        }
    }

    private bool IsOurs(int fd) => Get(fd) is not null;

    /// <summary>Fills revents for the Netloom entries; the count of those ready. Call with the lock held.</summary>
    private int CheckOurs(PollFd* fds, int n)
    {
        int ready = 0;
        for (int i = 0; i < n; i++)
        {
            if (Get(fds[i].Fd) is not { } s) continue;
            short now = s.Readiness();
            short want = (short)(fds[i].Events | Abi.POLLERR | Abi.POLLHUP);
            if ((fds[i].Events & Abi.POLLRDNORM) != 0 && (now & Abi.POLLIN) != 0) now |= Abi.POLLRDNORM;
            if ((fds[i].Events & Abi.POLLWRNORM) != 0 && (now & Abi.POLLOUT) != 0) now |= Abi.POLLWRNORM;
            fds[i].Revents = (short)(now & want);
            if (fds[i].Revents != 0) ready++;
        }
        return ready;
    }

    /// <summary>
    /// The one Netloom socket a poll waits on, when there is exactly one (a client's poll before
    /// its recv): only that socket's events need wake it. Null for several (any event wakes it).
    /// </summary>
    private RunSocket? SoleSocket(PollFd* fds, int n)
    {
        RunSocket? sole = null;
        for (int i = 0; i < n; i++)
        {
            if (Get(fds[i].Fd) is not { } s || s == sole) continue;
            if (sole is not null) return null;
            sole = s;
        }
        return sole;
    }

    /// <summary>ppoll on kernel descriptors; -EINTR when a signal came.</summary>
    private static int KernelPoll(PollFd* fds, int n, long timeoutNs, void* sigmask)
    {
        if (n == 0 && timeoutNs == 0) return 0;
        TimeSpec ts = TimeSpec.FromNanoseconds(Math.Max(0, timeoutNs));
        int r = Sys.PPoll(fds, (ulong)n, timeoutNs < 0 ? null : &ts, sigmask);
        return r < 0 ? -Libc.Errno : r;
    }

    public long Select(int nfds, ulong* read, ulong* write, ulong* except, long timeoutNs, void* sigmask) =>
        SelectAdapter.Select(this, nfds, read, write, except, timeoutNs, sigmask);

    public long EpollCtl(int epfd, int op, int fd, EpollEvent* ev)
    {
        if (op != Abi.EPOLL_CTL_DEL && ev is null) return -Errno.EFAULT;
        if (epfd == fd) return -Errno.EINVAL;
        lock (Lock)
        {
            if (Get(fd) is not { } s) return -Errno.EBADF;
            var set = GetOrAddEpoll(epfd);
            long r = set.Control(op, fd, s, ev is null ? 0 : ev->Events, ev is null ? 0 : ev->Data);
            if (r == 0 && op == Abi.EPOLL_CTL_ADD) MarkEpoll(epfd, true);
            // Another thread may sleep on the set: an entry made ready here wakes it, as the kernel's would.
            if (r == 0 && op != Abi.EPOLL_CTL_DEL && set.Listed > 0) WakeSleepers(set);
            return r;
        }
    }

    public long EpollWait(int epfd, EpollEvent* events, int max, long timeoutNs, void* sigmask)
    {
        if (max <= 0 || events is null) return -Errno.EINVAL;
        var w = Waiter.Current;
        long deadline = timeoutNs < 0 ? long.MaxValue : Clock.NowNs() + timeoutNs;
        var since = SignalMark.Now;
        PollFd* p = stackalloc PollFd[2];
        while (true)
        {
            int n = 0;
            bool sleeping = false;
            lock (Lock)
            {
                Advance();
                if (GetEpoll(epfd) is { } set) n = set.Collect(events, max);
            }
            if (n < max && EpollHasKernelMembers(epfd))
            {
                int k = EpollSet.AskKernel(epfd, events + n, max - n);
                if (k > 0) n += k;
                else if (k < 0 && n == 0) return -Libc.Errno;
            }
            if (n > 0 || timeoutNs == 0 || w is null) return n;
            lock (Lock)
            {
                // Nothing was ready: register, then look at the Netloom members once more so an
                // event between the first look and the registration is not lost.
                var waitedOn = GetEpoll(epfd);
                Register(w, waitedOn); // no Netloom member yet: any socket's event wakes it
                sleeping = true;
                if (waitedOn is not null) n = waitedOn.Collect(events, max);
            }
            if (n > 0) { Unregister(w); return n; }
            if (SleepOnPort(w, deadline, sigmask, EpollHasKernelMembers(epfd) ? epfd : -1) is { } slept)
            {
                // The thread slept on the port itself; the owner thread watched the kernel members.
                Unregister(w);
                if (slept < 0 || since.Interrupted(false)) return -Errno.EINTR; // a handler ran, maybe as the sleep timed out
                if (Clock.NowNs() >= deadline) timeoutNs = 0; // one last look, then return
                continue;
            }
            if (since.Interrupted(false)) { Unregister(w); return -Errno.EINTR; } // a handler ran during the call
            long left = deadline == long.MaxValue ? -1 : Math.Max(0, deadline - Clock.NowNs());
            p[0] = new PollFd { Fd = epfd, Events = Abi.POLLIN };
            p[1] = new PollFd { Fd = w.Fd, Events = Abi.POLLIN };
            BeginEventfdSleep();
            int r = KernelPoll(p, 2, left, sigmask);
            EndEventfdSleep();
            if (sleeping) Unregister(w);
            if (p[1].Revents != 0) w.Drain();
            if (r < 0) return r;
            if (r == 0 && Clock.NowNs() >= deadline) return 0;
        }
    }

    public long EpollClose(int epfd)
    {
        lock (Lock)
        {
            RemoveEpoll(epfd);
            MarkEpoll(epfd, false);
        }
        return 0;
    }
}
