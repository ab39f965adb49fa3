using System.Buffers.Binary;

namespace Netloom.Wire;

/// <summary>ICMPv6 message types (RFC 4443, RFC 4861 for NDP, RFC 2710 and RFC 3810 for MLD).</summary>
public enum Icmpv6Type : byte
{
    DestinationUnreachable = 1,
    PacketTooBig = 2,
    TimeExceeded = 3,
    ParameterProblem = 4,
    EchoRequest = 128,
    EchoReply = 129,
    MulticastListenerQuery = 130,
    MulticastListenerReport = 131,
    MulticastListenerDone = 132,
    RouterSolicitation = 133,
    RouterAdvertisement = 134,
    NeighborSolicitation = 135,
    NeighborAdvertisement = 136,
    Redirect = 137,
    Mldv2Report = 143,
}

/// <summary>Codes of ICMPv6 Destination Unreachable (RFC 4443 §3.1).</summary>
public enum Icmpv6UnreachableCode : byte
{
    NoRoute = 0,
    AdministrativelyProhibited = 1,
    BeyondScope = 2,
    Address = 3,
    Port = 4,
    SourcePolicy = 5,
    RejectRoute = 6,
}

/// <summary>Codes of ICMPv6 Parameter Problem (RFC 4443 §3.4, RFC 7112 for 3).</summary>
public enum Icmpv6ParameterProblemCode : byte
{
    ErroneousHeaderField = 0,
    UnrecognizedNextHeader = 1,
    UnrecognizedOption = 2,
    IncompleteHeaderChain = 3,
}

internal static class Icmpv6Field
{
    public const int Type = 0;
    public const int Code = 1;
    public const int Checksum = 2;
    public const int Rest = 4;       // identifier+sequence, MTU, pointer, NDP fields
    public const int HeaderLength = 8;
    /// <summary>RFC 4443 §2.4(c): an error message must not exceed the minimum MTU.</summary>
    public const int MaxErrorLength = Ipv6Field.MinimumMtu - Ipv6Field.HeaderLength;
}

/// <summary>
/// A read view of an ICMPv6 message: the 8-byte header (type, code, checksum, four type-specific
/// bytes) and the body after it. The checksum covers the IPv6 pseudo-header (RFC 4443 §2.3).
/// </summary>
public readonly ref struct Icmpv6Message
{
    private readonly ReadOnlySpan<byte> _b;
    private Icmpv6Message(ReadOnlySpan<byte> b) => _b = b;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out Icmpv6Message message, out WireError error)
    {
        message = default;
        if (buffer.Length < Icmpv6Field.HeaderLength)
        {
            error = new(Layer.Icmpv6, WireErrorReason.Truncated, buffer.Length, Icmpv6Field.HeaderLength);
            return false;
        }
        message = new Icmpv6Message(buffer);
        error = default;
        return true;
    }

    public byte Type => _b[Icmpv6Field.Type];
    public byte Code => _b[Icmpv6Field.Code];
    public ushort MessageChecksum => BinaryPrimitives.ReadUInt16BigEndian(_b[Icmpv6Field.Checksum..]);
    public uint RestOfHeader => BinaryPrimitives.ReadUInt32BigEndian(_b[Icmpv6Field.Rest..]);
    public ushort Identifier => BinaryPrimitives.ReadUInt16BigEndian(_b[Icmpv6Field.Rest..]);
    public ushort SequenceNumber => BinaryPrimitives.ReadUInt16BigEndian(_b[(Icmpv6Field.Rest + 2)..]);
    /// <summary>Packet Too Big's MTU, Parameter Problem's pointer.</summary>
    public uint Mtu => RestOfHeader;
    public ReadOnlySpan<byte> Data => _b[Icmpv6Field.HeaderLength..];
    public ReadOnlySpan<byte> Bytes => _b;
    /// <summary>Types 0 to 127 are errors (RFC 4443 §2.1).</summary>
    public bool IsError => Type < 128;

    public bool ChecksumValid(Ipv6Address source, Ipv6Address destination) =>
        Checksum.Transport(source, destination, IpProtocol.Icmpv6, _b) == 0;

    /// <summary>For error messages: the packet that caused the error, as much as was quoted.</summary>
    public bool TryGetQuoted(out Ipv6Packet quoted, out WireError error) => Ipv6Packet.TryParseQuoted(Data, out quoted, out error);
}

