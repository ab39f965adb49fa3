using Netloom.Offload;
using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>The socket calls of the offload engine: served from the ring where it pays, the kernel's otherwise.</summary>
internal sealed unsafe partial class OffloadEngine
{
    /// <summary>A TCP socket not yet listening: every call is the kernel's until listen (connect hands it over for good).</summary>
    private sealed class Fresh(int fd) : OffloadSocket(fd)
    {
        public override short Readiness() => Abi.POLLOUT | Abi.POLLHUP; // Linux: a fresh TCP socket
    }

    public long Socket(int domain, int type, int protocol)
    {
        bool inet = domain is Abi.AF_INET or Abi.AF_INET6;
        if (!inet || (type & 0xF) != Abi.SOCK_STREAM || (protocol != 0 && protocol != Abi.IPPROTO_TCP)) return Abi.Kernel;
        int fd = Libc.Socket(domain, type, protocol);
        if (fd < 0) return -Libc.Errno;
        if (fd >= Engine.MaxFd) return fd;
        lock (_lock)
        {
            var s = new Fresh(fd) { NonBlocking = (type & Abi.SOCK_NONBLOCK) != 0 };
            TakeSlot(s);
            Adopt(fd, s);
        }
        return fd;
    }

    public long Bind(int fd, byte* addr, uint len) => Abi.Kernel;
    public long GetSockName(int fd, byte* addr, uint* len) => Abi.Kernel;
    public long GetPeerName(int fd, byte* addr, uint* len) => Abi.Kernel;

    public long Connect(int fd, byte* addr, uint len)
    {
        lock (_lock)
        {
            // A client socket is the kernel's entirely: this engine serves servers.
            if (Get(fd) is Fresh f && f.Names == 1) { Forget(fd); FreeSlot(f); }
            return Abi.Kernel;
        }
    }

    public long Listen(int fd, int backlog)
    {
        lock (_lock)
        {
            switch (Get(fd))
            {
                case OffloadListener:
                    return Sys.Listen(fd, backlog) < 0 ? -Libc.Errno : 0;
                case Fresh f:
                {
                    if (Sys.Listen(fd, backlog) < 0) return -Libc.Errno;
                    var l = new OffloadListener(fd) { NonBlocking = f.NonBlocking, Names = 0 };
                    Replace(f, l);
                    ArmAccept(l);
                    Flush();
                    return 0;
                }
                default: return Abi.Kernel; // listen on a connection: the kernel's EINVAL
            }
        }
    }

    /// <summary>Every descriptor naming <paramref name="old"/> names <paramref name="now"/> instead.</summary>
    private void Replace(OffloadSocket old, OffloadSocket now)
    {
        now.Names += _fds.Rename(old, now);
        FreeSlot(old);
        TakeSlot(now);
    }

    public long Accept(int fd, byte* addr, uint* len, int flags)
    {
        if ((flags & ~(Abi.SOCK_NONBLOCK | Abi.SOCK_CLOEXEC)) != 0) return -Errno.EINVAL;
        long deadline = long.MaxValue;
        var since = SignalMark.Now;
        while (true)
        {
            uint published;
            lock (_lock)
            {
                if (Get(fd) is not OffloadListener l) return Abi.Kernel;
                Reap();
                if (l.Accepted.Count > 0)
                {
                    int k = l.Accepted.Dequeue();
                    if (l.Accepted.Count < OffloadListener.MaxQueued / 2) ArmAccept(l);
                    if ((flags & Abi.SOCK_CLOEXEC) == 0) Sys.Fcntl(k, Abi.F_SETFD, 0); // accepted with FD_CLOEXEC
                    var c = new OffloadConnection(k) { NonBlocking = (flags & Abi.SOCK_NONBLOCK) != 0, ZeroCopy = KernelZeroCopy(k) };
                    TakeSlot(c);
                    if (!Adopt(k, c)) { FreeSlot(c); return k; } // beyond the interposer's table: the kernel's
                    ArmRecv(c);
                    if (addr is not null && len is not null && Sys.GetPeerName(k, addr, len) < 0) *len = 0;
                    return k;
                }
                if (l.Error != 0) { int e = l.Error; l.Error = 0; return -e; }
                if (!l.Armed) ArmAccept(l); // descriptors had run out
                if (l.NonBlocking) { Flush(); return -Errno.EAGAIN; }
                if (deadline == long.MaxValue) deadline = Engine.Deadline(l.ReceiveTimeoutNs);
                if (Clock.NowNs() >= deadline) { Flush(); return -Errno.EAGAIN; }
                published = PrepareWait();
            }
            if (WaitRing(published, deadline, null, ref since, restartable: deadline == long.MaxValue) < 0) return -Errno.EINTR;
        }
    }

