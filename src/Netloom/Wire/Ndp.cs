using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Netloom.Wire;

/// <summary>NDP option types (RFC 4861 §4.6).</summary>
public enum NdpOptionType : byte
{
    SourceLinkLayerAddress = 1,
    TargetLinkLayerAddress = 2,
    PrefixInformation = 3,
    RedirectedHeader = 4,
    Mtu = 5,
}

/// <summary>A Prefix Information option (RFC 4861 §4.6.2).</summary>
public struct NdpPrefixInfo
{
    public const byte OnLinkFlag = 0x80, AutonomousFlag = 0x40;

    public byte PrefixLength;
    /// <summary>L (on-link), A (autonomous) and the six reserved bits as sent.</summary>
    public byte Flags;
    /// <summary>Seconds; 0xFFFFFFFF is infinity.</summary>
    public uint ValidLifetime;
    public uint PreferredLifetime;
    public uint Reserved;
    public Ipv6Address Prefix;

    public readonly bool OnLink => (Flags & OnLinkFlag) != 0;
    public readonly bool Autonomous => (Flags & AutonomousFlag) != 0;
}

/// <summary>
/// The parsed form of a Neighbor Discovery message (RFC 4861 §4): Router Solicitation and
/// Advertisement, Neighbor Solicitation and Advertisement, Redirect, with their options. Known
/// options become typed fields; the order they came in is kept, so a message re-emits exactly.
/// Unknown options are kept raw while they fit in <see cref="OptionBytes"/>. An option of length
/// 0 makes the message invalid (§4.6). Checks that need the IPv6 header (hop limit 255, §6.1.1)
/// belong to the receiver.
/// </summary>
public struct NdpRepr
{
    public const int MaxOptions = 16, MaxPrefixes = 4;
    private const byte RawEntry = 0xFF;
    /// <summary>NA flags (RFC 4861 §4.4): router, solicited, override.</summary>
    public const byte RouterFlag = 0x80, SolicitedFlag = 0x40, OverrideFlag = 0x20;
    /// <summary>RA flags (§4.2): managed address configuration, other configuration.</summary>
    public const byte ManagedFlag = 0x80, OtherFlag = 0x40;

    [InlineArray(MaxOptions)] private struct Layout { private byte _e0; }
    [InlineArray(MaxPrefixes)] private struct Prefixes { private NdpPrefixInfo _e0; }

    public byte Type;
    public byte Code;
    /// <summary>The four bytes after the checksum: RA's hop limit, flags and lifetime; NA's flags; zeros elsewhere.</summary>
    public uint RestOfHeader;
    /// <summary>RA: reachable time and retransmission timer, milliseconds.</summary>
    public uint ReachableTime, RetransTimer;
    /// <summary>NS, NA and Redirect: the target address.</summary>
    public Ipv6Address Target;
    /// <summary>Redirect: the destination being redirected.</summary>
    public Ipv6Address Destination;
    public MacAddress? SourceLinkLayer;
    public MacAddress? TargetLinkLayer;
    public uint? Mtu;
    /// <summary>MTU option's reserved field, kept for exact re-emission.</summary>
    public ushort MtuReserved;
    public OptionBytes RawOptions;
    /// <summary>Options (a redirected header, or unknown ones past <see cref="OptionBytes.Capacity"/>) that were skipped and not kept: the message cannot be re-emitted from this repr.</summary>
    public bool HasUnkeptOptions;
    private Prefixes _prefixes;
    private byte _prefixCount;
    private Layout _layout;
    private byte _layoutCount;

    public readonly byte CurHopLimit => (byte)(RestOfHeader >> 24);
    public readonly byte RouterFlags => (byte)(RestOfHeader >> 16);
    /// <summary>RA: seconds this router may be a default router; 0 means not one.</summary>
    public readonly ushort RouterLifetime => (ushort)RestOfHeader;
    public readonly byte NeighborFlags => (byte)(RestOfHeader >> 24);
    public readonly int PrefixCount => _prefixCount;
    public readonly NdpPrefixInfo PrefixInfo(int index) => (uint)index < _prefixCount ? _prefixes[index] : throw new ArgumentOutOfRangeException(nameof(index));
    public readonly int OptionCount => _layoutCount;

    public static bool IsNdp(byte type) => type is >= (byte)Icmpv6Type.RouterSolicitation and <= (byte)Icmpv6Type.Redirect;

    /// <summary>Where options start in a message of <paramref name="type"/>.</summary>
    public static int OptionsOffset(byte type) => type switch
    {
        (byte)Icmpv6Type.RouterSolicitation => 8,
        (byte)Icmpv6Type.RouterAdvertisement => 16,
        (byte)Icmpv6Type.NeighborSolicitation or (byte)Icmpv6Type.NeighborAdvertisement => 24,
        (byte)Icmpv6Type.Redirect => 40,
        _ => -1,
    };

