namespace Netloom.Wire;

/// <summary>Which layers a <see cref="DecodedFrame"/> holds.</summary>
[Flags]
public enum FrameLayers : ushort
{
    None = 0,
    Ethernet = 1 << 0,
    Arp = 1 << 1,
    Ipv4 = 1 << 2,
    Icmp = 1 << 3,
    Udp = 1 << 4,
    Tcp = 1 << 5,
    Ipv6 = 1 << 6,
    Icmpv6 = 1 << 7,
    /// <summary>An ICMPv6 message that is Neighbor Discovery (RFC 4861), decoded into <see cref="DecodedFrame.Ndp"/>.</summary>
    Ndp = 1 << 8,
}

/// <summary>
/// Every layer of one Ethernet frame in parsed form, plus the offsets needed to re-emit it.
/// A plain value: decoding allocates nothing. A frame that fails at some layer keeps the layers
/// that parsed and records the <see cref="Error"/>.
/// </summary>
public struct DecodedFrame
{
    public int Length;
    public FrameLayers Layers;
    public WireError Error;

    public EthernetRepr Ethernet;
    public ArpRepr Arp;
    public Ipv4Repr Ipv4;
    public IcmpRepr Icmp;
    public UdpRepr Udp;
    public TcpRepr Tcp;
    public Ipv6Repr Ipv6;
    /// <summary>IPv6 extension headers; offsets are from the start of the IPv6 payload.</summary>
    public Ipv6Extensions Ipv6Extensions;
    public Icmpv6Repr Icmpv6;
    public NdpRepr Ndp;

    public bool Ipv4ChecksumOk;
    /// <summary>False for fragments, whose transport checksum covers bytes not in this frame.</summary>
    public bool TransportChecksumKnown;
    public bool TransportChecksumOk;

    /// <summary>Offset of the network header (after Ethernet and tags).</summary>
    public int NetworkOffset;
    /// <summary>Offset of the transport header (after the IPv4 header, or IPv6's extension headers).</summary>
    public int TransportOffset;
    /// <summary>Offset and length of what the innermost parsed header carries.</summary>
    public int PayloadOffset;
    public int PayloadLength;

    public readonly bool Has(FrameLayers layer) => (Layers & layer) != 0;
    public readonly bool IsWellFormed => Error.IsNone;
    /// <summary>Well formed, and every checksum that can be checked is right.</summary>
    public readonly bool ChecksumsOk =>
        (!Has(FrameLayers.Ipv4) || Ipv4ChecksumOk) && (!TransportChecksumKnown || TransportChecksumOk);

    public static DecodedFrame Decode(ReadOnlySpan<byte> frame)
    {
        var d = new DecodedFrame { Length = frame.Length };
        if (!EthernetFrame.TryParse(frame, out var eth, out d.Error)) return d;
        d.Layers = FrameLayers.Ethernet;
        d.Ethernet = EthernetRepr.FromFrame(eth);
        d.NetworkOffset = eth.HeaderLength;
        d.PayloadOffset = eth.HeaderLength;
        d.PayloadLength = frame.Length - eth.HeaderLength;
        var l3 = eth.Payload;
        switch ((EtherType)eth.EtherType)
        {
            case EtherType.Arp:
                if (!ArpRepr.TryParse(l3, out d.Arp, out d.Error)) return d;
                d.Layers |= FrameLayers.Arp;
                d.PayloadOffset = d.NetworkOffset + ArpRepr.BufferLength;
                d.PayloadLength = 0;
                return d;
            case EtherType.Ipv6:
                DecodeIpv6(l3, ref d);
                return d;
            case EtherType.Ipv4:
                DecodeIpv4(l3, ref d);
                return d;
            default:
                return d;
        }
    }

