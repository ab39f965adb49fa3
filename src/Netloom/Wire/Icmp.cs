using System.Buffers.Binary;

namespace Netloom.Wire;

/// <summary>ICMPv4 message types (RFC 792).</summary>
public enum IcmpType : byte
{
    EchoReply = 0,
    DestinationUnreachable = 3,
    Redirect = 5,
    EchoRequest = 8,
    TimeExceeded = 11,
    ParameterProblem = 12,
}

/// <summary>Codes of Destination Unreachable (RFC 792, RFC 1191 for code 4).</summary>
public enum UnreachableCode : byte
{
    Network = 0,
    Host = 1,
    Protocol = 2,
    Port = 3,
    FragmentationNeeded = 4,
    SourceRouteFailed = 5,
    AdministrativelyProhibited = 13,
}

/// <summary>Codes of Time Exceeded (RFC 792).</summary>
public enum TimeExceededCode : byte { TtlExceeded = 0, ReassemblyTimeExceeded = 1 }

internal static class IcmpField
{
    public const int Type = 0;
    public const int Code = 1;
    public const int Checksum = 2;
    public const int Rest = 4;       // identifier+sequence, next-hop MTU, pointer, gateway
    public const int HeaderLength = 8;
}

/// <summary>
/// A read view of an ICMPv4 message: the 8-byte header and the data after it (echo data, or
/// for errors the quoted IPv4 header and leading bytes of the offending datagram).
/// </summary>
public readonly ref struct IcmpMessage
{
    private readonly ReadOnlySpan<byte> _b;
    private IcmpMessage(ReadOnlySpan<byte> b) => _b = b;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out IcmpMessage message, out WireError error)
    {
        message = default;
        if (buffer.Length < IcmpField.HeaderLength)
        {
            error = new(Layer.Icmp, WireErrorReason.Truncated, buffer.Length, IcmpField.HeaderLength);
            return false;
        }
        message = new IcmpMessage(buffer);
        error = default;
        return true;
    }

    public byte Type => _b[IcmpField.Type];
    public byte Code => _b[IcmpField.Code];
    public ushort MessageChecksum => BinaryPrimitives.ReadUInt16BigEndian(_b[IcmpField.Checksum..]);
    public uint RestOfHeader => BinaryPrimitives.ReadUInt32BigEndian(_b[IcmpField.Rest..]);
    public ushort Identifier => BinaryPrimitives.ReadUInt16BigEndian(_b[IcmpField.Rest..]);
    public ushort SequenceNumber => BinaryPrimitives.ReadUInt16BigEndian(_b[(IcmpField.Rest + 2)..]);
    public ReadOnlySpan<byte> Data => _b[IcmpField.HeaderLength..];
    public bool ChecksumValid => Checksum.Verify(_b);
    public bool IsError => Type is (byte)IcmpType.DestinationUnreachable or (byte)IcmpType.TimeExceeded
        or (byte)IcmpType.ParameterProblem or (byte)IcmpType.Redirect;

    /// <summary>For error messages: the quoted header of the datagram that caused the error.</summary>
    public bool TryGetQuoted(out Ipv4Packet quoted, out WireError error) => Ipv4Packet.TryParseQuoted(Data, out quoted, out error);
}

/// <summary>An in-place writer over an ICMPv4 message (header and data).</summary>
public readonly ref struct IcmpWriter
{
    private readonly Span<byte> _b;

    public IcmpWriter(Span<byte> message)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(message.Length, IcmpField.HeaderLength, nameof(message));
        _b = message;
    }

    public byte Type { set => _b[IcmpField.Type] = value; }
    public byte Code { set => _b[IcmpField.Code] = value; }
    public uint RestOfHeader { set => BinaryPrimitives.WriteUInt32BigEndian(_b[IcmpField.Rest..], value); }
    public ushort MessageChecksum { set => BinaryPrimitives.WriteUInt16BigEndian(_b[IcmpField.Checksum..], value); }
    public Span<byte> Data => _b[IcmpField.HeaderLength..];

    /// <summary>Computes the checksum over the whole message (the whole span).</summary>
    public void FillChecksum()
    {
        MessageChecksum = 0;
        MessageChecksum = Checksum.Compute(_b);
    }
}

/// <summary>
/// The parsed form of an ICMPv4 header. The data (echo payload or quoted datagram) follows the
/// header in the buffer and is covered by the checksum when emitted.
/// </summary>
public struct IcmpRepr
{
    public byte Type;
    public byte Code;
    /// <summary>The four bytes after the checksum, whose meaning depends on the type.</summary>
    public uint RestOfHeader;
    public int DataLength;

    public const int HeaderLength = IcmpField.HeaderLength;

    public static IcmpRepr Echo(bool request, ushort identifier, ushort sequence, int dataLength) => new()
    {
        Type = (byte)(request ? IcmpType.EchoRequest : IcmpType.EchoReply),
        RestOfHeader = (uint)identifier << 16 | sequence,
        DataLength = dataLength,
    };

    /// <summary>A Destination Unreachable; for code 4 the next-hop MTU goes in the low 16 bits (RFC 1191).</summary>
    public static IcmpRepr Unreachable(UnreachableCode code, int quotedLength, ushort nextHopMtu = 0) => new()
    {
        Type = (byte)IcmpType.DestinationUnreachable,
        Code = (byte)code,
        RestOfHeader = nextHopMtu,
        DataLength = quotedLength,
    };

    public static IcmpRepr TimeExceeded(TimeExceededCode code, int quotedLength) => new()
    {
        Type = (byte)IcmpType.TimeExceeded,
        Code = (byte)code,
        DataLength = quotedLength,
    };

    public readonly ushort Identifier => (ushort)(RestOfHeader >> 16);
    public readonly ushort SequenceNumber => (ushort)RestOfHeader;
    public readonly ushort NextHopMtu => (ushort)RestOfHeader;
    public readonly int BufferLength => HeaderLength + DataLength;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out IcmpRepr repr, out WireError error)
    {
        repr = default;
        if (!IcmpMessage.TryParse(buffer, out var m, out error)) return false;
        repr = new IcmpRepr { Type = m.Type, Code = m.Code, RestOfHeader = m.RestOfHeader, DataLength = m.Data.Length };
        return true;
    }

    /// <summary>
    /// Writes the header into <paramref name="message"/>, whose bytes after the header already
    /// hold <see cref="DataLength"/> bytes of data, and computes the checksum over both.
    /// </summary>
    public readonly void Emit(Span<byte> message)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(message.Length, BufferLength, nameof(message));
        new IcmpWriter(message[..BufferLength]) { Type = Type, Code = Code, RestOfHeader = RestOfHeader }.FillChecksum();
    }
}