    public static NdpRepr NeighborSolicitation(Ipv6Address target, MacAddress? sourceLinkLayer)
    {
        var r = new NdpRepr { Type = (byte)Icmpv6Type.NeighborSolicitation, Target = target, SourceLinkLayer = sourceLinkLayer };
        if (sourceLinkLayer is not null) r.AddLayout((byte)NdpOptionType.SourceLinkLayerAddress);
        return r;
    }

    public static NdpRepr NeighborAdvertisement(Ipv6Address target, byte flags, MacAddress? targetLinkLayer)
    {
        var r = new NdpRepr { Type = (byte)Icmpv6Type.NeighborAdvertisement, RestOfHeader = (uint)flags << 24, Target = target, TargetLinkLayer = targetLinkLayer };
        if (targetLinkLayer is not null) r.AddLayout((byte)NdpOptionType.TargetLinkLayerAddress);
        return r;
    }

    public static NdpRepr RouterSolicitation(MacAddress? sourceLinkLayer)
    {
        var r = new NdpRepr { Type = (byte)Icmpv6Type.RouterSolicitation, SourceLinkLayer = sourceLinkLayer };
        if (sourceLinkLayer is not null) r.AddLayout((byte)NdpOptionType.SourceLinkLayerAddress);
        return r;
    }

    public static NdpRepr RouterAdvertisement(byte curHopLimit, byte flags, ushort routerLifetime, uint reachableTime, uint retransTimer) => new()
    {
        Type = (byte)Icmpv6Type.RouterAdvertisement,
        RestOfHeader = (uint)curHopLimit << 24 | (uint)flags << 16 | routerLifetime,
        ReachableTime = reachableTime,
        RetransTimer = retransTimer,
    };

    /// <summary>Adds a prefix option (emitted in the order added, after any options already present).</summary>
    public void AddPrefix(in NdpPrefixInfo prefix)
    {
        if (_prefixCount == MaxPrefixes) throw new InvalidOperationException($"an NDP repr holds at most {MaxPrefixes} prefixes");
        _prefixes[_prefixCount++] = prefix;
        AddLayout((byte)NdpOptionType.PrefixInformation);
    }

    /// <summary>Adds an MTU option.</summary>
    public void SetMtu(uint mtu)
    {
        if (Mtu is null) AddLayout((byte)NdpOptionType.Mtu);
        Mtu = mtu;
    }

    /// <summary>Adds a source link-layer address option (or changes the one present).</summary>
    public void SetSourceLinkLayer(MacAddress mac)
    {
        if (SourceLinkLayer is null) AddLayout((byte)NdpOptionType.SourceLinkLayerAddress);
        SourceLinkLayer = mac;
    }

    /// <summary>Adds a target link-layer address option (or changes the one present).</summary>
    public void SetTargetLinkLayer(MacAddress mac)
    {
        if (TargetLinkLayer is null) AddLayout((byte)NdpOptionType.TargetLinkLayerAddress);
        TargetLinkLayer = mac;
    }

    private void AddLayout(byte entry)
    {
        if (_layoutCount == MaxOptions) throw new InvalidOperationException($"an NDP repr holds at most {MaxOptions} options");
        _layout[_layoutCount++] = entry;
    }

    /// <summary>Parses an NDP message (the whole ICMPv6 message, header included).</summary>
    public static bool TryParse(ReadOnlySpan<byte> message, out NdpRepr repr, out WireError error)
    {
        repr = default;
        if (!Icmpv6Message.TryParse(message, out var m, out error)) return false;
        int optionsAt = OptionsOffset(m.Type);
        if (optionsAt < 0) { error = new(Layer.Icmpv6, WireErrorReason.BadValue, m.Type, (int)Icmpv6Type.RouterSolicitation); return false; }
        if (message.Length < optionsAt) { error = new(Layer.Icmpv6, WireErrorReason.Truncated, message.Length, optionsAt); return false; }
        repr.Type = m.Type;
        repr.Code = m.Code;
        repr.RestOfHeader = m.RestOfHeader;
        switch ((Icmpv6Type)m.Type)
        {
            case Icmpv6Type.RouterAdvertisement:
                repr.ReachableTime = BinaryPrimitives.ReadUInt32BigEndian(message[8..]);
                repr.RetransTimer = BinaryPrimitives.ReadUInt32BigEndian(message[12..]);
                break;
            case Icmpv6Type.NeighborSolicitation or Icmpv6Type.NeighborAdvertisement:
                repr.Target = Ipv6Address.Read(message[8..]);
                break;
            case Icmpv6Type.Redirect:
                repr.Target = Ipv6Address.Read(message[8..]);
                repr.Destination = Ipv6Address.Read(message[24..]);
                break;
        }
        return repr.ReadOptions(message[optionsAt..], optionsAt, out error);
    }

