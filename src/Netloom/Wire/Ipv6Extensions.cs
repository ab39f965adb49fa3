using System.Buffers.Binary;

namespace Netloom.Wire;

/// <summary>What RFC 8200 §4.2 says to do with an option whose type is not recognised (its two high bits).</summary>
public enum Ipv6OptionAction : byte
{
    Skip = 0,
    Discard = 1,
    DiscardAndReport = 2,
    /// <summary>Discard; report only if the destination was not multicast.</summary>
    DiscardAndReportUnicast = 3,
}

/// <summary>
/// The extension-header chain of one IPv6 packet (RFC 8200 §4), walked once with limits: at most
/// <see cref="MaxHeaders"/> headers, at most <see cref="MaxOptions"/> options (padding aside) in
/// a hop-by-hop or destination-options header and at most 7 bytes of padding in a row (Linux's
/// limits), hop-by-hop only first. Offsets are from the start of the IPv6 payload. Walking stops
/// at the upper layer, at No Next Header, and after the fragment header of a non-first fragment
/// (what follows it belongs to the fragmentable part, RFC 8200 §4.5).
/// </summary>
public struct Ipv6Extensions
{
    public const int MaxHeaders = 8;
    public const int MaxOptions = 8;
    public const int MaxPadding = 7;

    /// <summary>The protocol after the chain (TCP, UDP, ICMPv6, 59 for none...).</summary>
    public byte UpperLayer;
    /// <summary>Where the upper layer starts, from the start of the IPv6 payload.</summary>
    public int UpperLayerOffset;
    public int HeaderCount;
    public bool HasHopByHop;
    public bool HasRouting;
    public byte RoutingType;
    public byte SegmentsLeft;
    public bool HasFragment;
    /// <summary>Offset of the fragment header from the start of the payload.</summary>
    public int FragmentHeaderOffset;
    /// <summary>Where the fragmentable part starts (just after the fragment header).</summary>
    public int FragmentableOffset => FragmentHeaderOffset + Ipv6FragmentRepr.HeaderLength;
    public Ipv6FragmentRepr Fragment;
    /// <summary>
    /// The first option of an unrecognised type whose action is not Skip, with its offset from
    /// the start of the payload (the pointer of a Parameter Problem, RFC 4443 §3.4).
    /// </summary>
    public Ipv6OptionAction UnknownOptionAction;
    public int UnknownOptionOffset;
    /// <summary>True for a fragment with offset or more-fragments set; an atomic fragment (both clear, RFC 6946) is not one.</summary>
    public readonly bool IsFragment => HasFragment && (Fragment.FragmentOffset != 0 || Fragment.MoreFragments);

    public static bool TryParse(byte nextHeader, ReadOnlySpan<byte> payload, out Ipv6Extensions chain, out WireError error)
    {
        chain = default;
        int at = 0;
        byte next = nextHeader;
        while (true)
        {
            if (!IsExtension(next)) break;
            if (chain.HeaderCount == MaxHeaders) { error = new(Layer.Ipv6, WireErrorReason.ExtensionChainTooLong, chain.HeaderCount + 1, MaxHeaders); return false; }
            if (next == (byte)IpProtocol.HopByHop && at != 0) { error = new(Layer.Ipv6, WireErrorReason.HopByHopNotFirst, at); return false; }
            var rest = payload[at..];
            if (rest.Length < 8) { error = new(Layer.Ipv6, WireErrorReason.Truncated, rest.Length, 8); return false; }
            int len = next == (byte)IpProtocol.Ah ? (rest[1] + 2) * 4 : next == (byte)IpProtocol.Ipv6Fragment ? 8 : (rest[1] + 1) * 8;
            if (len > rest.Length) { error = new(Layer.Ipv6, WireErrorReason.HeaderLengthExceedsBuffer, len, rest.Length); return false; }
            chain.HeaderCount++;
            byte following = rest[0];
            switch ((IpProtocol)next)
            {
                case IpProtocol.HopByHop or IpProtocol.Ipv6DestinationOptions:
                    chain.HasHopByHop |= next == (byte)IpProtocol.HopByHop;
                    if (!ReadOptions(rest[2..len], at + 2, ref chain, out error)) return false;
                    break;
                case IpProtocol.Ipv6Route:
                    chain.HasRouting = true;
                    chain.RoutingType = rest[2];
                    chain.SegmentsLeft = rest[3];
                    break;
                case IpProtocol.Ipv6Fragment:
                    if (chain.HasFragment) { error = new(Layer.Ipv6, WireErrorReason.ExtensionChainTooLong, 2, 1); return false; }
                    chain.HasFragment = true;
                    chain.FragmentHeaderOffset = at;
                    chain.Fragment = Ipv6FragmentRepr.Read(rest);
                    if (chain.Fragment.FragmentOffset != 0)
                    {
                        // A later fragment: the rest is data of the fragmentable part.
                        chain.UpperLayer = following;
                        chain.UpperLayerOffset = at + 8;
                        error = default;
                        return true;
                    }
                    break;
            }
            at += len;
            next = following;
        }
        chain.UpperLayer = next;
        chain.UpperLayerOffset = at;
        error = default;
        return true;
    }

