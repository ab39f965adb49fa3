using System.Runtime.InteropServices;
using Netloom.Interop.Tests.Support;
using Netloom.Run;
using Netloom.Run.Native;
using MsgHdr = Netloom.Interop.Libc.MsgHdr;

namespace Netloom.Interop.Tests.Run;

/// <summary>
/// The engine's side of `netloom run` against gcc: the interposer's entry-point table
/// (native/netloom.h, field by field), the kernel structs and every constant the engine answers
/// with (errno values, socket options, flags, struct tcp_info's offsets).
/// </summary>
public class RunLayoutTests
{
    [ToolFact("gcc")]
    public unsafe void The_engine_table_and_kernel_constants_match_the_c_headers()
    {
        string native = Path.Combine(RunLab.Root, "native");
        string[] entries = ["socket", "close", "dup", "bind", "listen", "accept4", "connect", "shutdown", "getsockopt", "setsockopt",
            "getsockname", "getpeername", "recvmsg", "sendmsg", "fcntl", "ioctl", "poll", "select", "epoll_ctl", "epoll_wait",
            "epoll_close", "sendfile", "at_exit"];
        string[] csharp = ["Socket", "Close", "Dup", "Bind", "Listen", "Accept4", "Connect", "Shutdown", "GetSockOpt", "SetSockOpt",
            "GetSockName", "GetPeerName", "RecvMsg", "SendMsg", "Fcntl", "Ioctl", "Poll", "Select", "EpollCtl", "EpollWait",
            "EpollClose", "SendFile", "AtExit"];
        var ours = new Dictionary<string, long>
        {
            ["nl_engine"] = sizeof(EngineTable), ["NL_ENGINE_VERSION"] = Abi.Version, ["NL_KERNEL"] = Abi.Kernel,
            ["nl_host"] = sizeof(HostTable), ["nl_host.mark"] = (long)Marshal.OffsetOf<HostTable>(nameof(HostTable.Mark)),
            ["nl_host.mark_epoll"] = (long)Marshal.OffsetOf<HostTable>(nameof(HostTable.MarkEpoll)), ["nl_host.warn"] = (long)Marshal.OffsetOf<HostTable>(nameof(HostTable.Warn)),
            ["nl_host.epoll_kernel"] = (long)Marshal.OffsetOf<HostTable>(nameof(HostTable.EpollKernel)),
            ["nl_host.handled"] = (long)Marshal.OffsetOf<HostTable>(nameof(HostTable.Handled)),
            ["nl_host.wake_consumed"] = (long)Marshal.OffsetOf<HostTable>(nameof(HostTable.WakeConsumed)),
            ["NL_MAX_FD"] = Engine.MaxFd,
            ["epoll_event"] = sizeof(EpollEvent), ["epoll_event.data"] = (long)Marshal.OffsetOf<EpollEvent>(nameof(EpollEvent.Data)),
            ["msghdr"] = sizeof(MsgHdr), ["msghdr.flags"] = (long)Marshal.OffsetOf<MsgHdr>(nameof(MsgHdr.Flags)),
            ["timespec"] = sizeof(TimeSpec), ["sockaddr_in"] = SockAddr.InLength,
            ["AF_INET"] = Abi.AF_INET, ["SOCK_STREAM"] = Abi.SOCK_STREAM, ["SOCK_DGRAM"] = Abi.SOCK_DGRAM, ["SOCK_NONBLOCK"] = Abi.SOCK_NONBLOCK,
            ["SOCK_CLOEXEC"] = Abi.SOCK_CLOEXEC, ["IPPROTO_TCP"] = Abi.IPPROTO_TCP, ["IPPROTO_UDP"] = Abi.IPPROTO_UDP, ["SOL_SOCKET"] = Abi.SOL_SOCKET,
            ["SO_REUSEADDR"] = Abi.SO_REUSEADDR, ["SO_TYPE"] = Abi.SO_TYPE, ["SO_ERROR"] = Abi.SO_ERROR, ["SO_SNDBUF"] = Abi.SO_SNDBUF,
            ["SO_RCVBUF"] = Abi.SO_RCVBUF, ["SO_KEEPALIVE"] = Abi.SO_KEEPALIVE, ["SO_LINGER"] = Abi.SO_LINGER, ["SO_REUSEPORT"] = Abi.SO_REUSEPORT,
            ["SO_RCVTIMEO"] = Abi.SO_RCVTIMEO, ["SO_SNDTIMEO"] = Abi.SO_SNDTIMEO, ["SO_ACCEPTCONN"] = Abi.SO_ACCEPTCONN, ["SO_PROTOCOL"] = Abi.SO_PROTOCOL,
            ["SO_DOMAIN"] = Abi.SO_DOMAIN, ["TCP_NODELAY"] = Abi.TCP_NODELAY, ["TCP_MAXSEG"] = Abi.TCP_MAXSEG, ["TCP_KEEPIDLE"] = Abi.TCP_KEEPIDLE,
            ["TCP_KEEPINTVL"] = Abi.TCP_KEEPINTVL, ["TCP_KEEPCNT"] = Abi.TCP_KEEPCNT, ["TCP_INFO"] = Abi.TCP_INFO, ["IP_TOS"] = Abi.IP_TOS,
            ["MSG_PEEK"] = Abi.MSG_PEEK, ["MSG_TRUNC"] = Abi.MSG_TRUNC, ["MSG_DONTWAIT"] = Abi.MSG_DONTWAIT, ["MSG_WAITALL"] = Abi.MSG_WAITALL,
            ["MSG_NOSIGNAL"] = Abi.MSG_NOSIGNAL, ["SHUT_RD"] = Abi.SHUT_RD, ["SHUT_WR"] = Abi.SHUT_WR, ["SHUT_RDWR"] = Abi.SHUT_RDWR,
            ["F_GETFL"] = Abi.F_GETFL, ["F_SETFL"] = Abi.F_SETFL, ["O_NONBLOCK"] = Abi.O_NONBLOCK, ["O_RDWR"] = Abi.O_RDWR,
            ["FIONREAD"] = (long)Abi.FIONREAD, ["FIONBIO"] = (long)Abi.FIONBIO,
            ["POLLIN"] = Abi.POLLIN, ["POLLPRI"] = Abi.POLLPRI, ["POLLOUT"] = Abi.POLLOUT, ["POLLERR"] = Abi.POLLERR, ["POLLHUP"] = Abi.POLLHUP,
            ["POLLNVAL"] = Abi.POLLNVAL, ["POLLRDNORM"] = Abi.POLLRDNORM, ["POLLWRNORM"] = Abi.POLLWRNORM, ["POLLRDHUP"] = Abi.POLLRDHUP,
            ["NL_WAKE_MARK"] = (long)Abi.WakeMark, ["EPOLL_CTL_ADD"] = Abi.EPOLL_CTL_ADD, ["EPOLL_CTL_DEL"] = Abi.EPOLL_CTL_DEL, ["EPOLL_CTL_MOD"] = Abi.EPOLL_CTL_MOD,
            ["EPOLLET"] = Abi.EPOLLET, ["EPOLLONESHOT"] = Abi.EPOLLONESHOT, ["EPOLLEXCLUSIVE"] = Abi.EPOLLEXCLUSIVE, ["SIGPIPE"] = Abi.SIGPIPE,
            ["EFD_CLOEXEC"] = Netloom.Interop.Libc.EFD_CLOEXEC, ["EFD_NONBLOCK"] = Netloom.Interop.Libc.EFD_NONBLOCK, ["SEEK_SET"] = Sys.SEEK_SET, ["SEEK_CUR"] = Sys.SEEK_CUR,
            ["tcp_info.state"] = TcpInfo.State, ["tcp_info.options"] = TcpInfo.Options, ["tcp_info.rto"] = TcpInfo.Rto,
            ["tcp_info.snd_mss"] = TcpInfo.SndMss, ["tcp_info.rcv_mss"] = TcpInfo.RcvMss, ["tcp_info.unacked"] = TcpInfo.Unacked,
            ["tcp_info.rtt"] = TcpInfo.Rtt, ["tcp_info.rttvar"] = TcpInfo.RttVar, ["tcp_info.snd_ssthresh"] = TcpInfo.SndSsthresh,
            ["tcp_info.snd_cwnd"] = TcpInfo.SndCwnd, ["tcp_info.advmss"] = TcpInfo.AdvMss, ["tcp_info.total_retrans"] = TcpInfo.TotalRetrans,
            ["TCP_ESTABLISHED"] = TcpInfo.LinuxState(Netloom.Stack.TcpState.Established), ["TCP_LISTEN"] = TcpInfo.LinuxState(Netloom.Stack.TcpState.Listen),
            ["TCP_CLOSE_WAIT"] = TcpInfo.LinuxState(Netloom.Stack.TcpState.CloseWait), ["TCP_TIME_WAIT"] = TcpInfo.LinuxState(Netloom.Stack.TcpState.TimeWait),
            ["SO_ZEROCOPY"] = Abi.SO_ZEROCOPY, ["MSG_ZEROCOPY"] = Abi.MSG_ZEROCOPY, ["MSG_ERRQUEUE"] = Abi.MSG_ERRQUEUE, ["MSG_CTRUNC"] = Abi.MSG_CTRUNC,
            ["SOL_IP"] = Abi.SOL_IP, ["IP_RECVERR"] = Abi.IP_RECVERR, ["SO_EE_ORIGIN_ZEROCOPY"] = Abi.SO_EE_ORIGIN_ZEROCOPY,
            ["SO_EE_CODE_ZEROCOPY_COPIED"] = Abi.SO_EE_CODE_ZEROCOPY_COPIED,
            ["sock_extended_err+sockaddr_in"] = sizeof(ErrorQueue.ExtendedError),
            ["sock_extended_err.ee_origin"] = (long)Marshal.OffsetOf<ErrorQueue.ExtendedError>(nameof(ErrorQueue.ExtendedError.Origin)),
            ["sock_extended_err.ee_code"] = (long)Marshal.OffsetOf<ErrorQueue.ExtendedError>(nameof(ErrorQueue.ExtendedError.Code)),
            ["sock_extended_err.ee_info"] = (long)Marshal.OffsetOf<ErrorQueue.ExtendedError>(nameof(ErrorQueue.ExtendedError.Info)),
            ["sock_extended_err.ee_data"] = (long)Marshal.OffsetOf<ErrorQueue.ExtendedError>(nameof(ErrorQueue.ExtendedError.Data)),
            ["CMSG_SPACE(ee)"] = ErrorQueue.Space,
            ["sockaddr_in6"] = SockAddr.In6Length, ["SIN6_LEN_RFC2133"] = SockAddr.In6MinLength, ["sockaddr_in6.sin6_port"] = SockAddr.In6Port,
            ["sockaddr_in6.sin6_flowinfo"] = SockAddr.In6FlowInfo, ["sockaddr_in6.sin6_addr"] = SockAddr.In6Addr, ["sockaddr_in6.sin6_scope_id"] = SockAddr.In6ScopeId,
            ["AF_INET6"] = Abi.AF_INET6, ["IPPROTO_IPV6"] = Abi.IPPROTO_IPV6, ["IPV6_UNICAST_HOPS"] = Abi.IPV6_UNICAST_HOPS,
            ["IPV6_MULTICAST_HOPS"] = Abi.IPV6_MULTICAST_HOPS, ["IPV6_MULTICAST_LOOP"] = Abi.IPV6_MULTICAST_LOOP, ["IPV6_MTU_DISCOVER"] = Abi.IPV6_MTU_DISCOVER,
            ["IPV6_V6ONLY"] = Abi.IPV6_V6ONLY, ["IPV6_RECVPKTINFO"] = Abi.IPV6_RECVPKTINFO, ["IPV6_TCLASS"] = Abi.IPV6_TCLASS,
        };
        for (int i = 0; i < entries.Length; i++) ours[$"nl_engine.{entries[i]}"] = (long)Marshal.OffsetOf<EngineTable>(csharp[i]);
        var errnos = typeof(Netloom.Interop.Errno).GetFields().Where(f => f.IsLiteral);
        foreach (var f in errnos) ours[f.Name] = (int)f.GetRawConstantValue()!;

        string program = $$"""
            #include "{{Path.Combine(native, "netloom.h")}}"
            #include <errno.h>
            #include <fcntl.h>
            #include <netinet/in.h>
            #include <netinet/tcp.h>
            #include <sys/eventfd.h>
            #include <sys/ioctl.h>
            #include <stdio.h>
            #include <time.h>
            #include <linux/errqueue.h>
            struct ee_with_offender { struct sock_extended_err ee; struct sockaddr_in offender; };
            #define P(name, value) printf("%s=%ld\n", name, (long)(value))
            #define E(field) P("nl_engine." #field, offsetof(struct nl_engine, field))
            #define T(field) P("tcp_info." #field, offsetof(struct tcp_info, tcpi_##field))
            int main(void) {
              P("nl_engine", sizeof(struct nl_engine)); P("NL_ENGINE_VERSION", NL_ENGINE_VERSION); P("NL_KERNEL", NL_KERNEL);
              P("nl_host", sizeof(struct nl_host)); P("nl_host.mark", offsetof(struct nl_host, mark));
              P("nl_host.mark_epoll", offsetof(struct nl_host, mark_epoll)); P("nl_host.warn", offsetof(struct nl_host, warn)); P("nl_host.epoll_kernel", offsetof(struct nl_host, epoll_kernel)); P("nl_host.handled", offsetof(struct nl_host, handled)); P("nl_host.wake_consumed", offsetof(struct nl_host, wake_consumed)); P("NL_MAX_FD", NL_MAX_FD);
              {{string.Join(" ", entries.Select(e => $"E({e});"))}}
              P("epoll_event", sizeof(struct epoll_event)); P("epoll_event.data", offsetof(struct epoll_event, data));
              P("msghdr", sizeof(struct msghdr)); P("msghdr.flags", offsetof(struct msghdr, msg_flags));
              P("timespec", sizeof(struct timespec)); P("sockaddr_in", sizeof(struct sockaddr_in));
              P("AF_INET", AF_INET); P("SOCK_STREAM", SOCK_STREAM); P("SOCK_DGRAM", SOCK_DGRAM); P("SOCK_NONBLOCK", SOCK_NONBLOCK);
              P("SOCK_CLOEXEC", SOCK_CLOEXEC); P("IPPROTO_TCP", IPPROTO_TCP); P("IPPROTO_UDP", IPPROTO_UDP); P("SOL_SOCKET", SOL_SOCKET);
              P("SO_REUSEADDR", SO_REUSEADDR); P("SO_TYPE", SO_TYPE); P("SO_ERROR", SO_ERROR); P("SO_SNDBUF", SO_SNDBUF);
              P("SO_RCVBUF", SO_RCVBUF); P("SO_KEEPALIVE", SO_KEEPALIVE); P("SO_LINGER", SO_LINGER); P("SO_REUSEPORT", SO_REUSEPORT);
              P("SO_RCVTIMEO", SO_RCVTIMEO); P("SO_SNDTIMEO", SO_SNDTIMEO); P("SO_ACCEPTCONN", SO_ACCEPTCONN); P("SO_PROTOCOL", SO_PROTOCOL);
              P("SO_DOMAIN", SO_DOMAIN); P("TCP_NODELAY", TCP_NODELAY); P("TCP_MAXSEG", TCP_MAXSEG); P("TCP_KEEPIDLE", TCP_KEEPIDLE);
              P("TCP_KEEPINTVL", TCP_KEEPINTVL); P("TCP_KEEPCNT", TCP_KEEPCNT); P("TCP_INFO", TCP_INFO); P("IP_TOS", IP_TOS);
              P("MSG_PEEK", MSG_PEEK); P("MSG_TRUNC", MSG_TRUNC); P("MSG_DONTWAIT", MSG_DONTWAIT); P("MSG_WAITALL", MSG_WAITALL);
              P("MSG_NOSIGNAL", MSG_NOSIGNAL); P("SHUT_RD", SHUT_RD); P("SHUT_WR", SHUT_WR); P("SHUT_RDWR", SHUT_RDWR);
              P("F_GETFL", F_GETFL); P("F_SETFL", F_SETFL); P("O_NONBLOCK", O_NONBLOCK); P("O_RDWR", O_RDWR);
              P("FIONREAD", FIONREAD); P("FIONBIO", FIONBIO);
              P("POLLIN", POLLIN); P("POLLPRI", POLLPRI); P("POLLOUT", POLLOUT); P("POLLERR", POLLERR); P("POLLHUP", POLLHUP);
              P("POLLNVAL", POLLNVAL); P("POLLRDNORM", POLLRDNORM); P("POLLWRNORM", POLLWRNORM); P("POLLRDHUP", POLLRDHUP);
              P("NL_WAKE_MARK", (long)NL_WAKE_MARK); P("EPOLL_CTL_ADD", EPOLL_CTL_ADD); P("EPOLL_CTL_DEL", EPOLL_CTL_DEL); P("EPOLL_CTL_MOD", EPOLL_CTL_MOD);
              P("EPOLLET", (unsigned)EPOLLET); P("EPOLLONESHOT", EPOLLONESHOT); P("EPOLLEXCLUSIVE", EPOLLEXCLUSIVE); P("SIGPIPE", SIGPIPE);
              P("EFD_CLOEXEC", EFD_CLOEXEC); P("EFD_NONBLOCK", EFD_NONBLOCK); P("SEEK_SET", SEEK_SET); P("SEEK_CUR", SEEK_CUR);
              T(state); T(options); T(rto); T(snd_mss); T(rcv_mss); T(unacked); T(rtt); T(rttvar); T(snd_ssthresh); T(snd_cwnd);
              T(advmss); T(total_retrans);
              P("SO_ZEROCOPY", SO_ZEROCOPY); P("MSG_ZEROCOPY", MSG_ZEROCOPY); P("MSG_ERRQUEUE", MSG_ERRQUEUE); P("MSG_CTRUNC", MSG_CTRUNC);
              P("SOL_IP", SOL_IP); P("IP_RECVERR", IP_RECVERR); P("SO_EE_ORIGIN_ZEROCOPY", SO_EE_ORIGIN_ZEROCOPY); P("SO_EE_CODE_ZEROCOPY_COPIED", SO_EE_CODE_ZEROCOPY_COPIED);
              P("sock_extended_err+sockaddr_in", sizeof(struct ee_with_offender)); P("sock_extended_err.ee_origin", offsetof(struct sock_extended_err, ee_origin));
              P("sock_extended_err.ee_code", offsetof(struct sock_extended_err, ee_code)); P("sock_extended_err.ee_info", offsetof(struct sock_extended_err, ee_info));
              P("sock_extended_err.ee_data", offsetof(struct sock_extended_err, ee_data)); P("CMSG_SPACE(ee)", CMSG_SPACE(sizeof(struct ee_with_offender)));
              P("sockaddr_in6", sizeof(struct sockaddr_in6)); P("SIN6_LEN_RFC2133", offsetof(struct sockaddr_in6, sin6_scope_id));
              P("sockaddr_in6.sin6_port", offsetof(struct sockaddr_in6, sin6_port)); P("sockaddr_in6.sin6_flowinfo", offsetof(struct sockaddr_in6, sin6_flowinfo));
              P("sockaddr_in6.sin6_addr", offsetof(struct sockaddr_in6, sin6_addr)); P("sockaddr_in6.sin6_scope_id", offsetof(struct sockaddr_in6, sin6_scope_id));
              P("AF_INET6", AF_INET6); P("IPPROTO_IPV6", IPPROTO_IPV6); P("IPV6_UNICAST_HOPS", IPV6_UNICAST_HOPS);
              P("IPV6_MULTICAST_HOPS", IPV6_MULTICAST_HOPS); P("IPV6_MULTICAST_LOOP", IPV6_MULTICAST_LOOP); P("IPV6_MTU_DISCOVER", IPV6_MTU_DISCOVER);
              P("IPV6_V6ONLY", IPV6_V6ONLY); P("IPV6_RECVPKTINFO", IPV6_RECVPKTINFO); P("IPV6_TCLASS", IPV6_TCLASS);
              P("TCP_ESTABLISHED", TCP_ESTABLISHED); P("TCP_LISTEN", TCP_LISTEN); P("TCP_CLOSE_WAIT", TCP_CLOSE_WAIT); P("TCP_TIME_WAIT", TCP_TIME_WAIT);
              {{string.Join(" ", errnos.Select(f => $"P(\"{f.Name}\", {f.Name});"))}}
              return 0;
            }
            """;
        CLayout.AssertSame(program, ours);
    }
}
