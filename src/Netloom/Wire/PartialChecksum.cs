using System.Buffers.Binary;

namespace Netloom.Wire;

/// <summary>
/// Frames whose TCP or UDP checksum was left to the other end (the checksum capability two
/// Netloom ends may declare on a shm port or a pipe; virtio-net's NEEDS_CSUM, the kernel's
/// CHECKSUM_PARTIAL): the checksum field holds the folded pseudo-header sum, so summing the
/// whole segment over it gives the real checksum. <see cref="Complete"/> fills it in, for a
/// frame that leaves such a port for a place that checks (an impaired link, a test's verifier).
/// </summary>
internal static class PartialChecksum
{
    /// <summary>
    /// Fills in the TCP or UDP checksum of an Ethernet frame (IPv4 without fragmentation, or
    /// IPv6 with TCP or UDP straight after the fixed header) whose field holds the partial sum.
    /// False, and the frame untouched, for anything else.
    /// </summary>
    public static bool Complete(Span<byte> frame)
    {
        if (!TryLocate(frame, out int at, out int length, out bool udp)) return false;
        var segment = frame.Slice(at, length);
        int field = udp ? UdpField.Checksum : TcpField.Checksum;
        ushort c = Checksum.Compute(segment);
        if (udp && c == 0) c = 0xFFFF; // zero means "no checksum" in UDP (RFC 768)
        BinaryPrimitives.WriteUInt16BigEndian(segment[field..], c);
        return true;
    }

    /// <summary>Where the transport segment of a frame starts, its length and whether it is UDP.</summary>
    internal static bool TryLocate(ReadOnlySpan<byte> frame, out int at, out int length, out bool udp)
    {
        at = length = 0;
        udp = false;
        if (!EthernetFrame.TryParse(frame, out var eth, out _)) return false;
        int ipAt = frame.Length - eth.Payload.Length;
        byte protocol;
        if (eth.EtherType == (ushort)EtherType.Ipv4)
        {
            if (!Ipv4Packet.TryParse(eth.Payload, out var ip, out _) || ip.IsFragment) return false;
            protocol = ip.Protocol;
            at = ipAt + ip.HeaderLength;
            length = ip.TotalLength - ip.HeaderLength;
        }
        else if (eth.EtherType == (ushort)EtherType.Ipv6)
        {
            if (!Ipv6Packet.TryParse(eth.Payload, out var ip, out _)) return false;
            protocol = ip.NextHeader;
            at = ipAt + Ipv6Field.HeaderLength;
            length = ip.PayloadLength;
        }
        else return false;
        udp = protocol == (byte)IpProtocol.Udp;
        if (!udp && protocol != (byte)IpProtocol.Tcp) return false;
        return length >= (udp ? UdpField.HeaderLength : TcpField.MinHeaderLength) && at + length <= frame.Length;
    }
}
