using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>The socket calls, as the interposer hands them over: look the socket up, try, and wait when it blocks.</summary>
internal sealed unsafe partial class Engine
{
    public long Socket(int domain, int type, int protocol)
    {
        int kind = type & 0xF;
        bool stream = kind == Abi.SOCK_STREAM, dgram = kind == Abi.SOCK_DGRAM;
        // AF_INET6 only while IPv6 is on (NETLOOM_IP6=off leaves such sockets to the kernel).
        if (!(domain == Abi.AF_INET || (domain == Abi.AF_INET6 && Config.Ipv6)) || !(stream || dgram)) return Abi.Kernel;
        if (protocol != 0 && protocol != (stream ? Abi.IPPROTO_TCP : Abi.IPPROTO_UDP)) return Abi.Kernel; // ICMP ping sockets, SCTP
        int fd = NewPlaceholder(domain, type);
        if (fd < 0) return -Libc.Errno;
        if (fd >= MaxFd) return fd; // beyond the interposer's table: it stays a kernel socket
        lock (Lock)
        {
            RunSocket s = stream ? new TcpRunSocket(this, domain) : new UdpRunSocket(this, domain);
            s.NonBlocking = (type & Abi.SOCK_NONBLOCK) != 0;
            Adopt(fd, s);
        }
        return fd;
    }

    public long Close(int fd)
    {
        TcpRunSocket? lingering = null;
        lock (Lock)
        {
            Advance();
            var s = Forget(fd);
            if (s is null || s.Names > 0) return 0;
            s.Close();
            if (s is TcpRunSocket { Draining: true } closing) Closing(closing);
            if (s is TcpRunSocket { LingerWaiting: true } t) lingering = t;
        }
        if (lingering is not null) Linger(lingering);
        return 0;
    }

    /// <summary>
    /// Connections the program closed that still have data or a FIN in flight, for exit to wait
    /// on. Bounded: finished ones are dropped whenever the set grows past 64.
    /// </summary>
    private readonly HashSet<RunSocket> _closing = new();

    private void Closing(TcpRunSocket s)
    {
        if (_closing.Count >= 64) _closing.RemoveWhere(static c => c is TcpRunSocket { Draining: false });
        _closing.Add(s);
    }

    /// <summary>
    /// The program is exiting. As the kernel does for descriptors a process leaves open, every
    /// socket is closed: connections send their queued data and a FIN, which the stack gets up to
    /// NETLOOM_EXIT_LINGER_MS (default 2000) to deliver while nothing else runs it; then the stack
    /// stops and the port is released (a shm port's file removed, a capture flushed).
    /// </summary>
    public void Exit()
    {
        var open = new HashSet<RunSocket>(_closing);
        lock (Lock)
        {
            Advance();
            for (int fd = 0; fd < _fds.Length; fd++)
                if (_fds.Forget(fd) is { } s && open.Add(s)) s.Close();
        }
        int lingerMs = Engine.ExitLingerMs;
        long deadline = Clock.NowNs() + lingerMs * 1_000_000L;
        while (Clock.NowNs() < deadline)
        {
            bool draining = false;
            lock (Lock)
            {
                Advance();
                foreach (var s in open) if (s is TcpRunSocket { Draining: true }) { draining = true; break; }
            }
            if (!draining) break;
            Thread.Sleep(1);
        }
        if (PrintStats) lock (Lock) Warn(StatsLine());
        ClearPortSleeper();
        Stack.Dispose();
        _capture?.Dispose();
    }

    /// <summary>
    /// NETLOOM_STATS=1: what the stack and its port did, one line at exit: frames, TCP segments and
    /// retransmissions, the stack's drops by reason, the port's ring counters, and for an xdp port
    /// the kernel's own (frames it dropped with the fill ring empty or the RX ring full). Call with
    /// the lock held.
    /// </summary>
    private string StatsLine()
    {
        var c = Interface.Counters;
        var line = new System.Text.StringBuilder($"stack: {c.FramesIn} frames in, {c.FramesOut} out; tcp {c.TcpIn} segments in, {c.TcpOut} out, {c.TcpRetransmits} retransmitted");
        foreach (var (reason, count) in c.NonZeroDrops()) line.Append($"; dropped {count} {reason}");
        var rx = _port.Rx.GetCounters();
        var tx = _port.Tx.GetCounters();
        line.Append($"; port rx {rx.Packets} ({rx.Drops} dropped, {rx.Invalid} invalid), tx {tx.Packets} ({tx.Drops} dropped, {tx.Invalid} invalid)");
        if (_port is Netloom.Rings.XdpPort x)
        {
            x.ReadKernelStatistics();
            var k = x.KernelStatistics;
            line.Append($"; xdp {x.Mode}: kernel dropped {k.RxDropped}, rx ring full {k.RxRingFull}, fill ring empty {k.RxFillRingEmptyDescs}, tx ring empty {k.TxRingEmptyDescs}, invalid rx {k.RxInvalidDescs} tx {k.TxInvalidDescs}");
        }
        return line.ToString();
    }