    public long RecvMsg(int fd, MsgHdr* msg, int flags)
    {
        if (msg is null) return -Errno.EFAULT;
        if ((flags & Abi.MSG_ERRQUEUE) != 0)
        {
            lock (_lock)
            {
                if (Get(fd) is not OffloadConnection q) return Abi.Kernel;
                return q.Completions.TryTake(out var done) ? ErrorQueue.Deliver(msg, done) : -Errno.EAGAIN; // never blocks
            }
        }
        long deadline = long.MaxValue, got = 0;
        bool waitAll = (flags & Abi.MSG_WAITALL) != 0 && (flags & (Abi.MSG_PEEK | Abi.MSG_DONTWAIT)) == 0;
        // MSG_WAITALL fills what is left of the iovecs: a private copy of them, moved along.
        int count = (int)Math.Min(msg->IovLength, 1024);
        IoVec* iov = stackalloc IoVec[waitAll ? Math.Max(count, 1) : 1];
        IoVec* callerIov = msg->Iov;
        nuint callerCount = msg->IovLength;
        if (waitAll)
        {
            for (int i = 0; i < count; i++) iov[i] = callerIov[i];
            msg->Iov = iov;
            msg->IovLength = (nuint)count;
        }
        try
        {
            var since = SignalMark.Now;
            return RecvLoop(fd, msg, flags, waitAll, ref got, ref deadline, ref since);
        }
        finally
        {
            msg->Iov = callerIov;
            msg->IovLength = callerCount;
        }
    }

    private long RecvLoop(int fd, MsgHdr* msg, int flags, bool waitAll, ref long got, ref long deadline, ref SignalMark since)
    {
        long want = waitAll ? IoVecs.TotalLength(msg) : 0;
        while (true)
        {
            uint published;
            lock (_lock)
            {
                if (Get(fd) is not OffloadConnection c) return got > 0 ? got : Abi.Kernel;
                // Bytes already here are served without an entry to run completions the kernel
                // holds as task work (they can only add bytes behind these); so, when coalescing
                // or in the owner mode, is a read that finds none, four times in a row (EAGAIN, as
                // if the bytes were still on their way: the wait that follows runs them).
                bool run = c.Available == 0 && (!LazyTaskWork || ++_emptyReadsWithoutRun > 4);
                if (run) _emptyReadsWithoutRun = 0;
                Reap(runTaskWork: run);
                if (msg->Name is not null) msg->NameLength = 0;
                msg->Flags = 0;
                if (c.Available > 0)
                {
                    long n = Read(c, msg, (flags & Abi.MSG_PEEK) != 0);
                    got += n;
                    if (!waitAll || got >= want || c.NonBlocking) return got;
                    IoVecs.Consume(msg, n);
                    continue;
                }
                if (got > 0 && (c.RecvError != 0 || c.Eof)) return got;
                if (c.RecvError != 0) { int e = c.RecvError; c.RecvError = 0; c.Eof = true; return -e; }
                if (c.Eof) return 0;
                ArmRecv(c);
                if (c.NonBlocking || (flags & Abi.MSG_DONTWAIT) != 0) { Flush(); return got > 0 ? got : -Errno.EAGAIN; }
                if (deadline == long.MaxValue) deadline = Engine.Deadline(c.ReceiveTimeoutNs);
                if (Clock.NowNs() >= deadline) { Flush(); return got > 0 ? got : -Errno.EAGAIN; }
                published = PrepareWait();
            }
            if (WaitRing(published, deadline, null, ref since, restartable: deadline == long.MaxValue && got == 0) < 0) return got > 0 ? got : -Errno.EINTR;
        }
    }

