using System.Runtime.InteropServices;

namespace Netloom.Interop;

/// <summary>AF_PACKET sockets (packet(7)) with a TPACKET_V3 receive ring.</summary>
internal static unsafe class PacketSocket
{
    public const int AF_PACKET = 17, SOCK_RAW = 3, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000;
    public const int SOL_PACKET = 263;
    public const int PACKET_RX_RING = 5, PACKET_STATISTICS = 6, PACKET_VERSION = 10, PACKET_TX_RING = 13, PACKET_QDISC_BYPASS = 20;
    public const int TPACKET_V3 = 2;
    public const ushort ETH_P_ALL = 0x0003;
    public const uint TP_STATUS_KERNEL = 0, TP_STATUS_USER = 1;

    [StructLayout(LayoutKind.Sequential)]
    public struct SockaddrLl
    {
        public ushort Family;
        public ushort Protocol;   // network byte order
        public int IfIndex;
        public ushort HaType;
        public byte PktType;
        public byte HaLen;
        public fixed byte Addr[8];
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct TpacketReq3
    {
        public uint BlockSize;
        public uint BlockCount;
        public uint FrameSize;
        public uint FrameCount;
        public uint RetireBlockTimeoutMs;
        public uint SizeofPriv;
        public uint FeatureRequestWord;
    }

    /// <summary>struct tpacket_block_desc with its tpacket_hdr_v1.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 48)]
    public struct BlockDesc
    {
        [FieldOffset(0)] public uint Version;
        [FieldOffset(4)] public uint OffsetToPriv;
        [FieldOffset(8)] public uint BlockStatus;
        [FieldOffset(12)] public uint NumPackets;
        [FieldOffset(16)] public uint OffsetToFirstPacket;
        [FieldOffset(20)] public uint BlockLength;
        [FieldOffset(24)] public ulong SequenceNumber;
    }

    /// <summary>struct tpacket3_hdr.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 48)]
    public struct Tpacket3Hdr
    {
        [FieldOffset(0)] public uint NextOffset;
        [FieldOffset(4)] public uint Seconds;
        [FieldOffset(8)] public uint Nanoseconds;
        [FieldOffset(12)] public uint SnapLength;
        [FieldOffset(16)] public uint Length;
        [FieldOffset(20)] public uint Status;
        [FieldOffset(24)] public ushort Mac;
        [FieldOffset(26)] public ushort Net;
    }

    /// <summary>struct tpacket_stats_v3.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct StatsV3
    {
        public uint Packets;
        public uint Drops;
        public uint FreezeQueueCount;
    }
}
