using System.Runtime.InteropServices;
using Netloom.Interop;
using Netloom.Interop.Tests.Support;

namespace Netloom.Interop.Tests.Rings;

/// <summary>
/// Every kernel struct and constant the ports use, compared with what the C compiler on this
/// machine says (a tiny C program compiled and run by the test).
/// </summary>
public class KernelLayoutTests
{
    private const string Program = """
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <poll.h>
#include <fcntl.h>
#include <sched.h>
#include <errno.h>
#define P(name, value) printf("%s=%ld\n", name, (long)(value))
int main(void) {
  P("ifreq", sizeof(struct ifreq)); P("ifreq.flags", offsetof(struct ifreq, ifr_flags)); P("ifreq.ifindex", offsetof(struct ifreq, ifr_ifindex));
  P("TUNSETIFF", TUNSETIFF); P("IFF_TAP", IFF_TAP); P("IFF_NO_PI", IFF_NO_PI); P("IFF_VNET_HDR", IFF_VNET_HDR);
  P("SIOCGIFFLAGS", SIOCGIFFLAGS); P("SIOCSIFFLAGS", SIOCSIFFLAGS); P("SIOCGIFINDEX", SIOCGIFINDEX); P("IFF_UP", IFF_UP);
  P("sockaddr_ll", sizeof(struct sockaddr_ll)); P("sockaddr_ll.protocol", offsetof(struct sockaddr_ll, sll_protocol));
  P("sockaddr_ll.ifindex", offsetof(struct sockaddr_ll, sll_ifindex)); P("sockaddr_ll.addr", offsetof(struct sockaddr_ll, sll_addr));
  P("tpacket_req3", sizeof(struct tpacket_req3)); P("tpacket_req3.retire", offsetof(struct tpacket_req3, tp_retire_blk_tov));
  P("tpacket3_hdr", sizeof(struct tpacket3_hdr)); P("tpacket3_hdr.snaplen", offsetof(struct tpacket3_hdr, tp_snaplen));
  P("tpacket3_hdr.status", offsetof(struct tpacket3_hdr, tp_status)); P("tpacket3_hdr.mac", offsetof(struct tpacket3_hdr, tp_mac));
  P("block_desc.status", offsetof(struct tpacket_block_desc, hdr) + offsetof(struct tpacket_hdr_v1, block_status));
  P("block_desc.num_pkts", offsetof(struct tpacket_block_desc, hdr) + offsetof(struct tpacket_hdr_v1, num_pkts));
  P("block_desc.first", offsetof(struct tpacket_block_desc, hdr) + offsetof(struct tpacket_hdr_v1, offset_to_first_pkt));
  P("block_desc.seq", offsetof(struct tpacket_block_desc, hdr) + offsetof(struct tpacket_hdr_v1, seq_num));
  P("tpacket_stats_v3", sizeof(struct tpacket_stats_v3));
  P("SOL_PACKET", SOL_PACKET); P("PACKET_VERSION", PACKET_VERSION); P("TPACKET_V3", TPACKET_V3); P("PACKET_RX_RING", PACKET_RX_RING);
  P("PACKET_QDISC_BYPASS", PACKET_QDISC_BYPASS); P("PACKET_STATISTICS", PACKET_STATISTICS); P("PACKET_IGNORE_OUTGOING", PACKET_IGNORE_OUTGOING);
  P("TP_STATUS_USER", TP_STATUS_USER); P("ETH_P_ALL", ETH_P_ALL); P("AF_PACKET", AF_PACKET); P("SOCK_RAW", SOCK_RAW);
  P("SOCK_NONBLOCK", SOCK_NONBLOCK); P("SOCK_CLOEXEC", SOCK_CLOEXEC);
  P("mmsghdr", sizeof(struct mmsghdr)); P("mmsghdr.len", offsetof(struct mmsghdr, msg_len)); P("msghdr.iov", offsetof(struct msghdr, msg_iov));
  P("msghdr.iovlen", offsetof(struct msghdr, msg_iovlen)); P("iovec", sizeof(struct iovec)); P("pollfd", sizeof(struct pollfd));
  P("O_NONBLOCK", O_NONBLOCK); P("O_CLOEXEC", O_CLOEXEC); P("POLLIN", POLLIN); P("POLLOUT", POLLOUT);
  P("MAP_SHARED", MAP_SHARED); P("PROT_WRITE", PROT_WRITE); P("SYS_futex", SYS_futex); P("CLONE_NEWNET", CLONE_NEWNET);
  P("EAGAIN", EAGAIN); P("ENOBUFS", ENOBUFS);
  return 0;
}
""";