    /// <summary>Copies received bytes into the iovecs (consuming them unless peeking); buffers emptied go back to the kernel.</summary>
    private long Read(OffloadConnection c, MsgHdr* msg, bool peek)
    {
        long total = 0;
        int consumed = 0;               // whole buffers read
        int offset = c.HeadConsumed;    // into the buffer being read
        using var e = c.Input.GetEnumerator();
        bool has = e.MoveNext();
        for (nuint i = 0; i < msg->IovLength && has; i++)
        {
            var dst = new Span<byte>(msg->Iov[i].Base, (int)Math.Min(msg->Iov[i].Length, int.MaxValue));
            while (dst.Length > 0 && has)
            {
                var (id, length) = e.Current;
                var src = _buffers.Data(id, length)[offset..];
                int n = Math.Min(src.Length, dst.Length);
                src[..n].CopyTo(dst);
                dst = dst[n..];
                total += n;
                offset += n;
                if (offset == length)
                {
                    consumed++;
                    offset = 0;
                    has = e.MoveNext();
                }
            }
        }
        if (peek) return total;
        for (int k = 0; k < consumed; k++) Recycle(c.Input.Dequeue().Id);
        c.HeadConsumed = offset;
        c.Available -= total;
        return total;
    }

    public long SendMsg(int fd, MsgHdr* msg, int flags)
    {
        if (msg is null) return -Errno.EFAULT;
        long sent = 0;
        bool zeroCopy = false;
        try
        {
            return SendLoop(fd, msg, flags, ref sent, ref zeroCopy);
        }
        finally
        {
            // MSG_ZEROCOPY on a socket with SO_ZEROCOPY: one number per call that queued bytes;
            // one copied into the engine's queue completes at once, as copied.
            if (sent > 0 && !zeroCopy && (flags & Abi.MSG_ZEROCOPY) != 0)
                lock (_lock)
                    if (Get(fd) is OffloadConnection { ZeroCopy: true } z) CompleteCopied(z);
        }
    }

    private long SendLoop(int fd, MsgHdr* msg, int flags, ref long sent, ref bool zeroCopy)
    {
        long deadline = long.MaxValue;
        var since = SignalMark.Now;
        while (true)
        {
            uint published;
            lock (_lock)
            {
                if (Get(fd) is not OffloadConnection c) return Abi.Kernel;
                // Coalescing leaves completions the kernel holds as task work to the next entry: an
                // error of an earlier send then surfaces a call later than without it.
                Reap(runTaskWork: !LazyTaskWork);
                if (c.SendError != 0)
                {
                    if (sent > 0) return sent;
                    int e = c.SendErrorReported ? Errno.EPIPE : c.SendError;
                    c.SendErrorReported = true;
                    if (e == Errno.EPIPE && (flags & Abi.MSG_NOSIGNAL) == 0) Engine.RaiseSigPipe();
                    return -e;
                }
                if (c.ShutWrite)
                {
                    if ((flags & Abi.MSG_NOSIGNAL) == 0) Engine.RaiseSigPipe();
                    return -Errno.EPIPE;
                }
                if (sent == 0 && (flags & Abi.MSG_ZEROCOPY) != 0 && c.ZeroCopy)
                {
                    long z = TrySendZeroCopy(c, msg, blocking: !c.NonBlocking && (flags & Abi.MSG_DONTWAIT) == 0);
                    if (z > 0) { zeroCopy = true; return sent = z; }
                    if (z < 0) { published = PrepareWait(); goto Wait; } // its own bytes ahead: wait for them to go
                }
                long skip = sent;
                for (nuint i = 0; i < msg->IovLength; i++)
                {
                    long len = (long)msg->Iov[i].Length;
                    if (skip >= len) { skip -= len; continue; }
                    var src = new ReadOnlySpan<byte>((byte*)msg->Iov[i].Base + skip, (int)Math.Min(len - skip, int.MaxValue));
                    skip = 0;
                    int n = c.Output.Append(src, OffloadConnection.MaxQueued - c.Output.Queued);
                    sent += n;
                    if (n < src.Length) break;
                }
                KickLater(c);
                if (_ring.Unsubmitted >= _ring.SqEntries / 2) Flush();
                long total = IoVecs.TotalLength(msg);
                if (sent >= total) return sent;
                if (c.NonBlocking || (flags & Abi.MSG_DONTWAIT) != 0) { Flush(); return sent > 0 ? sent : -Errno.EAGAIN; }
                if (deadline == long.MaxValue) deadline = Engine.Deadline(c.SendTimeoutNs);
                if (Clock.NowNs() >= deadline) { Flush(); return sent > 0 ? sent : -Errno.EAGAIN; }
                published = PrepareWait();
            }
        Wait:
            if (WaitRing(published, deadline, null, ref since, restartable: deadline == long.MaxValue && sent == 0) < 0) return sent > 0 ? sent : -Errno.EINTR;
        }
    }

