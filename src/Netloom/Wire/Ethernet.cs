using System.Buffers.Binary;

namespace Netloom.Wire;

/// <summary>EtherType values Netloom knows by name (IEEE registry).</summary>
public enum EtherType : ushort
{
    Ipv4 = 0x0800,
    Arp = 0x0806,
    Vlan = 0x8100,     // IEEE 802.1Q customer tag
    QinQ = 0x88A8,     // IEEE 802.1ad service tag
    Ipv6 = 0x86DD,
}

/// <summary>An 802.1Q/802.1ad tag: the tag protocol identifier and the tag control information.</summary>
public readonly record struct VlanTag(ushort Tpid, ushort Tci)
{
    public ushort VlanId => (ushort)(Tci & 0x0FFF);
    public byte Priority => (byte)(Tci >> 13);
    public bool DropEligible => (Tci & 0x1000) != 0;
    public static VlanTag Dot1Q(ushort vlanId, byte priority = 0) => new((ushort)EtherType.Vlan, (ushort)(priority << 13 | vlanId & 0xFFF));

    internal static bool IsTagType(ushort type) => type is 0x8100 or 0x88A8 or 0x9100;
}

/// <summary>Byte offsets of the Ethernet II header; the only place they are written down.</summary>
internal static class EthernetField
{
    public const int Destination = 0;
    public const int Source = 6;
    public const int EtherType = 12;
    public const int HeaderLength = 14;
    public const int TagLength = 4;
    public const int MaxTags = 2;
}

/// <summary>
/// A read view of an Ethernet II frame (without FCS), with up to two VLAN tags.
/// <see cref="TryParse"/> checks every length once; no accessor can fail afterwards.
/// </summary>
public readonly ref struct EthernetFrame
{
    private readonly ReadOnlySpan<byte> _buffer;

    private EthernetFrame(ReadOnlySpan<byte> buffer, int tagCount)
    {
        _buffer = buffer;
        TagCount = tagCount;
    }

    public static bool TryParse(ReadOnlySpan<byte> buffer, out EthernetFrame frame, out WireError error)
    {
        frame = default;
        if (buffer.Length < EthernetField.HeaderLength)
        {
            error = new(Layer.Ethernet, WireErrorReason.Truncated, buffer.Length, EthernetField.HeaderLength);
            return false;
        }
        int tags = 0;
        while (VlanTag.IsTagType(BinaryPrimitives.ReadUInt16BigEndian(buffer[(EthernetField.EtherType + tags * EthernetField.TagLength)..])))
        {
            if (tags == EthernetField.MaxTags)
            {
                error = new(Layer.Ethernet, WireErrorReason.TooManyVlanTags, EthernetField.MaxTags);
                return false;
            }
            tags++;
            int need = EthernetField.HeaderLength + tags * EthernetField.TagLength;
            if (buffer.Length < need)
            {
                error = new(Layer.Ethernet, WireErrorReason.Truncated, buffer.Length, need);
                return false;
            }
        }
        frame = new EthernetFrame(buffer, tags);
        error = default;
        return true;
    }

    public int TagCount { get; }
    public int HeaderLength => EthernetField.HeaderLength + TagCount * EthernetField.TagLength;
    public MacAddress Destination => MacAddress.Read(_buffer[EthernetField.Destination..]);
    public MacAddress Source => MacAddress.Read(_buffer[EthernetField.Source..]);
    public ushort EtherType => BinaryPrimitives.ReadUInt16BigEndian(_buffer[(HeaderLength - 2)..]);

    public VlanTag Tag(int index)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)TagCount, nameof(index));
        var t = _buffer[(EthernetField.EtherType + index * EthernetField.TagLength)..];
        return new VlanTag(BinaryPrimitives.ReadUInt16BigEndian(t), BinaryPrimitives.ReadUInt16BigEndian(t[2..]));
    }

    public ReadOnlySpan<byte> Payload => _buffer[HeaderLength..];
}

/// <summary>An in-place writer for an Ethernet II header of known tag count.</summary>
public readonly ref struct EthernetWriter
{
    private readonly Span<byte> _buffer;
    private readonly int _tags;

    public EthernetWriter(Span<byte> buffer, int tagCount = 0)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(tagCount, EthernetField.MaxTags);
        ArgumentOutOfRangeException.ThrowIfLessThan(buffer.Length, EthernetField.HeaderLength + tagCount * EthernetField.TagLength, nameof(buffer));
        _buffer = buffer;
        _tags = tagCount;
    }

    public MacAddress Destination { set => value.Write(_buffer[EthernetField.Destination..]); }
    public MacAddress Source { set => value.Write(_buffer[EthernetField.Source..]); }
    public ushort EtherType { set => BinaryPrimitives.WriteUInt16BigEndian(_buffer[(EthernetField.HeaderLength + _tags * EthernetField.TagLength - 2)..], value); }

    public void SetTag(int index, VlanTag tag)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)_tags, nameof(index));
        var t = _buffer[(EthernetField.EtherType + index * EthernetField.TagLength)..];
        BinaryPrimitives.WriteUInt16BigEndian(t, tag.Tpid);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], tag.Tci);
    }

    public Span<byte> Payload => _buffer[(EthernetField.HeaderLength + _tags * EthernetField.TagLength)..];
}

/// <summary>The parsed form of an Ethernet II header.</summary>
public struct EthernetRepr
{
    public MacAddress Destination;
    public MacAddress Source;
    public ushort EtherType;
    public int TagCount;
    public VlanTag OuterTag;
    public VlanTag InnerTag;

    public EthernetRepr(MacAddress source, MacAddress destination, EtherType etherType)
    {
        Source = source;
        Destination = destination;
        EtherType = (ushort)etherType;
    }

    public static bool TryParse(ReadOnlySpan<byte> buffer, out EthernetRepr repr, out WireError error)
    {
        repr = default;
        if (!EthernetFrame.TryParse(buffer, out var f, out error)) return false;
        repr = FromFrame(f);
        return true;
    }

    public static EthernetRepr FromFrame(in EthernetFrame f) => new()
    {
        Destination = f.Destination,
        Source = f.Source,
        EtherType = f.EtherType,
        TagCount = f.TagCount,
        OuterTag = f.TagCount > 0 ? f.Tag(0) : default,
        InnerTag = f.TagCount > 1 ? f.Tag(1) : default,
    };

    /// <summary>The first VLAN ID, or null when the frame is untagged.</summary>
    public readonly ushort? VlanId => TagCount > 0 ? OuterTag.VlanId : null;

    public readonly int BufferLength => EthernetField.HeaderLength + TagCount * EthernetField.TagLength;

    /// <summary>Writes the header into the first <see cref="BufferLength"/> bytes of <paramref name="frame"/>.</summary>
    public readonly void Emit(Span<byte> frame)
    {
        var w = new EthernetWriter(frame, TagCount);
        w.Destination = Destination;
        w.Source = Source;
        if (TagCount > 0) w.SetTag(0, OuterTag);
        if (TagCount > 1) w.SetTag(1, InnerTag);
        w.EtherType = EtherType;
    }
}