    private bool ReadOptions(ReadOnlySpan<byte> area, int baseOffset, out WireError error)
    {
        for (int i = 0; i < area.Length;)
        {
            if (area.Length - i < 2) { error = new(Layer.Icmpv6, WireErrorReason.OptionOverrun, area[i], baseOffset + i, area.Length - i); return false; }
            byte type = area[i];
            int len = area[i + 1] * 8;
            if (len == 0) { error = new(Layer.Icmpv6, WireErrorReason.ZeroLengthOption, type, baseOffset + i); return false; }
            if (i + len > area.Length) { error = new(Layer.Icmpv6, WireErrorReason.OptionOverrun, type, baseOffset + i, area.Length - i); return false; }
            if (_layoutCount == MaxOptions) { error = new(Layer.Icmpv6, WireErrorReason.TooManyOptions, MaxOptions + 1, MaxOptions); return false; }
            var o = area.Slice(i, len);
            bool typed = false;
            switch ((NdpOptionType)type)
            {
                // A link-layer option of exactly 8 bytes holds an Ethernet address (RFC 4861 §4.6.1, RFC 2464 §6).
                case NdpOptionType.SourceLinkLayerAddress when len == 8 && SourceLinkLayer is null:
                    SourceLinkLayer = MacAddress.Read(o[2..]); typed = true; break;
                case NdpOptionType.TargetLinkLayerAddress when len == 8 && TargetLinkLayer is null:
                    TargetLinkLayer = MacAddress.Read(o[2..]); typed = true; break;
                case NdpOptionType.PrefixInformation:
                    if (len != 32) { error = new(Layer.Icmpv6, WireErrorReason.BadOptionLength, type, baseOffset + i, len); return false; }
                    if (_prefixCount < MaxPrefixes)
                    {
                        _prefixes[_prefixCount++] = new NdpPrefixInfo
                        {
                            PrefixLength = o[2],
                            Flags = o[3],
                            ValidLifetime = BinaryPrimitives.ReadUInt32BigEndian(o[4..]),
                            PreferredLifetime = BinaryPrimitives.ReadUInt32BigEndian(o[8..]),
                            Reserved = BinaryPrimitives.ReadUInt32BigEndian(o[12..]),
                            Prefix = Ipv6Address.Read(o[16..]),
                        };
                        typed = true;
                    }
                    break;
                case NdpOptionType.Mtu when len == 8 && Mtu is null:
                    MtuReserved = BinaryPrimitives.ReadUInt16BigEndian(o[2..]);
                    Mtu = BinaryPrimitives.ReadUInt32BigEndian(o[4..]);
                    typed = true;
                    break;
            }
            if (typed) _layout[_layoutCount++] = type;
            else if (type != (byte)NdpOptionType.RedirectedHeader && RawOptions.TryAppend(o)) _layout[_layoutCount++] = RawEntry;
            else HasUnkeptOptions = true;
            i += len;
        }
        error = default;
        return true;
    }

    /// <summary>The whole message's length: fixed part plus options.</summary>
    public readonly int BufferLength
    {
        get
        {
            int n = Math.Max(OptionsOffset(Type), 8);
            for (int i = 0; i < _layoutCount; i++)
                n += _layout[i] switch { (byte)NdpOptionType.PrefixInformation => 32, RawEntry => 0, _ => 8 };
            return n + RawOptions.Length;
        }
    }