    [ToolFact("gcc")]
    public unsafe void Structs_and_constants_match_the_c_compiler()
    {
        var ours = new Dictionary<string, long>
        {
            ["ifreq"] = sizeof(Netdevice.IfReq),
            ["ifreq.flags"] = Marshal.OffsetOf<Netdevice.IfReq>(nameof(Netdevice.IfReq.Flags)),
            ["ifreq.ifindex"] = Marshal.OffsetOf<Netdevice.IfReq>(nameof(Netdevice.IfReq.Index)),
            ["TUNSETIFF"] = (long)Netdevice.TUNSETIFF,
            ["IFF_TAP"] = Netdevice.IFF_TAP, ["IFF_NO_PI"] = Netdevice.IFF_NO_PI, ["IFF_VNET_HDR"] = Netdevice.IFF_VNET_HDR,
            ["SIOCGIFFLAGS"] = (long)Netdevice.SIOCGIFFLAGS, ["SIOCSIFFLAGS"] = (long)Netdevice.SIOCSIFFLAGS,
            ["SIOCGIFINDEX"] = (long)Netdevice.SIOCGIFINDEX, ["IFF_UP"] = Netdevice.IFF_UP,
            ["sockaddr_ll"] = sizeof(PacketSocket.SockaddrLl),
            ["sockaddr_ll.protocol"] = Marshal.OffsetOf<PacketSocket.SockaddrLl>(nameof(PacketSocket.SockaddrLl.Protocol)),
            ["sockaddr_ll.ifindex"] = Marshal.OffsetOf<PacketSocket.SockaddrLl>(nameof(PacketSocket.SockaddrLl.IfIndex)),
            ["sockaddr_ll.addr"] = Marshal.OffsetOf<PacketSocket.SockaddrLl>(nameof(PacketSocket.SockaddrLl.Addr)),
            ["tpacket_req3"] = sizeof(PacketSocket.TpacketReq3),
            ["tpacket_req3.retire"] = Marshal.OffsetOf<PacketSocket.TpacketReq3>(nameof(PacketSocket.TpacketReq3.RetireBlockTimeoutMs)),
            ["tpacket3_hdr"] = sizeof(PacketSocket.Tpacket3Hdr),
            ["tpacket3_hdr.snaplen"] = Marshal.OffsetOf<PacketSocket.Tpacket3Hdr>(nameof(PacketSocket.Tpacket3Hdr.SnapLength)),
            ["tpacket3_hdr.status"] = Marshal.OffsetOf<PacketSocket.Tpacket3Hdr>(nameof(PacketSocket.Tpacket3Hdr.Status)),
            ["tpacket3_hdr.mac"] = Marshal.OffsetOf<PacketSocket.Tpacket3Hdr>(nameof(PacketSocket.Tpacket3Hdr.Mac)),
            ["block_desc.status"] = Marshal.OffsetOf<PacketSocket.BlockDesc>(nameof(PacketSocket.BlockDesc.BlockStatus)),
            ["block_desc.num_pkts"] = Marshal.OffsetOf<PacketSocket.BlockDesc>(nameof(PacketSocket.BlockDesc.NumPackets)),
            ["block_desc.first"] = Marshal.OffsetOf<PacketSocket.BlockDesc>(nameof(PacketSocket.BlockDesc.OffsetToFirstPacket)),
            ["block_desc.seq"] = Marshal.OffsetOf<PacketSocket.BlockDesc>(nameof(PacketSocket.BlockDesc.SequenceNumber)),
            ["tpacket_stats_v3"] = sizeof(PacketSocket.StatsV3),
            ["SOL_PACKET"] = PacketSocket.SOL_PACKET, ["PACKET_VERSION"] = PacketSocket.PACKET_VERSION, ["TPACKET_V3"] = PacketSocket.TPACKET_V3,
            ["PACKET_RX_RING"] = PacketSocket.PACKET_RX_RING, ["PACKET_QDISC_BYPASS"] = PacketSocket.PACKET_QDISC_BYPASS,
            ["PACKET_STATISTICS"] = PacketSocket.PACKET_STATISTICS, ["PACKET_IGNORE_OUTGOING"] = Netloom.Rings.AfPacketPort.PacketIgnoreOutgoing,
            ["TP_STATUS_USER"] = PacketSocket.TP_STATUS_USER, ["ETH_P_ALL"] = PacketSocket.ETH_P_ALL, ["AF_PACKET"] = PacketSocket.AF_PACKET,
            ["SOCK_RAW"] = PacketSocket.SOCK_RAW, ["SOCK_NONBLOCK"] = PacketSocket.SOCK_NONBLOCK, ["SOCK_CLOEXEC"] = PacketSocket.SOCK_CLOEXEC,
            ["mmsghdr"] = sizeof(Libc.MMsgHdr), ["mmsghdr.len"] = Marshal.OffsetOf<Libc.MMsgHdr>(nameof(Libc.MMsgHdr.Length)),
            ["msghdr.iov"] = Marshal.OffsetOf<Libc.MsgHdr>(nameof(Libc.MsgHdr.Iov)), ["msghdr.iovlen"] = Marshal.OffsetOf<Libc.MsgHdr>(nameof(Libc.MsgHdr.IovLength)),
            ["iovec"] = sizeof(Libc.IoVec), ["pollfd"] = sizeof(Libc.PollFd),
            ["O_NONBLOCK"] = Libc.O_NONBLOCK, ["O_CLOEXEC"] = Libc.O_CLOEXEC, ["POLLIN"] = Libc.POLLIN, ["POLLOUT"] = Libc.POLLOUT,
            ["MAP_SHARED"] = Libc.MAP_SHARED, ["PROT_WRITE"] = Libc.PROT_WRITE, ["SYS_futex"] = Futex.SysFutex, ["CLONE_NEWNET"] = Libc.CLONE_NEWNET,
            ["EAGAIN"] = Errno.EAGAIN, ["ENOBUFS"] = Errno.ENOBUFS,
        };
        CLayout.AssertSame(Program, ours);
    }
}
