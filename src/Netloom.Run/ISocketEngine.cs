using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>
/// What the interposer's entry points call: one of the two engines, chosen per process
/// (<see cref="Engine"/>, the user-level stack; <see cref="Offload.OffloadEngine"/>, kernel
/// sockets whose calls go through io_uring). Results are non-negative, a negated errno, or
/// <see cref="Abi.Kernel"/> ("let libc do this call").
/// </summary>
internal unsafe interface ISocketEngine
{
    long Socket(int domain, int type, int protocol);
    long Close(int fd);
    long Dup(int oldfd, int newfd);
    long Bind(int fd, byte* addr, uint len);
    long Listen(int fd, int backlog);
    long Accept(int fd, byte* addr, uint* len, int flags);
    long Connect(int fd, byte* addr, uint len);
    long Shutdown(int fd, int how);
    long GetSockOpt(int fd, int level, int name, byte* value, uint* length);
    long SetSockOpt(int fd, int level, int name, byte* value, uint length);
    long GetSockName(int fd, byte* addr, uint* len);
    long GetPeerName(int fd, byte* addr, uint* len);
    long RecvMsg(int fd, MsgHdr* msg, int flags);
    long SendMsg(int fd, MsgHdr* msg, int flags);
    long Fcntl(int fd, int cmd, long arg);
    long Ioctl(int fd, nuint request, byte* arg);
    long Poll(PollFd* fds, ulong count, long timeoutNs, void* sigmask);
    long Select(int nfds, ulong* read, ulong* write, ulong* except, long timeoutNs, void* sigmask);
    long EpollCtl(int epfd, int op, int fd, EpollEvent* ev);
    long EpollWait(int epfd, EpollEvent* events, int max, long timeoutNs, void* sigmask);
    long EpollClose(int epfd);
    long SendFile(int outFd, int inFd, long* offset, nuint count);
    void Exit();
}

/// <summary>select and pselect as poll over the descriptors the sets name, for either engine.</summary>
internal static unsafe class SelectAdapter
{
    public static long Select(ISocketEngine engine, int nfds, ulong* read, ulong* write, ulong* except, long timeoutNs, void* sigmask)
    {
        if (nfds < 0 || nfds > 1024) return -Errno.EINVAL; // FD_SETSIZE, as glibc's fd_set holds
        PollFd* fds = stackalloc PollFd[Math.Max(nfds, 1)];
        int n = 0;
        for (int fd = 0; fd < nfds; fd++)
        {
            short events = 0;
            if (IsSet(read, fd)) events |= Abi.POLLIN;
            if (IsSet(write, fd)) events |= Abi.POLLOUT;
            if (IsSet(except, fd)) events |= Abi.POLLPRI;
            if (events != 0) fds[n++] = new PollFd { Fd = fd, Events = events };
        }
        long r = engine.Poll(fds, (ulong)n, timeoutNs, sigmask);
        if (r < 0) return r;
        for (int i = 0; i < (nfds + 63) / 64; i++)
        {
            if (read is not null) read[i] = 0;
            if (write is not null) write[i] = 0;
            if (except is not null) except[i] = 0;
        }
        int count = 0;
        for (int i = 0; i < n; i++)
        {
            short re = fds[i].Revents;
            if ((re & Abi.POLLNVAL) != 0) return -Errno.EBADF;
            int fd = fds[i].Fd;
            // select's rules: readable includes errors and hang-ups, as the kernel's select does.
            if ((fds[i].Events & Abi.POLLIN) != 0 && (re & (Abi.POLLIN | Abi.POLLHUP | Abi.POLLERR)) != 0) { Set(read, fd); count++; }
            if ((fds[i].Events & Abi.POLLOUT) != 0 && (re & (Abi.POLLOUT | Abi.POLLERR)) != 0) { Set(write, fd); count++; }
            if ((fds[i].Events & Abi.POLLPRI) != 0 && (re & Abi.POLLPRI) != 0) { Set(except, fd); count++; }
        }
        return count;
    }

    private static bool IsSet(ulong* set, int fd) => set is not null && (set[fd >> 6] & (1UL << (fd & 63))) != 0;
    private static void Set(ulong* set, int fd) => set[fd >> 6] |= 1UL << (fd & 63);
}