    private static void DecodeIpv4(ReadOnlySpan<byte> l3, ref DecodedFrame d)
    {
        if (!Ipv4Packet.TryParse(l3, out var ip, out d.Error)) return;
        d.Layers |= FrameLayers.Ipv4;
        d.Ipv4 = Ipv4Repr.FromPacket(ip);
        d.Ipv4ChecksumOk = ip.ChecksumValid;
        d.TransportOffset = d.NetworkOffset + ip.HeaderLength;
        d.PayloadOffset = d.TransportOffset;
        d.PayloadLength = ip.Payload.Length;
        // A later fragment has no transport header; a first fragment has one, but its checksum
        // covers the whole datagram.
        if (ip.FragmentOffset != 0) return;
        d.TransportChecksumKnown = !ip.MoreFragments;
        var l4 = ip.Payload;
        switch ((IpProtocol)ip.Protocol)
        {
            case IpProtocol.Icmp:
                if (!IcmpMessage.TryParse(l4, out var icmp, out d.Error)) return;
                d.Layers |= FrameLayers.Icmp;
                d.Icmp = new IcmpRepr { Type = icmp.Type, Code = icmp.Code, RestOfHeader = icmp.RestOfHeader, DataLength = icmp.Data.Length };
                d.TransportChecksumOk = icmp.ChecksumValid;
                d.PayloadOffset = d.TransportOffset + IcmpRepr.HeaderLength;
                d.PayloadLength = icmp.Data.Length;
                return;
            case IpProtocol.Udp:
                // Only a whole datagram's length can be checked against the UDP length field.
                if (ip.MoreFragments) { DecodeFirstFragmentUdp(l4, ref d); return; }
                if (!UdpDatagram.TryParse(l4, out var udp, out d.Error)) return;
                d.Layers |= FrameLayers.Udp;
                d.Udp = new UdpRepr(udp.SourcePort, udp.DestinationPort, udp.Payload.Length) { OmitChecksum = udp.DatagramChecksum == 0 };
                d.TransportChecksumOk = udp.ChecksumValid(ip.Source, ip.Destination);
                d.PayloadOffset = d.TransportOffset + UdpRepr.HeaderLength;
                d.PayloadLength = udp.Payload.Length;
                return;
            case IpProtocol.Tcp:
                if (!TcpSegment.TryParse(l4, out var tcp, out d.Error)) return;
                d.Layers |= FrameLayers.Tcp;
                d.Tcp = TcpRepr.FromSegment(tcp);
                d.TransportChecksumOk = d.TransportChecksumKnown && tcp.ChecksumValid(ip.Source, ip.Destination);
                d.PayloadOffset = d.TransportOffset + tcp.HeaderLength;
                d.PayloadLength = tcp.Payload.Length;
                return;
            default:
                d.TransportChecksumKnown = false;
                return;
        }
    }

    private static void DecodeIpv6(ReadOnlySpan<byte> l3, ref DecodedFrame d)
    {
        if (!Ipv6Packet.TryParse(l3, out var ip, out d.Error)) return;
        d.Layers |= FrameLayers.Ipv6;
        d.Ipv6 = Ipv6Repr.FromPacket(ip);
        d.TransportOffset = d.NetworkOffset + Ipv6Field.HeaderLength;
        d.PayloadOffset = d.TransportOffset;
        d.PayloadLength = ip.Payload.Length;
        if (!ip.TryReadExtensions(out d.Ipv6Extensions, out d.Error)) return;
        ref readonly var x = ref d.Ipv6Extensions;
        d.TransportOffset += x.UpperLayerOffset;
        d.PayloadOffset = d.TransportOffset;
        d.PayloadLength = ip.Payload.Length - x.UpperLayerOffset;
        if (x.HasFragment && x.Fragment.FragmentOffset != 0) return; // a later fragment: data only
        d.TransportChecksumKnown = !(x.HasFragment && x.Fragment.MoreFragments);
        var l4 = ip.Payload[x.UpperLayerOffset..];
        var src = ip.Source;
        var dst = ip.Destination;
        switch ((IpProtocol)x.UpperLayer)
        {
            case IpProtocol.Icmpv6:
                if (!Icmpv6Message.TryParse(l4, out var icmp, out d.Error)) return;
                d.Layers |= FrameLayers.Icmpv6;
                d.Icmpv6 = Icmpv6Repr.FromMessage(icmp);
                d.TransportChecksumOk = d.TransportChecksumKnown && icmp.ChecksumValid(src, dst);
                d.PayloadOffset = d.TransportOffset + Icmpv6Repr.HeaderLength;
                d.PayloadLength = icmp.Data.Length;
                if (NdpRepr.IsNdp(icmp.Type) && d.TransportChecksumKnown)
                {
                    if (!NdpRepr.TryParse(l4, out d.Ndp, out d.Error)) return;
                    d.Layers |= FrameLayers.Ndp;
                    if (!d.Ndp.HasUnkeptOptions)
                    {
                        // Re-emitted whole from the repr: nothing of the message is copied.
                        d.PayloadOffset = d.TransportOffset + l4.Length;
                        d.PayloadLength = 0;
                    }
                }
                return;
            case IpProtocol.Udp:
                if (!d.TransportChecksumKnown) { DecodeFirstFragmentUdp(l4, ref d); return; }
                if (!UdpDatagram.TryParse(l4, out var udp, out d.Error)) return;
                d.Layers |= FrameLayers.Udp;
                d.Udp = new UdpRepr(udp.SourcePort, udp.DestinationPort, udp.Payload.Length);
                d.TransportChecksumOk = udp.ChecksumValid(src, dst);
                d.PayloadOffset = d.TransportOffset + UdpRepr.HeaderLength;
                d.PayloadLength = udp.Payload.Length;
                return;
            case IpProtocol.Tcp:
                if (!TcpSegment.TryParse(l4, out var tcp, out d.Error)) return;
                d.Layers |= FrameLayers.Tcp;
                d.Tcp = TcpRepr.FromSegment(tcp);
                d.TransportChecksumOk = d.TransportChecksumKnown && tcp.ChecksumValid(src, dst);
                d.PayloadOffset = d.TransportOffset + tcp.HeaderLength;
                d.PayloadLength = tcp.Payload.Length;
                return;
            default:
                d.TransportChecksumKnown = false;
                return;
        }
    }