    /// <summary>True for the headers this walker steps over: hop-by-hop, routing, fragment, destination options, AH.</summary>
    public static bool IsExtension(byte protocol) => protocol is (byte)IpProtocol.HopByHop or (byte)IpProtocol.Ipv6Route
        or (byte)IpProtocol.Ipv6Fragment or (byte)IpProtocol.Ipv6DestinationOptions or (byte)IpProtocol.Ah;

    /// <summary>Option TLVs (RFC 8200 §4.2): Pad1 is one byte, everything else type, length, data.</summary>
    private static bool ReadOptions(ReadOnlySpan<byte> area, int baseOffset, ref Ipv6Extensions chain, out WireError error)
    {
        int options = 0, padRun = 0;
        for (int i = 0; i < area.Length;)
        {
            byte type = area[i];
            int size;
            if (type == 0) size = 1;
            else
            {
                if (i + 2 > area.Length) { error = new(Layer.Ipv6, WireErrorReason.OptionOverrun, type, baseOffset + i, area.Length); return false; }
                size = 2 + area[i + 1];
                if (i + size > area.Length) { error = new(Layer.Ipv6, WireErrorReason.OptionOverrun, type, baseOffset + i, area.Length); return false; }
            }
            if (type is 0 or 1)
            {
                padRun += size;
                if (padRun > MaxPadding) { error = new(Layer.Ipv6, WireErrorReason.TooMuchPadding, padRun, MaxPadding); return false; }
            }
            else
            {
                padRun = 0;
                if (++options > MaxOptions) { error = new(Layer.Ipv6, WireErrorReason.TooManyOptions, options, MaxOptions); return false; }
                // Router Alert (5, RFC 2711) and Jumbo Payload (0xC2) are known; anything else acts by its high bits.
                if (type is not (5 or 0xC2) && type >> 6 != 0 && chain.UnknownOptionAction == Ipv6OptionAction.Skip)
                {
                    chain.UnknownOptionAction = (Ipv6OptionAction)(type >> 6);
                    chain.UnknownOptionOffset = baseOffset + i;
                }
            }
            i += size;
        }
        error = default;
        return true;
    }
}

/// <summary>The IPv6 fragment header (RFC 8200 §4.5): 8 bytes.</summary>
public struct Ipv6FragmentRepr
{
    public const int HeaderLength = 8;

    public byte NextHeader;
    /// <summary>In 8-byte units (13 bits).</summary>
    public ushort FragmentOffset;
    public bool MoreFragments;
    /// <summary>The two reserved bits next to M, and the reserved byte, kept so a frame re-emits exactly.</summary>
    public byte ReservedBits;
    public byte Reserved;
    public uint Identification;

    internal static Ipv6FragmentRepr Read(ReadOnlySpan<byte> b)
    {
        ushort om = BinaryPrimitives.ReadUInt16BigEndian(b[2..]);
        return new Ipv6FragmentRepr
        {
            NextHeader = b[0],
            Reserved = b[1],
            FragmentOffset = (ushort)(om >> 3),
            ReservedBits = (byte)(om >> 1 & 3),
            MoreFragments = (om & 1) != 0,
            Identification = BinaryPrimitives.ReadUInt32BigEndian(b[4..]),
        };
    }

    public static bool TryParse(ReadOnlySpan<byte> buffer, out Ipv6FragmentRepr repr, out WireError error)
    {
        repr = default;
        if (buffer.Length < HeaderLength) { error = new(Layer.Ipv6, WireErrorReason.Truncated, buffer.Length, HeaderLength); return false; }
        repr = Read(buffer);
        error = default;
        return true;
    }

    public readonly void Emit(Span<byte> buffer)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(buffer.Length, HeaderLength, nameof(buffer));
        buffer[0] = NextHeader;
        buffer[1] = Reserved;
        BinaryPrimitives.WriteUInt16BigEndian(buffer[2..], (ushort)((FragmentOffset & 0x1FFF) << 3 | (ReservedBits & 3) << 1 | (MoreFragments ? 1 : 0)));
        BinaryPrimitives.WriteUInt32BigEndian(buffer[4..], Identification);
    }
}
