using System.Buffers.Binary;
using System.Text;

namespace Netloom.Interop;

/// <summary>
/// One question to the kernel's "netdev" generic netlink family (Documentation/netlink/specs/netdev.yaml):
/// an interface's XDP features. A frame redirected into an interface (XDP_REDIRECT through a
/// DEVMAP) needs NETDEV_XDP_ACT_NDO_XMIT there, and a veth has it only while its peer has an XDP
/// program or GRO on; without it the kernel drops the frame.
/// </summary>
internal static unsafe class NetdevNetlink
{
    private const int AF_NETLINK = 16, NETLINK_GENERIC = 16, SOCK_RAW = 3, SOCK_CLOEXEC = 0x80000;
    private const ushort GENL_ID_CTRL = 0x10, NLM_F_REQUEST = 1, NLMSG_ERROR = 2;
    private const byte CTRL_CMD_GETFAMILY = 3, NETDEV_CMD_DEV_GET = 1;
    private const ushort CTRL_ATTR_FAMILY_ID = 1, CTRL_ATTR_FAMILY_NAME = 2, NETDEV_A_DEV_IFINDEX = 1, NETDEV_A_DEV_XDP_FEATURES = 3;

    /// <summary>enum netdev_xdp_act: the interface accepts frames redirected to it (ndo_xdp_xmit).</summary>
    public const ulong XdpActNdoXmit = 1UL << 2;

    /// <summary>A generic netlink socket; it asks about the network namespace it was opened in. -1 on failure.</summary>
    public static int Open() => Libc.Socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);

    /// <summary>
    /// The xdp-features bits of interface <paramref name="ifindex"/> in the namespace of socket
    /// <paramref name="fd"/> (<see cref="Open"/>), or null when the kernel cannot say (no netdev
    /// family: before Linux 6.3).
    /// </summary>
    public static ulong? XdpFeatures(int fd, int ifindex)
    {
        if (fd < 0) return null;
        {
            Span<byte> name = stackalloc byte[7];
            Encoding.ASCII.GetBytes("netdev", name);
            name[6] = 0;
            var family = Ask(fd, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME, name, CTRL_ATTR_FAMILY_ID);
            if (family is not { Length: >= 2 } f) return null;
            Span<byte> index = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(index, ifindex);
            var features = Ask(fd, BinaryPrimitives.ReadUInt16LittleEndian(f), NETDEV_CMD_DEV_GET, NETDEV_A_DEV_IFINDEX, index, NETDEV_A_DEV_XDP_FEATURES);
            return features is { Length: >= 8 } x ? BinaryPrimitives.ReadUInt64LittleEndian(x) : null;
        }
    }

    /// <summary>Sends one request with one attribute; the payload of attribute <paramref name="want"/> in the reply, or null.</summary>
    private static byte[]? Ask(int fd, ushort type, byte cmd, ushort attr, ReadOnlySpan<byte> value, ushort want)
    {
        int attrLen = 4 + value.Length, len = 16 + 4 + (attrLen + 3 & ~3);
        Span<byte> msg = stackalloc byte[len];
        msg.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(msg, (uint)len);      // nlmsghdr
        BinaryPrimitives.WriteUInt16LittleEndian(msg[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(msg[6..], NLM_F_REQUEST);
        BinaryPrimitives.WriteUInt32LittleEndian(msg[8..], 1);
        msg[16] = cmd;                                                  // genlmsghdr
        msg[17] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(msg[20..], (ushort)attrLen); // nlattr
        BinaryPrimitives.WriteUInt16LittleEndian(msg[22..], attr);
        value.CopyTo(msg[24..]);
        fixed (byte* p = msg) if (Libc.Write(fd, p, (nuint)len) != len) return null;

        var reply = new byte[8192];
        nint got;
        fixed (byte* p = reply) got = Libc.Read(fd, p, (nuint)reply.Length);
        if (got < 20) return null;
        var r = reply.AsSpan(0, (int)got);
        uint total = BinaryPrimitives.ReadUInt32LittleEndian(r);
        if (BinaryPrimitives.ReadUInt16LittleEndian(r[4..]) == NLMSG_ERROR || total > r.Length || total < 20) return null;
        for (int at = 20; at + 4 <= total;)
        {
            int l = BinaryPrimitives.ReadUInt16LittleEndian(r[at..]);
            int t = BinaryPrimitives.ReadUInt16LittleEndian(r[(at + 2)..]) & 0x3fff;
            if (l < 4 || at + l > total) return null;
            if (t == want) return r.Slice(at + 4, l - 4).ToArray();
            at += l + 3 & ~3;
        }
        return null;
    }
}
