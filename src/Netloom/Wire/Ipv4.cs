using System.Buffers.Binary;

namespace Netloom.Wire;

/// <summary>IP protocol numbers Netloom knows by name (IANA registry).</summary>
public enum IpProtocol : byte
{
    /// <summary>IPv6 hop-by-hop options (RFC 8200 §4.3).</summary>
    HopByHop = 0,
    Icmp = 1,
    Tcp = 6,
    Udp = 17,
    /// <summary>IPv6 routing header (RFC 8200 §4.4).</summary>
    Ipv6Route = 43,
    /// <summary>IPv6 fragment header (RFC 8200 §4.5).</summary>
    Ipv6Fragment = 44,
    Esp = 50,
    Ah = 51,
    Icmpv6 = 58,
    /// <summary>Nothing follows (RFC 8200 §4.7).</summary>
    Ipv6NoNextHeader = 59,
    /// <summary>IPv6 destination options (RFC 8200 §4.6).</summary>
    Ipv6DestinationOptions = 60,
}

/// <summary>Byte offsets of the IPv4 header (RFC 791 §3.1).</summary>
internal static class Ipv4Field
{
    public const int VersionIhl = 0;
    public const int Tos = 1;
    public const int TotalLength = 2;
    public const int Identification = 4;
    public const int FlagsFragment = 6;
    public const int Ttl = 8;
    public const int Protocol = 9;
    public const int Checksum = 10;
    public const int Source = 12;
    public const int Destination = 16;
    public const int MinHeaderLength = 20;
    public const int MaxHeaderLength = 60;

    public const ushort ReservedFlag = 0x8000;
    public const ushort DontFragmentFlag = 0x4000;
    public const ushort MoreFragmentsFlag = 0x2000;
    public const ushort OffsetMask = 0x1FFF;
}

/// <summary>
/// A read view of an IPv4 packet. <see cref="TryParse"/> checks version, header length and total
/// length against the buffer; the checksum is checked separately by <see cref="ChecksumValid"/>.
/// Bytes past the total length (link padding) are not part of the packet.
/// </summary>
public readonly ref struct Ipv4Packet
{
    private readonly ReadOnlySpan<byte> _b; // exactly the header and payload, or the quoted part

    private Ipv4Packet(ReadOnlySpan<byte> b) => _b = b;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out Ipv4Packet packet, out WireError error)
    {
        packet = default;
        if (!TryCheckHeader(buffer, out int ihl, out error)) return false;
        int total = BinaryPrimitives.ReadUInt16BigEndian(buffer[Ipv4Field.TotalLength..]);
        if (total < ihl) { error = new(Layer.Ipv4, WireErrorReason.LengthTooSmall, total, ihl); return false; }
        if (total > buffer.Length) { error = new(Layer.Ipv4, WireErrorReason.LengthExceedsBuffer, total, buffer.Length); return false; }
        packet = new Ipv4Packet(buffer[..total]);
        return true;
    }

    /// <summary>
    /// Parses the header quoted in an ICMP error (RFC 792): the header must be whole, but the
    /// total length may exceed what was quoted.
    /// </summary>
    public static bool TryParseQuoted(ReadOnlySpan<byte> buffer, out Ipv4Packet packet, out WireError error)
    {
        packet = default;
        if (!TryCheckHeader(buffer, out int ihl, out error)) return false;
        int total = BinaryPrimitives.ReadUInt16BigEndian(buffer[Ipv4Field.TotalLength..]);
        if (total < ihl) { error = new(Layer.Ipv4, WireErrorReason.LengthTooSmall, total, ihl); return false; }
        packet = new Ipv4Packet(buffer[..Math.Min(total, buffer.Length)]);
        return true;
    }

    private static bool TryCheckHeader(ReadOnlySpan<byte> buffer, out int ihl, out WireError error)
    {
        ihl = 0;
        if (buffer.Length < Ipv4Field.MinHeaderLength)
        {
            error = new(Layer.Ipv4, WireErrorReason.Truncated, buffer.Length, Ipv4Field.MinHeaderLength);
            return false;
        }
        int version = buffer[0] >> 4;
        if (version != 4) { error = new(Layer.Ipv4, WireErrorReason.BadVersion, version); return false; }
        ihl = (buffer[0] & 0xF) * 4;
        if (ihl < Ipv4Field.MinHeaderLength) { error = new(Layer.Ipv4, WireErrorReason.HeaderLengthTooSmall, ihl, Ipv4Field.MinHeaderLength); return false; }
        if (ihl > buffer.Length) { error = new(Layer.Ipv4, WireErrorReason.HeaderLengthExceedsBuffer, ihl, buffer.Length); return false; }
        error = default;
        return true;
    }

    public int HeaderLength => (_b[0] & 0xF) * 4;
    public byte Tos => _b[Ipv4Field.Tos];
    public byte Dscp => (byte)(_b[Ipv4Field.Tos] >> 2);
    public byte Ecn => (byte)(_b[Ipv4Field.Tos] & 3);
    public ushort TotalLength => BinaryPrimitives.ReadUInt16BigEndian(_b[Ipv4Field.TotalLength..]);
    public ushort Identification => BinaryPrimitives.ReadUInt16BigEndian(_b[Ipv4Field.Identification..]);
    private ushort FlagsFragment => BinaryPrimitives.ReadUInt16BigEndian(_b[Ipv4Field.FlagsFragment..]);
    public bool ReservedFlag => (FlagsFragment & Ipv4Field.ReservedFlag) != 0;
    public bool DontFragment => (FlagsFragment & Ipv4Field.DontFragmentFlag) != 0;
    public bool MoreFragments => (FlagsFragment & Ipv4Field.MoreFragmentsFlag) != 0;
    /// <summary>Fragment offset in 8-byte units, as on the wire.</summary>
    public ushort FragmentOffset => (ushort)(FlagsFragment & Ipv4Field.OffsetMask);
    public bool IsFragment => MoreFragments || FragmentOffset != 0;
    public byte Ttl => _b[Ipv4Field.Ttl];
    public byte Protocol => _b[Ipv4Field.Protocol];
    public ushort HeaderChecksum => BinaryPrimitives.ReadUInt16BigEndian(_b[Ipv4Field.Checksum..]);
    public Ipv4Address Source => Ipv4Address.Read(_b[Ipv4Field.Source..]);
    public Ipv4Address Destination => Ipv4Address.Read(_b[Ipv4Field.Destination..]);
    public ReadOnlySpan<byte> Options => _b[Ipv4Field.MinHeaderLength..HeaderLength];
    public ReadOnlySpan<byte> Header => _b[..HeaderLength];
    /// <summary>The payload up to the total length (for a quoted header, what was quoted).</summary>
    public ReadOnlySpan<byte> Payload => _b[HeaderLength..];
    public bool ChecksumValid => Checksum.Verify(Header);
}