    /// <summary>Writes the whole message (header, fields, options) and its checksum under the pseudo-header.</summary>
    public readonly int Emit(Span<byte> message, Ipv6Address source, Ipv6Address destination)
    {
        if (HasUnkeptOptions) throw new InvalidOperationException("this NDP message had options that were not kept; it cannot be re-emitted from its repr");
        int len = BufferLength;
        ArgumentOutOfRangeException.ThrowIfLessThan(message.Length, len, nameof(message));
        var m = message[..len];
        int at = OptionsOffset(Type);
        if (at < 0) throw new InvalidOperationException($"ICMPv6 type {Type} is not an NDP message");
        m[8..at].Clear();
        switch ((Icmpv6Type)Type)
        {
            case Icmpv6Type.RouterAdvertisement:
                BinaryPrimitives.WriteUInt32BigEndian(m[8..], ReachableTime);
                BinaryPrimitives.WriteUInt32BigEndian(m[12..], RetransTimer);
                break;
            case Icmpv6Type.NeighborSolicitation or Icmpv6Type.NeighborAdvertisement:
                Target.Write(m[8..]);
                break;
            case Icmpv6Type.Redirect:
                Target.Write(m[8..]);
                Destination.Write(m[24..]);
                break;
        }
        int prefix = 0, raw = 0;
        var rawBytes = RawOptions.Span;
        for (int i = 0; i < _layoutCount; i++)
        {
            byte entry = _layout[i];
            var o = m[at..];
            switch (entry)
            {
                case (byte)NdpOptionType.SourceLinkLayerAddress or (byte)NdpOptionType.TargetLinkLayerAddress:
                    o[0] = entry; o[1] = 1;
                    (entry == 1 ? SourceLinkLayer : TargetLinkLayer).GetValueOrDefault().Write(o[2..]);
                    at += 8;
                    break;
                case (byte)NdpOptionType.Mtu:
                    o[0] = entry; o[1] = 1;
                    BinaryPrimitives.WriteUInt16BigEndian(o[2..], MtuReserved);
                    BinaryPrimitives.WriteUInt32BigEndian(o[4..], Mtu.GetValueOrDefault());
                    at += 8;
                    break;
                case (byte)NdpOptionType.PrefixInformation:
                    var p = _prefixes[prefix++];
                    o[0] = entry; o[1] = 4; o[2] = p.PrefixLength; o[3] = p.Flags;
                    BinaryPrimitives.WriteUInt32BigEndian(o[4..], p.ValidLifetime);
                    BinaryPrimitives.WriteUInt32BigEndian(o[8..], p.PreferredLifetime);
                    BinaryPrimitives.WriteUInt32BigEndian(o[12..], p.Reserved);
                    p.Prefix.Write(o[16..]);
                    at += 32;
                    break;
                default:
                    int rl = rawBytes[raw + 1] * 8;
                    rawBytes.Slice(raw, rl).CopyTo(o);
                    raw += rl;
                    at += rl;
                    break;
            }
        }
        new Icmpv6Writer(m) { Type = Type, Code = Code, RestOfHeader = RestOfHeader }.FillChecksum(source, destination);
        return len;
    }
}

/// <summary>One multicast address record of an MLDv2 report (RFC 3810 §5.2.4).</summary>
public readonly record struct Mldv2Record(byte RecordType, Ipv6Address MulticastAddress, int SourceCount, int AuxDataLength);

/// <summary>
/// A read view of an MLDv2 Multicast Listener Report (RFC 3810 §5.2): <see cref="TryParse"/>
/// checks that every record, with its sources and auxiliary data, lies inside the message.
/// </summary>
public readonly ref struct Mldv2Report
{
    private const int RecordsAt = 8, RecordHeader = 20;
    private readonly ReadOnlySpan<byte> _b;
    private Mldv2Report(ReadOnlySpan<byte> b) => _b = b;

    public static bool TryParse(ReadOnlySpan<byte> message, out Mldv2Report report, out WireError error)
    {
        report = default;
        if (!Icmpv6Message.TryParse(message, out var m, out error)) return false;
        if (m.Type != (byte)Icmpv6Type.Mldv2Report) { error = new(Layer.Icmpv6, WireErrorReason.BadValue, m.Type, (int)Icmpv6Type.Mldv2Report); return false; }
        int count = BinaryPrimitives.ReadUInt16BigEndian(message[6..]), at = RecordsAt;
        for (int i = 0; i < count; i++)
        {
            if (message.Length - at < RecordHeader) { error = new(Layer.Icmpv6, WireErrorReason.Truncated, message.Length - at, RecordHeader); return false; }
            int len = RecordHeader + BinaryPrimitives.ReadUInt16BigEndian(message[(at + 2)..]) * 16 + message[at + 1] * 4;
            if (message.Length - at < len) { error = new(Layer.Icmpv6, WireErrorReason.LengthExceedsBuffer, len, message.Length - at); return false; }
            at += len;
        }
        report = new Mldv2Report(message);
        return true;
    }

    public int RecordCount => BinaryPrimitives.ReadUInt16BigEndian(_b[6..]);

    /// <summary>Reads the record at <paramref name="offset"/> (start with 0) and moves the offset past it; false after the last.</summary>
    public bool TryReadRecord(ref int offset, out Mldv2Record record)
    {
        record = default;
        int at = RecordsAt + offset;
        if (at + RecordHeader > _b.Length) return false;
        int sources = BinaryPrimitives.ReadUInt16BigEndian(_b[(at + 2)..]), aux = _b[at + 1] * 4;
        record = new Mldv2Record(_b[at], Ipv6Address.Read(_b[(at + 4)..]), sources, aux);
        offset += RecordHeader + sources * 16 + aux;
        return true;
    }
}