    /// <summary>SO_LINGER with a timeout: close waits for the peer to acknowledge the data, then resets if it did not.</summary>
    private void Linger(TcpRunSocket s)
    {
        long deadline = Deadline(s.LingerSeconds * 1_000_000_000L);
        var w = Waiter.Current;
        while (w is not null)
        {
            lock (Lock)
            {
                Advance();
                if (!s.LingerWaiting) return;
                if (Clock.NowNs() >= deadline) { s.LingerExpired(); return; }
                Register(w, s);
            }
            if (Sleep(w, deadline, null) < 0) return; // a signal ends the wait; the connection goes on closing
        }
    }

    public long Dup(int oldfd, int newfd)
    {
        lock (Lock)
        {
            var s = Get(oldfd);
            if (s is null) return -Errno.EBADF;
            if (Get(newfd) is not null) Forget(newfd);
            return Adopt(newfd, s) ? newfd : -Errno.EMFILE;
        }
    }

    public long Bind(int fd, byte* addr, uint len)
    {
        lock (Lock) return Get(fd) is { } s ? s.Bind(addr, len, fd) : -Errno.EBADF;
    }

    public long Listen(int fd, int backlog)
    {
        lock (Lock)
        {
            Advance();
            return Get(fd) is { } s ? s.Listen(backlog) : -Errno.EBADF;
        }
    }

    public long Accept(int fd, byte* addr, uint* len, int flags)
    {
        if ((flags & ~(Abi.SOCK_NONBLOCK | Abi.SOCK_CLOEXEC)) != 0) return -Errno.EINVAL;
        var w = Waiter.Current;
        long deadline = long.MaxValue;
        var since = SignalMark.Now;
        while (true)
        {
            lock (Lock)
            {
                Advance();
                if (Get(fd) is not { } s) return -Errno.EBADF;
                long r = s.Accept(addr, len, flags);
                if (r != -Errno.EAGAIN || s.NonBlocking || w is null) return r;
                if (deadline == long.MaxValue) deadline = Deadline(s.ReceiveTimeoutNs);
                if (Clock.NowNs() >= deadline) return -Errno.EAGAIN;
                Register(w, s);
            }
            if (since.EndsCall(Sleep(w, deadline, null), restartable: deadline == long.MaxValue)) return -Errno.EINTR;
        }
    }

    public long Connect(int fd, byte* addr, uint len)
    {
        SettleIpv6(fd);
        var w = Waiter.Current;
        var since = SignalMark.Now;
        long deadline;
        lock (Lock)
        {
            Advance();
            if (Get(fd) is not { } s) return -Errno.EBADF;
            long r = s.Connect(addr, len, fd);
            // EALREADY: an earlier connect was interrupted; a blocking one waits for the same handshake, as the kernel's.
            if (r != -Errno.EINPROGRESS && (r != -Errno.EALREADY || s.NonBlocking)) return r;
            if (s.NonBlocking || w is null) return r;
            deadline = Deadline(s.SendTimeoutNs);
        }
        while (true) // a blocking connect waits for the handshake
        {
            lock (Lock)
            {
                Advance();
                if (Get(fd) is not TcpRunSocket t) return -Errno.EBADF;
                long outcome = t.ConnectOutcome();
                if (outcome != -Errno.EINPROGRESS) return outcome;
                if (Clock.NowNs() >= deadline) return -Errno.EINPROGRESS;
                Register(w, t);
            }
            // Interrupted, the handshake goes on, as the kernel's: a later connect waits for it or reports it.
            if (since.EndsCall(Sleep(w, deadline, null), restartable: deadline == long.MaxValue)) return -Errno.EINTR;
        }
    }

    public long Shutdown(int fd, int how)
    {
        lock (Lock)
        {
            Advance();
            return Get(fd) is { } s ? s.Shutdown(how) : -Errno.EBADF;
        }
    }

    public long GetSockName(int fd, byte* addr, uint* len)
    {
        lock (Lock) return Get(fd) is { } s ? s.GetSockName(addr, len) : -Errno.EBADF;
    }

    public long GetPeerName(int fd, byte* addr, uint* len)
    {
        lock (Lock) return Get(fd) is { } s ? s.GetPeerName(addr, len) : -Errno.EBADF;
    }