/// <summary>An in-place writer over an ICMPv6 message (header and body).</summary>
public readonly ref struct Icmpv6Writer
{
    private readonly Span<byte> _b;

    public Icmpv6Writer(Span<byte> message)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(message.Length, Icmpv6Field.HeaderLength, nameof(message));
        _b = message;
    }

    public byte Type { set => _b[Icmpv6Field.Type] = value; }
    public byte Code { set => _b[Icmpv6Field.Code] = value; }
    public uint RestOfHeader { set => BinaryPrimitives.WriteUInt32BigEndian(_b[Icmpv6Field.Rest..], value); }
    public ushort MessageChecksum { set => BinaryPrimitives.WriteUInt16BigEndian(_b[Icmpv6Field.Checksum..], value); }
    public Span<byte> Data => _b[Icmpv6Field.HeaderLength..];

    /// <summary>Computes the checksum over the IPv6 pseudo-header and the whole span.</summary>
    public void FillChecksum(Ipv6Address source, Ipv6Address destination)
    {
        MessageChecksum = 0;
        MessageChecksum = Checksum.Transport(source, destination, IpProtocol.Icmpv6, _b);
    }
}

/// <summary>
/// The parsed form of an ICMPv6 header. The body (echo data, a quoted packet, NDP fields and
/// options) follows the header in the buffer and is covered by the checksum when emitted.
/// </summary>
public struct Icmpv6Repr
{
    public byte Type;
    public byte Code;
    /// <summary>The four bytes after the checksum, whose meaning depends on the type.</summary>
    public uint RestOfHeader;
    public int DataLength;

    public const int HeaderLength = Icmpv6Field.HeaderLength;

    public static Icmpv6Repr Echo(bool request, ushort identifier, ushort sequence, int dataLength) => new()
    {
        Type = (byte)(request ? Icmpv6Type.EchoRequest : Icmpv6Type.EchoReply),
        RestOfHeader = (uint)identifier << 16 | sequence,
        DataLength = dataLength,
    };

    public static Icmpv6Repr Unreachable(Icmpv6UnreachableCode code, int quotedLength) =>
        new() { Type = (byte)Icmpv6Type.DestinationUnreachable, Code = (byte)code, DataLength = quotedLength };

    public static Icmpv6Repr PacketTooBig(uint mtu, int quotedLength) =>
        new() { Type = (byte)Icmpv6Type.PacketTooBig, RestOfHeader = mtu, DataLength = quotedLength };

    /// <summary>Code 0: hop limit exceeded in transit; 1: fragment reassembly time exceeded.</summary>
    public static Icmpv6Repr TimeExceeded(byte code, int quotedLength) =>
        new() { Type = (byte)Icmpv6Type.TimeExceeded, Code = code, DataLength = quotedLength };

    public static Icmpv6Repr ParameterProblem(Icmpv6ParameterProblemCode code, uint pointer, int quotedLength) =>
        new() { Type = (byte)Icmpv6Type.ParameterProblem, Code = (byte)code, RestOfHeader = pointer, DataLength = quotedLength };

    public readonly ushort Identifier => (ushort)(RestOfHeader >> 16);
    public readonly ushort SequenceNumber => (ushort)RestOfHeader;
    public readonly uint Mtu => RestOfHeader;
    public readonly bool IsError => Type < 128;
    public readonly int BufferLength => HeaderLength + DataLength;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out Icmpv6Repr repr, out WireError error)
    {
        repr = default;
        if (!Icmpv6Message.TryParse(buffer, out var m, out error)) return false;
        repr = FromMessage(m);
        return true;
    }

    public static Icmpv6Repr FromMessage(in Icmpv6Message m) =>
        new() { Type = m.Type, Code = m.Code, RestOfHeader = m.RestOfHeader, DataLength = m.Data.Length };

    /// <summary>
    /// Writes the header into <paramref name="message"/>, whose bytes after the header already
    /// hold <see cref="DataLength"/> bytes of body, and computes the checksum under the pseudo-header.
    /// </summary>
    public readonly void Emit(Span<byte> message, Ipv6Address source, Ipv6Address destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(message.Length, BufferLength, nameof(message));
        new Icmpv6Writer(message[..BufferLength]) { Type = Type, Code = Code, RestOfHeader = RestOfHeader }.FillChecksum(source, destination);
    }
}