/// <summary>An in-place writer over a whole IPv4 header, used for forwarding (TTL, checksum).</summary>
public readonly ref struct Ipv4Writer
{
    private readonly Span<byte> _b;

    public Ipv4Writer(Span<byte> header)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(header.Length, Ipv4Field.MinHeaderLength, nameof(header));
        _b = header;
    }

    public byte Ttl { get => _b[Ipv4Field.Ttl]; set => _b[Ipv4Field.Ttl] = value; }
    public ushort HeaderChecksum { set => BinaryPrimitives.WriteUInt16BigEndian(_b[Ipv4Field.Checksum..], value); }
    public ushort TotalLength { set => BinaryPrimitives.WriteUInt16BigEndian(_b[Ipv4Field.TotalLength..], value); }
    public Ipv4Address Source { set => value.Write(_b[Ipv4Field.Source..]); }
    public Ipv4Address Destination { set => value.Write(_b[Ipv4Field.Destination..]); }

    /// <summary>Decrements TTL and patches the checksum incrementally (RFC 1624).</summary>
    public void DecrementTtl()
    {
        ushort oldWord = BinaryPrimitives.ReadUInt16BigEndian(_b[Ipv4Field.Ttl..]);
        _b[Ipv4Field.Ttl]--;
        ushort newWord = BinaryPrimitives.ReadUInt16BigEndian(_b[Ipv4Field.Ttl..]);
        ushort old = BinaryPrimitives.ReadUInt16BigEndian(_b[Ipv4Field.Checksum..]);
        HeaderChecksum = Checksum.Update(old, oldWord, newWord);
    }

    /// <summary>Recomputes the header checksum from scratch.</summary>
    public void FillChecksum()
    {
        int ihl = (_b[0] & 0xF) * 4;
        HeaderChecksum = 0;
        HeaderChecksum = Checksum.Compute(_b[..ihl]);
    }
}