    public long RecvMsg(int fd, MsgHdr* msg, int flags)
    {
        if (msg is null) return -Errno.EFAULT;
        if ((flags & Abi.MSG_ERRQUEUE) != 0)
        {
            lock (Lock)
            {
                Advance();
                return Get(fd) is { } q ? q.ReadErrorQueue(msg) : -Errno.EBADF;
            }
        }
        var w = Waiter.Current;
        long deadline = long.MaxValue;
        var since = SignalMark.Now;
        bool waitAll = (flags & Abi.MSG_WAITALL) != 0 && (flags & (Abi.MSG_PEEK | Abi.MSG_DONTWAIT)) == 0;
        long got = 0, want = 0;
        // MSG_WAITALL reads into what is left of the iovecs, so it works on a private copy of them.
        IoVec* saved = msg->Iov;
        nuint savedCount = msg->IovLength;
        int n = (int)Math.Min(savedCount, 1024);
        IoVec* iov = stackalloc IoVec[waitAll ? Math.Max(n, 1) : 1];
        if (waitAll)
        {
            for (int i = 0; i < n; i++) iov[i] = saved[i];
            msg->Iov = iov;
            msg->IovLength = (nuint)n;
            for (int i = 0; i < n; i++) want += (long)iov[i].Length;
        }
        try
        {
            while (true)
            {
                lock (Lock)
                {
                    Advance();
                    if (Get(fd) is not { } s) return got > 0 ? got : -Errno.EBADF;
                    long r = s.TryReceive(msg, flags);
                    if (r > 0 && waitAll && s.Type == Abi.SOCK_STREAM)
                    {
                        got += r;
                        if (got >= want) return got;
                        IoVecs.Consume(msg, r);
                        continue;
                    }
                    if (r == 0 && got > 0) return got;
                    if (r != -Errno.EAGAIN) return r < 0 && got > 0 ? got : r;
                    if (s.NonBlocking || (flags & Abi.MSG_DONTWAIT) != 0 || w is null) return got > 0 ? got : r;
                    if (deadline == long.MaxValue) deadline = Deadline(s.ReceiveTimeoutNs);
                    if (Clock.NowNs() >= deadline) return got > 0 ? got : -Errno.EAGAIN;
                    Register(w, s);
                }
                if (since.EndsCall(Sleep(w, deadline, null), restartable: deadline == long.MaxValue && got == 0)) return got > 0 ? got : -Errno.EINTR;
            }
        }
        finally
        {
            msg->Iov = saved;
            msg->IovLength = savedCount;
        }
    }

    public long SendMsg(int fd, MsgHdr* msg, int flags)
    {
        if (msg is null) return -Errno.EFAULT;
        SettleIpv6(fd);
        var w = Waiter.Current;
        long deadline = long.MaxValue, sent = 0;
        var since = SignalMark.Now;
        RunSocket? target = null;
        try
        {
            while (true)
            {
                lock (Lock)
                {
                    Advance();
                    if (Get(fd) is not { } s) return sent > 0 ? sent : -Errno.EBADF;
                    target = s;
                    long total = s.Type == Abi.SOCK_STREAM ? IoVecs.TotalLength(msg) : 0;
                    long r = s.TrySend(msg, flags, sent);
                    if (r == Abi.Kernel) { target = null; return HandOver(fd); }
                    if (r >= 0)
                    {
                        if (s.Type != Abi.SOCK_STREAM) return r;
                        sent += r;
                        if (sent >= total) return sent;
                        r = -Errno.EAGAIN; // part went in: a blocking send waits for room for the rest
                    }
                    if (r != -Errno.EAGAIN) return sent > 0 ? sent : r;
                    if (s.NonBlocking || (flags & Abi.MSG_DONTWAIT) != 0 || w is null) return sent > 0 ? sent : r;
                    if (deadline == long.MaxValue) deadline = Deadline(s.SendTimeoutNs);
                    if (Clock.NowNs() >= deadline) return sent > 0 ? sent : -Errno.EAGAIN;
                    Register(w, s);
                }
                if (since.EndsCall(Sleep(w, deadline, null), restartable: deadline == long.MaxValue && sent == 0)) return sent > 0 ? sent : -Errno.EINTR;
            }
        }
        finally
        {
            // One call, one zero-copy send number, however many tries it took (msg_zerocopy.rst).
            if (target is not null && (flags & Abi.MSG_ZEROCOPY) != 0) lock (Lock) target.EndSendCall();
        }
    }

    /// <summary>sendfile onto a Netloom socket: the file is read with pread and sent, in 64 KiB steps.</summary>
    public long SendFile(int outFd, int inFd, long* offset, nuint count) => IoVecs.SendFileByCopy(this, outFd, inFd, offset, count, 0);

    public long Fcntl(int fd, int cmd, long arg)
    {
        lock (Lock)
        {
            if (Get(fd) is not { } s) return -Errno.EBADF;
            switch (cmd)
            {
                case Abi.F_GETFL: return Abi.O_RDWR | (s.NonBlocking ? Abi.O_NONBLOCK : 0);
                case Abi.F_SETFL:
                    s.NonBlocking = (arg & Abi.O_NONBLOCK) != 0;
                    Sys.Fcntl(fd, Abi.F_SETFL, (int)arg); // the placeholder too, in case it is handed over
                    return 0;
                default: return Abi.Kernel;
            }
        }
    }

    public long Ioctl(int fd, nuint request, byte* arg)
    {
        lock (Lock)
        {
            if (Get(fd) is not { } s) return -Errno.EBADF;
            if (request == Abi.FIONBIO)
            {
                if (arg is null) return -Errno.EFAULT;
                s.NonBlocking = *(int*)arg != 0;
                return Abi.Kernel; // the placeholder too
            }
            if (request == Abi.FIONREAD)
            {
                if (arg is null) return -Errno.EFAULT;
                Advance();
                *(int*)arg = s.ReadableBytes();
                return 0;
            }
            return Abi.Kernel; // interface queries and the like: the kernel answers for a socket of this type
        }
    }
}
