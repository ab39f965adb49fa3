using System.Buffers.Binary;

namespace Netloom.Wire;

/// <summary>Byte offsets of the IPv6 fixed header (RFC 8200 §3).</summary>
internal static class Ipv6Field
{
    public const int VersionClassFlow = 0; // version 4 bits, traffic class 8, flow label 20
    public const int PayloadLength = 4;
    public const int NextHeader = 6;
    public const int HopLimit = 7;
    public const int Source = 8;
    public const int Destination = 24;
    public const int HeaderLength = 40;
    /// <summary>RFC 8200 §5: every link carries at least 1280-byte packets.</summary>
    public const int MinimumMtu = 1280;
}

/// <summary>
/// A read view of an IPv6 packet: the 40-byte fixed header and the payload its length field
/// names (extension headers included). Bytes past it (link padding) are not part of the packet.
/// Jumbograms (payload length 0 with a hop-by-hop jumbo option) are not supported: a zero
/// length means an empty payload.
/// </summary>
public readonly ref struct Ipv6Packet
{
    private readonly ReadOnlySpan<byte> _b;
    private Ipv6Packet(ReadOnlySpan<byte> b) => _b = b;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out Ipv6Packet packet, out WireError error)
    {
        packet = default;
        if (!TryCheckHeader(buffer, out error)) return false;
        int payload = BinaryPrimitives.ReadUInt16BigEndian(buffer[Ipv6Field.PayloadLength..]);
        int total = Ipv6Field.HeaderLength + payload;
        if (total > buffer.Length) { error = new(Layer.Ipv6, WireErrorReason.LengthExceedsBuffer, total, buffer.Length); return false; }
        packet = new Ipv6Packet(buffer[..total]);
        return true;
    }

    /// <summary>Parses the packet quoted in an ICMPv6 error: the fixed header must be whole, the payload may be cut short.</summary>
    public static bool TryParseQuoted(ReadOnlySpan<byte> buffer, out Ipv6Packet packet, out WireError error)
    {
        packet = default;
        if (!TryCheckHeader(buffer, out error)) return false;
        int total = Ipv6Field.HeaderLength + BinaryPrimitives.ReadUInt16BigEndian(buffer[Ipv6Field.PayloadLength..]);
        packet = new Ipv6Packet(buffer[..Math.Min(total, buffer.Length)]);
        return true;
    }

    private static bool TryCheckHeader(ReadOnlySpan<byte> buffer, out WireError error)
    {
        if (buffer.Length < Ipv6Field.HeaderLength)
        {
            error = new(Layer.Ipv6, WireErrorReason.Truncated, buffer.Length, Ipv6Field.HeaderLength);
            return false;
        }
        int version = buffer[0] >> 4;
        if (version != 6) { error = new(Layer.Ipv6, WireErrorReason.BadVersion, version, 6); return false; }
        error = default;
        return true;
    }

    public byte TrafficClass => (byte)(BinaryPrimitives.ReadUInt32BigEndian(_b) >> 20);
    public uint FlowLabel => BinaryPrimitives.ReadUInt32BigEndian(_b) & 0xF_FFFF;
    public ushort PayloadLength => BinaryPrimitives.ReadUInt16BigEndian(_b[Ipv6Field.PayloadLength..]);
    /// <summary>The header after the fixed one: an extension header or the upper layer.</summary>
    public byte NextHeader => _b[Ipv6Field.NextHeader];
    public byte HopLimit => _b[Ipv6Field.HopLimit];
    public Ipv6Address Source => Ipv6Address.Read(_b[Ipv6Field.Source..]);
    public Ipv6Address Destination => Ipv6Address.Read(_b[Ipv6Field.Destination..]);
    public ReadOnlySpan<byte> Header => _b[..Ipv6Field.HeaderLength];
    /// <summary>Everything after the fixed header: extension headers, then the upper layer.</summary>
    public ReadOnlySpan<byte> Payload => _b[Ipv6Field.HeaderLength..];
    public ReadOnlySpan<byte> Bytes => _b;

    /// <summary>Walks the extension headers (see <see cref="Ipv6Extensions"/>).</summary>
    public bool TryReadExtensions(out Ipv6Extensions extensions, out WireError error) =>
        Ipv6Extensions.TryParse(NextHeader, Payload, out extensions, out error);
}