    public long SendFile(int outFd, int inFd, long* offset, nuint count)
    {
        long first = 0;
        lock (_lock)
        {
            if (Get(outFd) is not OffloadConnection c) return Abi.Kernel;
            Reap(runTaskWork: !LazyTaskWork); // as send
            long queued = SendFileByRing(c, inFd, offset, count);
            if (queued != -1) return queued;
            if (count > MaxRingFileRead)
            {
                SendQueuedNow(c);
                KickSend(c); // what the socket did not take goes on in the ring
            }
            if (c.Output.Queued == 0 && !c.SendInFlight && c.SendError == 0 && !c.ShutWrite && count > 0)
            {
                // Nothing of ours is queued ahead: the kernel's sendfile (no copy) sends what the
                // socket takes now (it is non-blocking underneath); the rest queues below.
                long pos = offset is not null ? *offset : Sys.LSeek(inFd, 0, Sys.SEEK_CUR);
                if (pos < 0) return -Libc.Errno;
                long at = pos;
                nint r = Sys.SendFile(c.IoFd, inFd, &at, count);
                if (r < 0 && Libc.Errno is not Errno.EAGAIN) return -Libc.Errno;
                if (r == 0) return 0; // the file ends here
                first = Math.Max(0, (long)r);
                if (offset is not null) _files.Add(inFd); // a file: its close may be queued in the ring too
                if (offset is not null) *offset = pos + first;
                else Sys.LSeek(inFd, pos + first, Sys.SEEK_SET);
                if ((ulong)first == count) return first;
                if (c.NonBlocking)
                {
                    // The socket took what it could. As the kernel's sendfile on a non-blocking
                    // socket: a short count (or EAGAIN), and EPOLLOUT once it drains (a poll in
                    // the ring), so the rest goes by sendfile too instead of by copy.
                    ArmWritePoll(c);
                    return first > 0 ? first : -Errno.EAGAIN;
                }
                count -= (nuint)first;
            }
        }
        long rest = IoVecs.SendFileByCopy(this, outFd, inFd, offset, count, Abi.MSG_NOSIGNAL);
        return rest < 0 ? (first > 0 ? first : rest) : first + rest;
    }

    public long Shutdown(int fd, int how)
    {
        lock (_lock)
        {
            if (Get(fd) is not OffloadConnection c) return Abi.Kernel;
            if (how is < Abi.SHUT_RD or > Abi.SHUT_RDWR) return -Errno.EINVAL;
            if (how == Abi.SHUT_RD) return Abi.Kernel;
            c.ShutWrite = true;
            c.Moved();
            if (!c.SendInFlight && c.Output.Queued == 0) return Abi.Kernel; // nothing queued: the FIN goes now
            // The FIN follows the last queued byte.
            c.ShutWritePending = true;
            if (how == Abi.SHUT_RDWR) Sys.Shutdown(c.IoFd, Abi.SHUT_RD);
            return 0;
        }
    }

