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
#include <linux/if_xdp.h>
#include <linux/if_link.h>
#include <linux/bpf.h>
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
  P("AF_XDP", AF_XDP); P("SOL_XDP", SOL_XDP); P("XDP_MMAP_OFFSETS", XDP_MMAP_OFFSETS); P("XDP_RX_RING", XDP_RX_RING); P("XDP_TX_RING", XDP_TX_RING);
  P("XDP_UMEM_REG", XDP_UMEM_REG); P("XDP_UMEM_FILL_RING", XDP_UMEM_FILL_RING); P("XDP_UMEM_COMPLETION_RING", XDP_UMEM_COMPLETION_RING);
  P("XDP_STATISTICS", XDP_STATISTICS); P("XDP_OPTIONS", XDP_OPTIONS); P("XDP_COPY", XDP_COPY); P("XDP_ZEROCOPY", XDP_ZEROCOPY);
  P("XDP_USE_NEED_WAKEUP", XDP_USE_NEED_WAKEUP); P("XDP_SHARED_UMEM", XDP_SHARED_UMEM); P("XDP_UMEM_UNALIGNED_CHUNK_FLAG", XDP_UMEM_UNALIGNED_CHUNK_FLAG);
  P("XDP_RING_NEED_WAKEUP", XDP_RING_NEED_WAKEUP); P("XSK_UNALIGNED_BUF_OFFSET_SHIFT", XSK_UNALIGNED_BUF_OFFSET_SHIFT);
  P("XDP_PGOFF_TX_RING", XDP_PGOFF_TX_RING); P("XDP_UMEM_PGOFF_FILL_RING", XDP_UMEM_PGOFF_FILL_RING); P("XDP_UMEM_PGOFF_COMPLETION_RING", XDP_UMEM_PGOFF_COMPLETION_RING);
  P("xdp_umem_reg", sizeof(struct xdp_umem_reg)); P("xdp_umem_reg.flags", offsetof(struct xdp_umem_reg, flags));
  P("xdp_mmap_offsets", sizeof(struct xdp_mmap_offsets)); P("xdp_mmap_offsets.fr", offsetof(struct xdp_mmap_offsets, fr));
  P("xdp_ring_offset.flags", offsetof(struct xdp_ring_offset, flags)); P("xdp_ring_offset.desc", offsetof(struct xdp_ring_offset, desc));
  P("sockaddr_xdp", sizeof(struct sockaddr_xdp)); P("sockaddr_xdp.queue", offsetof(struct sockaddr_xdp, sxdp_queue_id));
  P("xdp_desc", sizeof(struct xdp_desc)); P("xdp_statistics", sizeof(struct xdp_statistics));
  P("xdp_statistics.rx_ring_full", offsetof(struct xdp_statistics, rx_ring_full));
  P("SYS_bpf", SYS_bpf); P("BPF_MAP_CREATE", BPF_MAP_CREATE); P("BPF_MAP_UPDATE_ELEM", BPF_MAP_UPDATE_ELEM); P("BPF_PROG_LOAD", BPF_PROG_LOAD);
  P("BPF_LINK_CREATE", BPF_LINK_CREATE); P("BPF_MAP_TYPE_XSKMAP", BPF_MAP_TYPE_XSKMAP); P("BPF_PROG_TYPE_XDP", BPF_PROG_TYPE_XDP); P("BPF_XDP", BPF_XDP);
  P("XDP_FLAGS_SKB_MODE", XDP_FLAGS_SKB_MODE); P("XDP_FLAGS_DRV_MODE", XDP_FLAGS_DRV_MODE); P("XDP_PASS", XDP_PASS);
  P("BPF_FUNC_redirect_map", BPF_FUNC_redirect_map); P("xdp_md.rx_queue_index", offsetof(struct xdp_md, rx_queue_index));
  P("bpf_insn", sizeof(struct bpf_insn));
  P("attr.map_flags", offsetof(union bpf_attr, map_flags)); P("attr.key", offsetof(union bpf_attr, key)); P("attr.value", offsetof(union bpf_attr, value));
  P("attr.license", offsetof(union bpf_attr, license)); P("attr.log_buf", offsetof(union bpf_attr, log_buf)); P("attr.prog_name", offsetof(union bpf_attr, prog_name));
  P("attr.expected_attach_type", offsetof(union bpf_attr, expected_attach_type));
  P("attr.link_create.attach_type", offsetof(union bpf_attr, link_create.attach_type)); P("attr.link_create.flags", offsetof(union bpf_attr, link_create.flags));
  P("EBUSY", EBUSY); P("EEXIST", EEXIST);
  P("BPF_MAP_LOOKUP_ELEM", BPF_MAP_LOOKUP_ELEM); P("BPF_MAP_DELETE_ELEM", BPF_MAP_DELETE_ELEM); P("BPF_PROG_TEST_RUN", BPF_PROG_TEST_RUN);
  P("BPF_LINK_UPDATE", BPF_LINK_UPDATE); P("BPF_MAP_TYPE_HASH", BPF_MAP_TYPE_HASH); P("BPF_MAP_TYPE_ARRAY", BPF_MAP_TYPE_ARRAY);
  P("BPF_MAP_TYPE_PERCPU_ARRAY", BPF_MAP_TYPE_PERCPU_ARRAY); P("BPF_MAP_TYPE_DEVMAP_HASH", BPF_MAP_TYPE_DEVMAP_HASH);
  P("BPF_F_TEST_XDP_LIVE_FRAMES", BPF_F_TEST_XDP_LIVE_FRAMES); P("BPF_EXIST", BPF_EXIST); P("BPF_FUNC_map_lookup_elem", BPF_FUNC_map_lookup_elem);
  P("xdp_md", sizeof(struct xdp_md)); P("xdp_md.ingress_ifindex", offsetof(struct xdp_md, ingress_ifindex));
  P("attr.test.repeat", offsetof(union bpf_attr, test.repeat)); P("attr.test.ctx_in", offsetof(union bpf_attr, test.ctx_in));
  P("attr.test.flags", offsetof(union bpf_attr, test.flags)); P("attr.test.batch_size", offsetof(union bpf_attr, test.batch_size));
  P("attr.link_update.new_prog_fd", offsetof(union bpf_attr, link_update.new_prog_fd));
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
            ["AF_XDP"] = Xsk.AF_XDP, ["SOL_XDP"] = Xsk.SOL_XDP, ["XDP_MMAP_OFFSETS"] = Xsk.XDP_MMAP_OFFSETS, ["XDP_RX_RING"] = Xsk.XDP_RX_RING,
            ["XDP_TX_RING"] = Xsk.XDP_TX_RING, ["XDP_UMEM_REG"] = Xsk.XDP_UMEM_REG, ["XDP_UMEM_FILL_RING"] = Xsk.XDP_UMEM_FILL_RING,
            ["XDP_UMEM_COMPLETION_RING"] = Xsk.XDP_UMEM_COMPLETION_RING, ["XDP_STATISTICS"] = Xsk.XDP_STATISTICS, ["XDP_OPTIONS"] = Xsk.XDP_OPTIONS,
            ["XDP_COPY"] = Xsk.XDP_COPY, ["XDP_ZEROCOPY"] = Xsk.XDP_ZEROCOPY, ["XDP_USE_NEED_WAKEUP"] = Xsk.XDP_USE_NEED_WAKEUP,
            ["XDP_SHARED_UMEM"] = Xsk.XDP_SHARED_UMEM, ["XDP_UMEM_UNALIGNED_CHUNK_FLAG"] = Xsk.XDP_UMEM_UNALIGNED_CHUNK_FLAG,
            ["XDP_RING_NEED_WAKEUP"] = Xsk.XDP_RING_NEED_WAKEUP, ["XSK_UNALIGNED_BUF_OFFSET_SHIFT"] = Xsk.XSK_UNALIGNED_BUF_OFFSET_SHIFT,
            ["XDP_PGOFF_TX_RING"] = Xsk.XDP_PGOFF_TX_RING, ["XDP_UMEM_PGOFF_FILL_RING"] = Xsk.XDP_UMEM_PGOFF_FILL_RING,
            ["XDP_UMEM_PGOFF_COMPLETION_RING"] = Xsk.XDP_UMEM_PGOFF_COMPLETION_RING,
            ["xdp_umem_reg"] = sizeof(Xsk.UmemReg), ["xdp_umem_reg.flags"] = Marshal.OffsetOf<Xsk.UmemReg>(nameof(Xsk.UmemReg.Flags)),
            ["xdp_mmap_offsets"] = sizeof(Xsk.MmapOffsets), ["xdp_mmap_offsets.fr"] = Marshal.OffsetOf<Xsk.MmapOffsets>(nameof(Xsk.MmapOffsets.Fill)),
            ["xdp_ring_offset.flags"] = Marshal.OffsetOf<Xsk.RingOffset>(nameof(Xsk.RingOffset.Flags)),
            ["xdp_ring_offset.desc"] = Marshal.OffsetOf<Xsk.RingOffset>(nameof(Xsk.RingOffset.Desc)),
            ["sockaddr_xdp"] = sizeof(Xsk.SockaddrXdp), ["sockaddr_xdp.queue"] = Marshal.OffsetOf<Xsk.SockaddrXdp>(nameof(Xsk.SockaddrXdp.QueueId)),
            ["xdp_desc"] = sizeof(Xsk.Desc), ["xdp_statistics"] = sizeof(Xsk.Statistics),
            ["xdp_statistics.rx_ring_full"] = Marshal.OffsetOf<Xsk.Statistics>(nameof(Xsk.Statistics.RxRingFull)),
            ["SYS_bpf"] = Bpf.SysBpf, ["BPF_MAP_CREATE"] = Bpf.BPF_MAP_CREATE, ["BPF_MAP_UPDATE_ELEM"] = Bpf.BPF_MAP_UPDATE_ELEM,
            ["BPF_PROG_LOAD"] = Bpf.BPF_PROG_LOAD, ["BPF_LINK_CREATE"] = Bpf.BPF_LINK_CREATE, ["BPF_MAP_TYPE_XSKMAP"] = Bpf.BPF_MAP_TYPE_XSKMAP,
            ["BPF_PROG_TYPE_XDP"] = Bpf.BPF_PROG_TYPE_XDP, ["BPF_XDP"] = Bpf.BPF_XDP,
            ["XDP_FLAGS_SKB_MODE"] = Bpf.XDP_FLAGS_SKB_MODE, ["XDP_FLAGS_DRV_MODE"] = Bpf.XDP_FLAGS_DRV_MODE,
            ["XDP_PASS"] = Netloom.Rings.XdpProgram.XdpPass, ["BPF_FUNC_redirect_map"] = Netloom.Rings.XdpProgram.BpfFuncRedirectMap,
            ["xdp_md.rx_queue_index"] = Netloom.Rings.XdpProgram.XdpMdRxQueueIndex, ["bpf_insn"] = sizeof(Bpf.Insn),
            ["attr.map_flags"] = Marshal.OffsetOf<Bpf.MapCreateAttr>(nameof(Bpf.MapCreateAttr.MapFlags)),
            ["attr.key"] = Marshal.OffsetOf<Bpf.MapElemAttr>(nameof(Bpf.MapElemAttr.Key)),
            ["attr.value"] = Marshal.OffsetOf<Bpf.MapElemAttr>(nameof(Bpf.MapElemAttr.Value)),
            ["attr.license"] = Marshal.OffsetOf<Bpf.ProgLoadAttr>(nameof(Bpf.ProgLoadAttr.License)),
            ["attr.log_buf"] = Marshal.OffsetOf<Bpf.ProgLoadAttr>(nameof(Bpf.ProgLoadAttr.LogBuf)),
            ["attr.prog_name"] = Marshal.OffsetOf<Bpf.ProgLoadAttr>(nameof(Bpf.ProgLoadAttr.ProgName)),
            ["attr.expected_attach_type"] = Marshal.OffsetOf<Bpf.ProgLoadAttr>(nameof(Bpf.ProgLoadAttr.ExpectedAttachType)),
            ["attr.link_create.attach_type"] = Marshal.OffsetOf<Bpf.LinkCreateAttr>(nameof(Bpf.LinkCreateAttr.AttachType)),
            ["attr.link_create.flags"] = Marshal.OffsetOf<Bpf.LinkCreateAttr>(nameof(Bpf.LinkCreateAttr.Flags)),
            ["EBUSY"] = Errno.EBUSY, ["EEXIST"] = Errno.EEXIST,
            ["BPF_MAP_LOOKUP_ELEM"] = Bpf.BPF_MAP_LOOKUP_ELEM, ["BPF_MAP_DELETE_ELEM"] = Bpf.BPF_MAP_DELETE_ELEM, ["BPF_PROG_TEST_RUN"] = Bpf.BPF_PROG_TEST_RUN,
            ["BPF_LINK_UPDATE"] = Bpf.BPF_LINK_UPDATE, ["BPF_MAP_TYPE_HASH"] = Bpf.BPF_MAP_TYPE_HASH, ["BPF_MAP_TYPE_ARRAY"] = Bpf.BPF_MAP_TYPE_ARRAY,
            ["BPF_MAP_TYPE_PERCPU_ARRAY"] = Bpf.BPF_MAP_TYPE_PERCPU_ARRAY, ["BPF_MAP_TYPE_DEVMAP_HASH"] = Bpf.BPF_MAP_TYPE_DEVMAP_HASH,
            ["BPF_F_TEST_XDP_LIVE_FRAMES"] = Bpf.BPF_F_TEST_XDP_LIVE_FRAMES, ["BPF_EXIST"] = 2, ["BPF_FUNC_map_lookup_elem"] = 1,
            ["xdp_md"] = sizeof(Bpf.XdpMd), ["xdp_md.ingress_ifindex"] = Marshal.OffsetOf<Bpf.XdpMd>(nameof(Bpf.XdpMd.IngressIfIndex)),
            ["attr.test.repeat"] = Marshal.OffsetOf<Bpf.TestRunAttr>(nameof(Bpf.TestRunAttr.Repeat)),
            ["attr.test.ctx_in"] = Marshal.OffsetOf<Bpf.TestRunAttr>(nameof(Bpf.TestRunAttr.CtxIn)),
            ["attr.test.flags"] = Marshal.OffsetOf<Bpf.TestRunAttr>(nameof(Bpf.TestRunAttr.Flags)),
            ["attr.test.batch_size"] = Marshal.OffsetOf<Bpf.TestRunAttr>(nameof(Bpf.TestRunAttr.BatchSize)),
            ["attr.link_update.new_prog_fd"] = Marshal.OffsetOf<Bpf.LinkUpdateAttr>(nameof(Bpf.LinkUpdateAttr.NewProgFd)),
        };
        CLayout.AssertSame(Program, ours);
    }
}
