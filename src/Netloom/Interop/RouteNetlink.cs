using System.Buffers.Binary;
using System.Text;

namespace Netloom.Interop;

/// <summary>
/// One rtnetlink question (RTM_GETLINK, linux/rtnetlink.h and linux/if_link.h): what kind of link
/// an interface is, and whether its peer lives in another network namespace. bpf_redirect_peer
/// needs both: the target must have a peer device (veth, netkit) and that peer must be in another
/// namespace than the device the frame came in on, or the kernel drops the frame.
/// </summary>
internal static unsafe class RouteNetlink
{
    private const int AF_NETLINK = 16, NETLINK_ROUTE = 0, SOCK_RAW = 3, SOCK_CLOEXEC = 0x80000;
    private const ushort RTM_GETLINK = 18, RTM_NEWLINK = 16, NLM_F_REQUEST = 1;
    private const int IFLA_LINKINFO = 18, IFLA_LINK_NETNSID = 37, IFLA_INFO_KIND = 1;

    /// <summary>
    /// Interface <paramref name="ifindex"/> of the calling thread's namespace: its link kind
    /// ("veth", "netkit", ... or "" for a physical one) and whether its peer is in another
    /// namespace (IFLA_LINK_NETNSID present). Null when the kernel does not answer.
    /// </summary>
    public static (string Kind, bool PeerElsewhere)? Link(int ifindex)
    {
        int fd = Libc.Socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0) return null;
        try
        {
            Span<byte> msg = stackalloc byte[32];
            msg.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(msg, 32);            // nlmsghdr
            BinaryPrimitives.WriteUInt16LittleEndian(msg[4..], RTM_GETLINK);
            BinaryPrimitives.WriteUInt16LittleEndian(msg[6..], NLM_F_REQUEST);
            BinaryPrimitives.WriteUInt32LittleEndian(msg[8..], 1);
            BinaryPrimitives.WriteInt32LittleEndian(msg[20..], ifindex);  // ifinfomsg.ifi_index
            fixed (byte* p = msg) if (Libc.Write(fd, p, 32) != 32) return null;

            var reply = new byte[65536];
            nint got;
            fixed (byte* p = reply) got = Libc.Read(fd, p, (nuint)reply.Length);
            if (got < 32) return null;
            var r = reply.AsSpan(0, (int)got);
            uint total = BinaryPrimitives.ReadUInt32LittleEndian(r);
            if (BinaryPrimitives.ReadUInt16LittleEndian(r[4..]) != RTM_NEWLINK || total > r.Length || total < 32) return null;
            string kind = "";
            bool elsewhere = false;
            foreach (var (type, value) in Attributes(r[32..(int)total]))
            {
                if (type == IFLA_LINK_NETNSID) elsewhere = true;
                else if (type == IFLA_LINKINFO)
                    foreach (var (t, v) in Attributes(value))
                        if (t == IFLA_INFO_KIND) kind = Encoding.ASCII.GetString(v.AsSpan().TrimEnd((byte)0));
            }
            return (kind, elsewhere);
        }
        finally { Libc.Close(fd); }
    }

    private static List<(int Type, byte[] Value)> Attributes(ReadOnlySpan<byte> span)
    {
        var list = new List<(int, byte[])>();
        for (int at = 0; at + 4 <= span.Length;)
        {
            int l = BinaryPrimitives.ReadUInt16LittleEndian(span[at..]);
            int t = BinaryPrimitives.ReadUInt16LittleEndian(span[(at + 2)..]) & 0x3fff;
            if (l < 4 || at + l > span.Length) break;
            list.Add((t, span.Slice(at + 4, l - 4).ToArray()));
            at += l + 3 & ~3;
        }
        return list;
    }
}