    public long Close(int fd)
    {
        OffloadConnection? lingering = null;
        for (int tries = 0; ; tries++)
        {
            if (!MayEnter) WaitOwnerEntry();
            lock (_lock)
            {
                // The owner published more meanwhile (its entry follows at once): wait for it again.
                if (!MayEnter && !_ring.AllPublishedConsumed && tries < 100) continue;
                Reap();
                var s = Forget(fd);
                if (s is null) return 0;
                if (s.Names > 0)
                {
                    // Another name (a dup) lives on. If the engine's operations went through this
                    // one, what is prepared on it goes in before libc closes it, and the rest go
                    // through the other name (else a send made after would meet a closed number).
                    if (s.IoFd == fd)
                    {
                        Flush();
                        int other = _fds.NameOf(s);
                        if (other >= 0) s.IoFd = other;
                    }
                    return 0;
                }
                switch (s)
                {
                    case OffloadListener l:
                        if (l.Armed) Cancel(UringTag.Make(UringTag.Accept, l.Slot, l.Generation));
                        while (l.Accepted.Count > 0) Libc.Close(l.Accepted.Dequeue());
                        FreeSlot(l);
                        break;
                    case OffloadConnection c:
                        if (c.RecvArmed) Cancel(UringTag.Make(UringTag.Recv, c.Slot, c.Generation));
                        if (c.WritePollArmed) Cancel(UringTag.Make(WritePoll, c.Slot, c.Generation)); // it holds the socket open
                        c.WritePollArmed = false;
                        c.RecvArmed = false;
                        while (c.Input.Count > 0) Recycle(c.Input.Dequeue().Id);
                        c.Available = 0;
                        c.HeadConsumed = 0;
                        bool abort = c.LingerOn != 0 && c.LingerSeconds == 0;
                        if ((c.Output.Queued > 0 || c.SendInFlight) && !abort && c.SendError == 0)
                        {
                            // The program is done with it; the bytes it wrote are not. Keep the socket
                            // open under a descriptor of the engine's until they have left, then FIN.
                            int keep = Sys.Dup(fd);
                            if (keep >= 0)
                            {
                                Flush(); // what names the program's descriptor goes in before libc closes it
                                c.IoFd = keep;
                                c.Closed = true;
                                if (c.LingerOn != 0) lingering = c;
                                break;
                            }
                        }
                        if (c.SendInFlight)
                        {
                            // Aborted (linger 0, or an error) while the kernel still reads the queue's
                            // memory in a send: the memory and the slot are freed when the send
                            // completes (KickSend -> FinishClose), not now. (A file read in the ring
                            // writing into it is waited for by Output.Dispose itself.)
                            if (c.SendError == 0) c.SendError = Errno.ECONNABORTED;
                            c.IoFd = -1; // the program's descriptor: libc closes it next
                            c.Closed = true;
                            break;
                        }
                        c.Output.Dispose();
                        FreeSlot(c);
                        break;
                    default:
                        FreeSlot(s);
                        break;
                }
                if (!MayEnter) OtherClosed(fd, s);
                Flush(runTaskWork: true); // the cancelled operations let go of the socket before libc's close
            }
            break;
        }
        if (lingering is not null) Linger(lingering);
        return 0;
    }

    /// <summary>The last queued byte of a closed connection left (or failed): close the engine's descriptor (the FIN) and free the slot.</summary>
    private void FinishClose(OffloadConnection c)
    {
        if (c.Slot < 0) return;
        if (c.IoFd >= 0) Libc.Close(c.IoFd);
        c.IoFd = -1;
        if (c.SendInFlight) return; // the kernel still reads the queue's memory: the send's completion finishes
        c.Output.Dispose();
        FreeSlot(c);
    }

    /// <summary>SO_LINGER with a timeout: close waits until the queued bytes left, or the time ran out.</summary>
    private void Linger(OffloadConnection c)
    {
        long deadline = Engine.Deadline(c.LingerSeconds * 1_000_000_000L);
        var since = SignalMark.Now;
        while (true)
        {
            uint published;
            lock (_lock)
            {
                Reap();
                if (c.Slot < 0) return;
                if (Clock.NowNs() >= deadline) { c.SendError = Errno.ETIMEDOUT; FinishClose(c); return; }
                published = PrepareWait();
            }
            if (WaitRing(published, deadline, null, ref since) < 0) return;
        }
    }

    public long Dup(int oldfd, int newfd)
    {
        lock (_lock)
        {
            var s = Get(oldfd);
            if (s is null) return -Errno.EBADF;
            if (Get(newfd) is not null) Forget(newfd);
            return Adopt(newfd, s) ? newfd : -Errno.EMFILE;
        }
    }

