namespace Netloom.Wire;

/// <summary>
/// Builds whole Ethernet frames from reprs: the payload is laid down first, then each header is
/// emitted outward, so nothing is copied twice. Each method returns the frame length.
/// </summary>
internal static class FrameBuilder
{
    public static int Arp(Span<byte> frame, in EthernetRepr ethernet, in ArpRepr arp)
    {
        int l2 = ethernet.BufferLength;
        arp.Emit(frame[l2..]);
        var eth = ethernet;
        eth.EtherType = (ushort)EtherType.Arp;
        eth.Emit(frame);
        return l2 + ArpRepr.BufferLength;
    }

    public static int Icmp(Span<byte> frame, in EthernetRepr ethernet, Ipv4Repr ip, IcmpRepr icmp, ReadOnlySpan<byte> data)
    {
        icmp.DataLength = data.Length;
        ip.Protocol = (byte)IpProtocol.Icmp;
        ip.PayloadLength = icmp.BufferLength;
        int l3 = ethernet.BufferLength, l4 = l3 + ip.HeaderLength;
        data.CopyTo(frame[(l4 + IcmpRepr.HeaderLength)..]);
        icmp.Emit(frame[l4..]);
        return FinishIpv4(frame, ethernet, ip);
    }

    public static int Udp(Span<byte> frame, in EthernetRepr ethernet, Ipv4Repr ip, UdpRepr udp, ReadOnlySpan<byte> payload)
    {
        udp.PayloadLength = payload.Length;
        ip.Protocol = (byte)IpProtocol.Udp;
        ip.PayloadLength = udp.BufferLength;
        int l3 = ethernet.BufferLength, l4 = l3 + ip.HeaderLength;
        payload.CopyTo(frame[(l4 + UdpRepr.HeaderLength)..]);
        udp.Emit(frame[l4..], ip.Source, ip.Destination);
        return FinishIpv4(frame, ethernet, ip);
    }

    public static int Tcp(Span<byte> frame, in EthernetRepr ethernet, Ipv4Repr ip, TcpRepr tcp, ReadOnlySpan<byte> payload)
    {
        tcp.PayloadLength = payload.Length;
        ip.Protocol = (byte)IpProtocol.Tcp;
        ip.PayloadLength = tcp.BufferLength;
        int l3 = ethernet.BufferLength, l4 = l3 + ip.HeaderLength;
        payload.CopyTo(frame[(l4 + tcp.HeaderLength)..]);
        tcp.Emit(frame[l4..], ip.Source, ip.Destination);
        return FinishIpv4(frame, ethernet, ip);
    }

    private static int FinishIpv4(Span<byte> frame, in EthernetRepr ethernet, in Ipv4Repr ip)
    {
        int l3 = ethernet.BufferLength;
        ip.Emit(frame[l3..]);
        var eth = ethernet;
        eth.EtherType = (ushort)EtherType.Ipv4;
        eth.Emit(frame);
        return l3 + ip.TotalLength;
    }
}