/// <summary>The parsed form of an IPv4 header. Options are carried through unchanged.</summary>
public struct Ipv4Repr
{
    public Ipv4Address Source;
    public Ipv4Address Destination;
    public byte Protocol;
    public byte Ttl;
    public byte Tos;
    public ushort Identification;
    public bool DontFragment;
    public bool MoreFragments;
    /// <summary>The reserved flag bit (RFC 3514's "evil bit"); kept so a frame re-emits exactly.</summary>
    public bool ReservedFlag;
    /// <summary>Fragment offset in 8-byte units.</summary>
    public ushort FragmentOffset;
    /// <summary>Payload length: total length minus header length.</summary>
    public int PayloadLength;
    public OptionBytes Options;

    public Ipv4Repr(Ipv4Address source, Ipv4Address destination, IpProtocol protocol, int payloadLength, byte ttl = 64)
    {
        Source = source;
        Destination = destination;
        Protocol = (byte)protocol;
        PayloadLength = payloadLength;
        Ttl = ttl;
    }

    public static bool TryParse(ReadOnlySpan<byte> buffer, out Ipv4Repr repr, out WireError error)
    {
        repr = default;
        if (!Ipv4Packet.TryParse(buffer, out var p, out error)) return false;
        repr = FromPacket(p);
        return true;
    }

    public static Ipv4Repr FromPacket(in Ipv4Packet p) => new()
    {
        Source = p.Source,
        Destination = p.Destination,
        Protocol = p.Protocol,
        Ttl = p.Ttl,
        Tos = p.Tos,
        Identification = p.Identification,
        DontFragment = p.DontFragment,
        MoreFragments = p.MoreFragments,
        ReservedFlag = p.ReservedFlag,
        FragmentOffset = p.FragmentOffset,
        PayloadLength = p.TotalLength - p.HeaderLength,
        Options = OptionBytes.From(p.Options),
    };

    /// <summary>Header length: 20 plus options padded to a multiple of four.</summary>
    public readonly int HeaderLength => Ipv4Field.MinHeaderLength + (Options.Length + 3 & ~3);
    public readonly int BufferLength => HeaderLength;
    public readonly int TotalLength => HeaderLength + PayloadLength;

    /// <summary>Writes the header, with total length and checksum, into the start of <paramref name="buffer"/>.</summary>
    public readonly void Emit(Span<byte> buffer)
    {
        int hl = HeaderLength;
        ArgumentOutOfRangeException.ThrowIfLessThan(buffer.Length, hl, nameof(buffer));
        if (TotalLength > ushort.MaxValue) ThrowTooLong(TotalLength);
        buffer[Ipv4Field.VersionIhl] = (byte)(0x40 | hl / 4);
        buffer[Ipv4Field.Tos] = Tos;
        BinaryPrimitives.WriteUInt16BigEndian(buffer[Ipv4Field.TotalLength..], (ushort)TotalLength);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[Ipv4Field.Identification..], Identification);
        ushort ff = (ushort)(FragmentOffset & Ipv4Field.OffsetMask);
        if (ReservedFlag) ff |= Ipv4Field.ReservedFlag;
        if (DontFragment) ff |= Ipv4Field.DontFragmentFlag;
        if (MoreFragments) ff |= Ipv4Field.MoreFragmentsFlag;
        BinaryPrimitives.WriteUInt16BigEndian(buffer[Ipv4Field.FlagsFragment..], ff);
        buffer[Ipv4Field.Ttl] = Ttl;
        buffer[Ipv4Field.Protocol] = Protocol;
        BinaryPrimitives.WriteUInt16BigEndian(buffer[Ipv4Field.Checksum..], 0);
        Source.Write(buffer[Ipv4Field.Source..]);
        Destination.Write(buffer[Ipv4Field.Destination..]);
        var opts = buffer[Ipv4Field.MinHeaderLength..hl];
        Options.Span.CopyTo(opts);
        opts[Options.Length..].Clear(); // pad with End of Option List
        BinaryPrimitives.WriteUInt16BigEndian(buffer[Ipv4Field.Checksum..], Checksum.Compute(buffer[..hl]));
    }

    private static void ThrowTooLong(int total) =>
        throw new ArgumentException($"IPv4 total length {total} exceeds 65535; fragment the payload first");
}