    public long Fcntl(int fd, int cmd, long arg)
    {
        lock (_lock)
        {
            if (Get(fd) is not { } s) return -Errno.EBADF;
            switch (cmd)
            {
                case Abi.F_GETFL: return Abi.O_RDWR | (s.NonBlocking ? Abi.O_NONBLOCK : 0);
                case Abi.F_SETFL:
                    s.NonBlocking = (arg & Abi.O_NONBLOCK) != 0;
                    // The kernel socket keeps blocking: io_uring waits for it, and its calls pass through here.
                    return s is Fresh ? Abi.Kernel : 0;
                default: return Abi.Kernel;
            }
        }
    }

    public long Ioctl(int fd, nuint request, byte* arg)
    {
        lock (_lock)
        {
            if (Get(fd) is not { } s) return -Errno.EBADF;
            if (request == Abi.FIONBIO)
            {
                if (arg is null) return -Errno.EFAULT;
                s.NonBlocking = *(int*)arg != 0;
                return s is Fresh ? Abi.Kernel : 0;
            }
            if (request == Abi.FIONREAD && s is OffloadConnection c)
            {
                if (arg is null) return -Errno.EFAULT;
                Reap();
                *(int*)arg = (int)Math.Min(c.Available, int.MaxValue);
                return 0;
            }
            return Abi.Kernel;
        }
    }

    public long GetSockOpt(int fd, int level, int name, byte* value, uint* length)
    {
        lock (_lock)
        {
            if (Get(fd) is OffloadConnection c && level == Abi.SOL_SOCKET && name == Abi.SO_ERROR)
            {
                Reap();
                int e = c.SendError != 0 && !c.SendErrorReported ? c.SendError : c.RecvError;
                if (c.SendError != 0) c.SendErrorReported = true; else c.RecvError = 0;
                if (e != 0) return Options.WriteInt(value, length, e);
            }
            return Abi.Kernel;
        }
    }

    public long SetSockOpt(int fd, int level, int name, byte* value, uint length)
    {
        lock (_lock)
        {
            if (Get(fd) is not { } s || level != Abi.SOL_SOCKET || value is null) return Abi.Kernel;
            // Recorded for the engine's own waits and close; the kernel socket gets them too.
            if (name == Abi.SO_LINGER && length >= 8) { s.LingerOn = ((int*)value)[0]; s.LingerSeconds = ((int*)value)[1]; }
            else if (name == Abi.SO_RCVTIMEO && length >= 16) s.ReceiveTimeoutNs = TimevalNs(value);
            else if (name == Abi.SO_SNDTIMEO && length >= 16) s.SendTimeoutNs = TimevalNs(value);
            else if (name == Abi.SO_ZEROCOPY && length >= 4 && *(int*)value is 0 or 1) s.ZeroCopy = *(int*)value == 1; // the kernel checks and answers
            return Abi.Kernel;
        }
    }

    /// <summary>SO_ZEROCOPY as the kernel socket has it (an accepted socket inherits the listener's, set before it was ours).</summary>
    private static bool KernelZeroCopy(int fd)
    {
        int v = 0;
        uint len = sizeof(int);
        return Libc.GetSockOpt(fd, Abi.SOL_SOCKET, Abi.SO_ZEROCOPY, &v, &len) == 0 && v != 0;
    }

    private static long TimevalNs(byte* value) => ((long*)value)[0] * 1_000_000_000L + ((long*)value)[1] * 1000L;

    /// <summary>At exit: the bytes programs wrote and closed (or left open) still leave, for up to NETLOOM_EXIT_LINGER_MS.</summary>
    public void Exit()
    {
        int lingerMs = Engine.ExitLingerMs;
        long deadline = Clock.NowNs() + lingerMs * 1_000_000L;
        if (!MayEnter) ExitForOther(deadline);
        while (MayEnter && Clock.NowNs() < deadline)
        {
            uint published;
            lock (_lock)
            {
                Reap();
                if (!HasOutstandingSends()) break;
                published = PrepareWait();
            }
            var mark = SignalMark.Now;
            WaitRing(published, Math.Min(deadline, Clock.NowNs() + 10_000_000), null, ref mark);
        }
        _exiting = true;
        lock (_lock) Report();
    }
}