/// <summary>An in-place writer over an IPv6 fixed header (a router's hop-limit decrement needs no checksum patch).</summary>
public readonly ref struct Ipv6Writer
{
    private readonly Span<byte> _b;

    public Ipv6Writer(Span<byte> header)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(header.Length, Ipv6Field.HeaderLength, nameof(header));
        _b = header;
    }

    public byte HopLimit { get => _b[Ipv6Field.HopLimit]; set => _b[Ipv6Field.HopLimit] = value; }
    public ushort PayloadLength { set => BinaryPrimitives.WriteUInt16BigEndian(_b[Ipv6Field.PayloadLength..], value); }
    public byte NextHeader { set => _b[Ipv6Field.NextHeader] = value; }
    public Ipv6Address Source { set => value.Write(_b[Ipv6Field.Source..]); }
    public Ipv6Address Destination { set => value.Write(_b[Ipv6Field.Destination..]); }

    /// <summary>Sets version 6, the traffic class and the flow label.</summary>
    public void SetVersionClassFlow(byte trafficClass, uint flowLabel) =>
        BinaryPrimitives.WriteUInt32BigEndian(_b, 6u << 28 | (uint)trafficClass << 20 | (flowLabel & 0xF_FFFF));
}

/// <summary>
/// The parsed form of an IPv6 fixed header. <see cref="NextHeader"/> is the header that follows
/// it (an extension header or the upper layer); <see cref="PayloadLength"/> counts both.
/// </summary>
public struct Ipv6Repr
{
    public Ipv6Address Source;
    public Ipv6Address Destination;
    public byte NextHeader;
    public byte HopLimit;
    public byte TrafficClass;
    /// <summary>20 bits (RFC 6437).</summary>
    public uint FlowLabel;
    public int PayloadLength;

    public const int HeaderLength = Ipv6Field.HeaderLength;

    public Ipv6Repr(Ipv6Address source, Ipv6Address destination, byte nextHeader, int payloadLength, byte hopLimit = 64)
    {
        Source = source;
        Destination = destination;
        NextHeader = nextHeader;
        PayloadLength = payloadLength;
        HopLimit = hopLimit;
    }

    public readonly int BufferLength => HeaderLength;
    public readonly int TotalLength => HeaderLength + PayloadLength;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out Ipv6Repr repr, out WireError error)
    {
        repr = default;
        if (!Ipv6Packet.TryParse(buffer, out var p, out error)) return false;
        repr = FromPacket(p);
        return true;
    }

    public static Ipv6Repr FromPacket(in Ipv6Packet p) => new()
    {
        Source = p.Source,
        Destination = p.Destination,
        NextHeader = p.NextHeader,
        HopLimit = p.HopLimit,
        TrafficClass = p.TrafficClass,
        FlowLabel = p.FlowLabel,
        PayloadLength = p.PayloadLength,
    };

    /// <summary>Writes the fixed header into the start of <paramref name="buffer"/>.</summary>
    public readonly void Emit(Span<byte> buffer)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(buffer.Length, HeaderLength, nameof(buffer));
        if ((uint)PayloadLength > ushort.MaxValue) ThrowTooLong(PayloadLength);
        var w = new Ipv6Writer(buffer)
        {
            PayloadLength = (ushort)PayloadLength,
            NextHeader = NextHeader,
            HopLimit = HopLimit,
            Source = Source,
            Destination = Destination,
        };
        w.SetVersionClassFlow(TrafficClass, FlowLabel);
    }

    private static void ThrowTooLong(int length) =>
        throw new ArgumentException($"IPv6 payload length {length} exceeds 65535 (jumbograms are not supported); fragment the payload first");
}
