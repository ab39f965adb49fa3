using Netloom.Run.Native;
using Netloom.Stack;

namespace Netloom.Run;

/// <summary>
/// A Netloom socket as a program sees it: the POSIX semantics over one stack-level socket. One
/// object per open socket, named by one or more descriptors (dup). Every member is called with
/// the stack lock held; results are non-negative or a negated errno.
/// </summary>
internal abstract unsafe class RunSocket(Engine engine, int type, int family) : ISocketObserver, IEpollMember
{
    protected readonly Engine Engine = engine;
    /// <summary>SOCK_STREAM or SOCK_DGRAM.</summary>
    public readonly int Type = type;
    /// <summary>AF_INET or AF_INET6 (an AF_INET6 socket also speaks IPv4, IPv4-mapped, unless <see cref="V6Only"/>).</summary>
    public readonly int Family = family;
    /// <summary>IPV6_V6ONLY (net.ipv6.bindv6only is 0 by default, so off).</summary>
    public bool V6Only;
    /// <summary>IPV6_UNICAST_HOPS, IPV6_TCLASS, IPV6_MULTICAST_HOPS, IPV6_MULTICAST_LOOP, IPV6_MTU_DISCOVER as set (recorded; the stack's own values go on the wire).</summary>
    public int UnicastHops = -1, TrafficClass, MulticastHops = 1, MulticastLoop = 1, PmtuDiscover = 1;
    /// <summary>How many descriptors name this socket.</summary>
    public int Names;
    /// <summary>O_NONBLOCK (kept per socket: dup'ed descriptors share it, as they share an open file).</summary>
    public bool NonBlocking;
    public long ReceiveTimeoutNs, SendTimeoutNs;
    /// <summary>Options recorded for getsockopt (SO_REUSEADDR and the like that change nothing here).</summary>
    public bool ReuseAddress, ReusePort, KeepAlive;
    public int ReceiveBuffer = 256 << 10, SendBuffer = 256 << 10, Tos;
    /// <summary>Whether the program set SO_RCVBUF / SO_SNDBUF; until it does, TCP buffers grow as needed up to <see cref="AutoBufferMax"/>.</summary>
    public bool ReceiveBufferSet, SendBufferSet;
    /// <summary>
    /// The most a TCP buffer the program did not size grows to: 4 MiB, about the kernel's tcp_rmem
    /// and tcp_wmem maxima (6 and 4 MiB), so a bulk transfer gets the window the kernel would give
    /// it. The memory is taken as data needs it, not up front.
    /// </summary>
    public const int AutoBufferMax = 4 << 20;
    public int LingerOn, LingerSeconds;
    /// <summary>SO_ZEROCOPY: sends with MSG_ZEROCOPY lend their memory and report completions on the error queue.</summary>
    public bool ZeroCopy;

    /// <summary>poll bits that hold now (POLLIN, POLLOUT, POLLERR, POLLHUP, POLLRDHUP).</summary>
    public abstract short Readiness();

    /// <summary>Whether the socket has a local port (bound, listening or connected): IPV6_V6ONLY can no longer change.</summary>
    public abstract bool IsBound { get; }

    public abstract long Bind(byte* addr, uint length, int fd);
    public virtual long Listen(int backlog) => -Errno.EOPNOTSUPP;
    public virtual long Accept(byte* addr, uint* length, int flags) => -Errno.EOPNOTSUPP;
    public abstract long Connect(byte* addr, uint length, int fd);
    public abstract long Shutdown(int how);
    /// <summary>The last descriptor was closed. May block for SO_LINGER (the lock is left meanwhile).</summary>
    public abstract long Close();
    public abstract long GetSockName(byte* addr, uint* length);
    public abstract long GetPeerName(byte* addr, uint* length);
    /// <summary>One try at a receive: -EAGAIN when it would block.</summary>
    public abstract long TryReceive(MsgHdr* msg, int flags);
    /// <summary>One try at a send: -EAGAIN when nothing could be queued; a stream send may queue part.</summary>
    public abstract long TrySend(MsgHdr* msg, int flags, long alreadySent);
    /// <summary>SO_ERROR: the pending error, cleared by reading it.</summary>
    public abstract int TakeError();
    /// <summary>FIONREAD.</summary>
    public abstract int ReadableBytes();
    /// <summary>recvmsg(MSG_ERRQUEUE): one zero-copy completion, or -EAGAIN when none waits (it never blocks).</summary>
    public abstract long ReadErrorQueue(MsgHdr* msg);
    /// <summary>A send call ends (after one or more <see cref="TrySend"/> tries): a zero-copy send that queued bytes takes its number.</summary>
    public virtual void EndSendCall() { }
    public virtual long GetProtocolOption(int level, int name, byte* value, uint* length) => -Errno.ENOPROTOOPT;
    public virtual long SetProtocolOption(int level, int name, int value) => -Errno.ENOPROTOOPT;

    public EpollWatchers Epoll { get; } = new();

    void ISocketObserver.OnSocketEvents(object socket, SocketEvents events) => Changed();

    /// <summary>An event, or a change the stack did not announce (a shutdown, a close): epoll sets watching the socket and sleepers look again.</summary>
    protected void Changed()
    {
        Epoll.Moved();
        Engine.WakeSleepers(this);
    }

    /// <summary>An address as this socket's family reports it (sockaddr_in, or sockaddr_in6 with IPv4 IPv4-mapped).</summary>
    protected void WriteAddress(byte* p, uint* length, IpAddr address, ushort port) =>
        SockAddr.Write(Family, p, length, address, port, Engine.ScopeId);

    /// <summary>Whether a datagram or SYN from <paramref name="from"/> may reach this socket: its family, IPV6_V6ONLY, and the version of its bound address.</summary>
    protected bool TakesFrom(IpAddr from, IpAddr bound)
    {
        if (Family == Abi.AF_INET || bound.IsIpv4) return from.IsIpv4;
        if (V6Only || !bound.Ipv6.IsUnspecified) return !from.IsIpv4;
        return true;
    }

    /// <summary>The bytes an iovec array describes, capped at int.MaxValue.</summary>
    protected static long TotalLength(MsgHdr* msg) => Math.Min(IoVecs.TotalLength(msg), int.MaxValue);
}