    /// <summary>The UDP header of a first fragment (either IP version): the ports and the length field, which cannot be checked against the data yet.</summary>
    private static void DecodeFirstFragmentUdp(ReadOnlySpan<byte> l4, ref DecodedFrame d)
    {
        if (l4.Length < UdpRepr.HeaderLength) { d.Error = new(Layer.Udp, WireErrorReason.Truncated, l4.Length, UdpRepr.HeaderLength); return; }
        d.Layers |= FrameLayers.Udp;
        d.Udp = new UdpRepr(ReadPort(l4, 0), ReadPort(l4, 2), System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(l4[4..]) - UdpRepr.HeaderLength);
        d.PayloadOffset = d.TransportOffset + UdpRepr.HeaderLength;
        d.PayloadLength = l4.Length - UdpRepr.HeaderLength;
    }

    private static ushort ReadPort(ReadOnlySpan<byte> b, int offset) => System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(b[offset..]);

    /// <summary>
    /// Re-emits a well-formed frame from its parsed form through the writers: each header is
    /// written by its repr, checksums recomputed, and only payloads and link padding copied from
    /// <paramref name="original"/>. Returns the frame length.
    /// </summary>
    public readonly int Emit(ReadOnlySpan<byte> original, Span<byte> destination)
    {
        if (!IsWellFormed) throw new InvalidOperationException($"cannot re-emit a malformed frame ({Error})");
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, Length, nameof(destination));
        var dst = destination[..Length];
        // Payloads and padding first, then headers from the inside out.
        original[PayloadOffset..Length].CopyTo(dst[PayloadOffset..]);
        if (Has(FrameLayers.Ipv4))
        {
            EmitTransport(original, dst);
            Ipv4.Emit(dst[NetworkOffset..]);
        }
        else if (Has(FrameLayers.Ipv6))
        {
            EmitIpv6(original, dst);
        }
        else if (Has(FrameLayers.Arp))
        {
            Arp.Emit(dst[NetworkOffset..]);
        }
        Ethernet.Emit(dst);
        return Length;
    }

    /// <summary>
    /// IPv6: the upper layer through its repr, the extension headers (options kept as sent, the
    /// fragment header from its repr), then the fixed header.
    /// </summary>
    private readonly void EmitIpv6(ReadOnlySpan<byte> original, Span<byte> dst)
    {
        int ext = NetworkOffset + Ipv6Field.HeaderLength;
        original[ext..TransportOffset].CopyTo(dst[ext..]);
        if (Ipv6Extensions.HasFragment) Ipv6Extensions.Fragment.Emit(dst[(ext + Ipv6Extensions.FragmentHeaderOffset)..]);
        var l4 = dst[TransportOffset..];
        bool laterFragment = Ipv6Extensions.HasFragment && Ipv6Extensions.Fragment.FragmentOffset != 0;
        int checksumAt = -1;
        if (laterFragment) { }
        else if (Has(FrameLayers.Ndp) && !Ndp.HasUnkeptOptions) { Ndp.Emit(l4, Ipv6.Source, Ipv6.Destination); checksumAt = 2; }
        else if (Has(FrameLayers.Icmpv6)) { Icmpv6.Emit(l4, Ipv6.Source, Ipv6.Destination); checksumAt = 2; }
        else if (Has(FrameLayers.Tcp)) { Tcp.Emit(l4[..(Tcp.HeaderLength + Tcp.PayloadLength)], Ipv6.Source, Ipv6.Destination); checksumAt = 16; }
        else if (Has(FrameLayers.Udp) && TransportChecksumKnown) Udp.Emit(l4, Ipv6.Source, Ipv6.Destination);
        else if (Has(FrameLayers.Udp)) original.Slice(TransportOffset, UdpRepr.HeaderLength).CopyTo(l4);
        if (checksumAt >= 0 && !TransportChecksumKnown) original.Slice(TransportOffset + checksumAt, 2).CopyTo(l4[checksumAt..]);
        Ipv6.Emit(dst[NetworkOffset..]);
    }

    private readonly void EmitTransport(ReadOnlySpan<byte> original, Span<byte> dst)
    {
        var l4 = dst[TransportOffset..];
        int checksumAt;
        if (Has(FrameLayers.Icmp)) { Icmp.Emit(l4); checksumAt = 2; }
        else if (Has(FrameLayers.Tcp)) { Tcp.Emit(l4[..(Tcp.HeaderLength + Tcp.PayloadLength)], Ipv4.Source, Ipv4.Destination); checksumAt = 16; }
        else if (Has(FrameLayers.Udp) && TransportChecksumKnown) { Udp.Emit(l4, Ipv4.Source, Ipv4.Destination); return; }
        else if (Has(FrameLayers.Udp))
        {
            // A first fragment: the length field speaks of the whole datagram; keep the header as sent.
            original.Slice(TransportOffset, UdpRepr.HeaderLength).CopyTo(l4);
            return;
        }
        else return;
        // In a first fragment the checksum covers bytes of later fragments: keep the one sent.
        if (!TransportChecksumKnown) original.Slice(TransportOffset + checksumAt, 2).CopyTo(l4[checksumAt..]);
    }
}
