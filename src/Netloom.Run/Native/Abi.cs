using System.Runtime.InteropServices;

namespace Netloom.Run.Native;

/// <summary>
/// The table of entry points the engine hands the interposer: <c>struct nl_engine</c> in
/// native/netloom.h, field for field. Every entry returns a non-negative result or a negated
/// errno; <see cref="Abi.Kernel"/> tells the interposer to let libc do the call.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct EngineTable
{
    public int Version, Size;
    public delegate* unmanaged<int, int, int, long> Socket;
    public delegate* unmanaged<int, long> Close;
    public delegate* unmanaged<int, int, long> Dup;
    public delegate* unmanaged<int, byte*, uint, long> Bind;
    public delegate* unmanaged<int, int, long> Listen;
    public delegate* unmanaged<int, byte*, uint*, int, long> Accept4;
    public delegate* unmanaged<int, byte*, uint, long> Connect;
    public delegate* unmanaged<int, int, long> Shutdown;
    public delegate* unmanaged<int, int, int, byte*, uint*, long> GetSockOpt;
    public delegate* unmanaged<int, int, int, byte*, uint, long> SetSockOpt;
    public delegate* unmanaged<int, byte*, uint*, long> GetSockName;
    public delegate* unmanaged<int, byte*, uint*, long> GetPeerName;
    public delegate* unmanaged<int, MsgHdr*, int, long> RecvMsg;
    public delegate* unmanaged<int, MsgHdr*, int, long> SendMsg;
    public delegate* unmanaged<int, int, long, long> Fcntl;
    public delegate* unmanaged<int, nuint, byte*, long> Ioctl;
    public delegate* unmanaged<PollFd*, ulong, long, void*, long> Poll;
    public delegate* unmanaged<int, ulong*, ulong*, ulong*, long, void*, long> Select;
    public delegate* unmanaged<int, int, int, EpollEvent*, long> EpollCtl;
    public delegate* unmanaged<int, EpollEvent*, int, long, void*, long> EpollWait;
    public delegate* unmanaged<int, long> EpollClose;
    public delegate* unmanaged<int, int, long*, nuint, long> SendFile;
    public delegate* unmanaged<void> AtExit;
    public delegate* unmanaged<int, long> CloseFile;
    public delegate* unmanaged<int, long> Settle;
}

/// <summary>What the interposer lends the engine: <c>struct nl_host</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct HostTable
{
    public int Version, Size;
    public delegate* unmanaged<int, int, void> Mark;
    public delegate* unmanaged<int, int, void> MarkEpoll;
    public delegate* unmanaged<byte*, void> Warn;
    public delegate* unmanaged<int, int> EpollKernel;
    /// <summary>
    /// How many of the program's signal handlers ran on the calling thread so far (native/signals.c):
    /// all of them (1), or only those without SA_RESTART (0).
    /// </summary>
    public delegate* unmanaged[SuppressGCTransition]<int, nuint> Handled;
    /// <summary>The engine dropped the interposer's wake-up event (<see cref="Abi.WakeMark"/>) from epfd's answer: the next sleeper's turn.</summary>
    public delegate* unmanaged<int, void> WakeConsumed;
}

/// <summary>struct epoll_event: packed on x86-64 (12 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 4)]
internal struct EpollEvent
{
    public uint Events;
    public ulong Data;
}

/// <summary>Linux's numbers, as the kernel headers give them (pinned by a test against gcc).</summary>
internal static class Abi
{
    public const int Version = 1;
    /// <summary>"Let the kernel do this call" (NL_KERNEL).</summary>
    public const long Kernel = -0x10000;
    /// <summary>
    /// The data of the interposer's own wake-up event in a program's epoll set (NL_WAKE_MARK,
    /// native/wait.c): a kernel wait of the engine's may find it there, and drops it.
    /// </summary>
    public const ulong WakeMark = 0x4e4c574b4d41524bUL;

    public const int AF_INET = 2, AF_INET6 = 10;
    public const int SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000;
    public const int IPPROTO_IP = 0, IPPROTO_TCP = 6, IPPROTO_UDP = 17;

    public const int SOL_SOCKET = 1;
    public const int SO_REUSEADDR = 2, SO_TYPE = 3, SO_ERROR = 4, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_KEEPALIVE = 9,
        SO_LINGER = 13, SO_REUSEPORT = 15, SO_RCVTIMEO = 20, SO_SNDTIMEO = 21, SO_ACCEPTCONN = 30,
        SO_PROTOCOL = 38, SO_DOMAIN = 39, SO_ZEROCOPY = 60;
    public const int TCP_NODELAY = 1, TCP_MAXSEG = 2, TCP_KEEPIDLE = 4, TCP_KEEPINTVL = 5, TCP_KEEPCNT = 6, TCP_INFO = 11;
    public const int IP_TOS = 1;
    public const int IPPROTO_IPV6 = 41;
    public const int IPV6_UNICAST_HOPS = 16, IPV6_MULTICAST_HOPS = 18, IPV6_MULTICAST_LOOP = 19, IPV6_MTU_DISCOVER = 23,
        IPV6_V6ONLY = 26, IPV6_RECVPKTINFO = 49, IPV6_TCLASS = 67;

    public const int MSG_PEEK = 0x2, MSG_CTRUNC = 0x8, MSG_TRUNC = 0x20, MSG_DONTWAIT = 0x40, MSG_WAITALL = 0x100, MSG_ERRQUEUE = 0x2000,
        MSG_NOSIGNAL = 0x4000, MSG_ZEROCOPY = 0x4000000;
    /// <summary>The error queue's control message (ip(7) IP_RECVERR) and its zero-copy origin and code (linux/errqueue.h).</summary>
    public const int SOL_IP = 0, IP_RECVERR = 11;
    public const byte SO_EE_ORIGIN_ZEROCOPY = 5, SO_EE_CODE_ZEROCOPY_COPIED = 1;
    public const int SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2;

    public const int F_SETFD = 2, F_GETFL = 3, F_SETFL = 4, O_NONBLOCK = 0x800, O_RDWR = 2;
    public const nuint FIONREAD = 0x541B, FIONBIO = 0x5421;

    public const short POLLIN = 0x1, POLLPRI = 0x2, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20,
        POLLRDNORM = 0x40, POLLWRNORM = 0x100, POLLRDHUP = 0x2000;
    public const int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;
    public const uint EPOLLET = 1u << 31, EPOLLONESHOT = 1u << 30, EPOLLEXCLUSIVE = 1u << 28;

    public const int SIGPIPE = 13;
}
