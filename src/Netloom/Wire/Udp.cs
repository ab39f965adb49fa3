using System.Buffers.Binary;

namespace Netloom.Wire;

internal static class UdpField
{
    public const int SourcePort = 0;
    public const int DestinationPort = 2;
    public const int Length = 4;
    public const int Checksum = 6;
    public const int HeaderLength = 8;
}

/// <summary>A read view of a UDP datagram (RFC 768), cut to the length in its header.</summary>
public readonly ref struct UdpDatagram
{
    private readonly ReadOnlySpan<byte> _b;
    private UdpDatagram(ReadOnlySpan<byte> b) => _b = b;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out UdpDatagram datagram, out WireError error)
    {
        datagram = default;
        if (buffer.Length < UdpField.HeaderLength)
        {
            error = new(Layer.Udp, WireErrorReason.Truncated, buffer.Length, UdpField.HeaderLength);
            return false;
        }
        int len = BinaryPrimitives.ReadUInt16BigEndian(buffer[UdpField.Length..]);
        if (len < UdpField.HeaderLength) { error = new(Layer.Udp, WireErrorReason.LengthTooSmall, len, UdpField.HeaderLength); return false; }
        if (len > buffer.Length) { error = new(Layer.Udp, WireErrorReason.LengthExceedsBuffer, len, buffer.Length); return false; }
        datagram = new UdpDatagram(buffer[..len]);
        error = default;
        return true;
    }

    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(_b);
    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(_b[UdpField.DestinationPort..]);
    public ushort Length => BinaryPrimitives.ReadUInt16BigEndian(_b[UdpField.Length..]);
    public ushort DatagramChecksum => BinaryPrimitives.ReadUInt16BigEndian(_b[UdpField.Checksum..]);
    public ReadOnlySpan<byte> Payload => _b[UdpField.HeaderLength..];

    /// <summary>True when the checksum matches, or is zero (RFC 768: no checksum was sent).</summary>
    public bool ChecksumValid(Ipv4Address source, Ipv4Address destination) =>
        DatagramChecksum == 0 || Checksum.Transport(source, destination, IpProtocol.Udp, _b) == 0;

    /// <summary>True when the checksum matches under the IPv6 pseudo-header. A zero checksum is invalid over IPv6 (RFC 8200 §8.1).</summary>
    public bool ChecksumValid(Ipv6Address source, Ipv6Address destination) =>
        DatagramChecksum != 0 && Checksum.Transport(source, destination, IpProtocol.Udp, _b) == 0;
}

/// <summary>An in-place writer over a UDP datagram (header and payload).</summary>
public readonly ref struct UdpWriter
{
    private readonly Span<byte> _b;

    public UdpWriter(Span<byte> datagram)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(datagram.Length, UdpField.HeaderLength, nameof(datagram));
        _b = datagram;
    }

    public ushort SourcePort { set => BinaryPrimitives.WriteUInt16BigEndian(_b, value); }
    public ushort DestinationPort { set => BinaryPrimitives.WriteUInt16BigEndian(_b[UdpField.DestinationPort..], value); }
    public ushort Length { set => BinaryPrimitives.WriteUInt16BigEndian(_b[UdpField.Length..], value); }
    public ushort DatagramChecksum { set => BinaryPrimitives.WriteUInt16BigEndian(_b[UdpField.Checksum..], value); }
    public Span<byte> Payload => _b[UdpField.HeaderLength..];

    /// <summary>Computes the checksum over pseudo-header, header and payload (the whole span).</summary>
    public void FillChecksum(Ipv4Address source, Ipv4Address destination)
    {
        DatagramChecksum = 0;
        ushort c = Checksum.Transport(source, destination, IpProtocol.Udp, _b);
        // RFC 768: a computed zero is sent as all ones, zero meaning "no checksum".
        DatagramChecksum = c == 0 ? (ushort)0xFFFF : c;
    }

    /// <summary>Computes the checksum under the IPv6 pseudo-header; a computed zero is sent as all ones.</summary>
    public void FillChecksum(Ipv6Address source, Ipv6Address destination)
    {
        DatagramChecksum = 0;
        ushort c = Checksum.Transport(source, destination, IpProtocol.Udp, _b);
        DatagramChecksum = c == 0 ? (ushort)0xFFFF : c;
    }
}

/// <summary>The parsed form of a UDP header.</summary>
public struct UdpRepr
{
    public ushort SourcePort;
    public ushort DestinationPort;
    public int PayloadLength;
    /// <summary>Send a zero checksum (RFC 768 permits it on IPv4); set when a parsed datagram had none.</summary>
    public bool OmitChecksum;

    public const int HeaderLength = UdpField.HeaderLength;

    public UdpRepr(ushort sourcePort, ushort destinationPort, int payloadLength)
    {
        SourcePort = sourcePort;
        DestinationPort = destinationPort;
        PayloadLength = payloadLength;
    }

    public readonly int BufferLength => HeaderLength + PayloadLength;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out UdpRepr repr, out WireError error)
    {
        repr = default;
        if (!UdpDatagram.TryParse(buffer, out var d, out error)) return false;
        repr = new UdpRepr(d.SourcePort, d.DestinationPort, d.Payload.Length) { OmitChecksum = d.DatagramChecksum == 0 };
        return true;
    }

    /// <summary>
    /// Writes the header into <paramref name="datagram"/>, whose payload is already in place
    /// after it, and fills the checksum over the pseudo-header, header and payload.
    /// </summary>
    public readonly void Emit(Span<byte> datagram, Ipv4Address source, Ipv4Address destination)
    {
        int len = BufferLength;
        ArgumentOutOfRangeException.ThrowIfLessThan(datagram.Length, len, nameof(datagram));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(len, ushort.MaxValue, nameof(PayloadLength));
        var w = new UdpWriter(datagram[..len])
        {
            SourcePort = SourcePort,
            DestinationPort = DestinationPort,
            Length = (ushort)len,
            DatagramChecksum = 0,
        };
        if (!OmitChecksum) w.FillChecksum(source, destination);
    }

    /// <summary>
    /// Writes the header with only the pseudo-header sum in the checksum field (the payload not
    /// summed), for a port whose two ends declared the checksum capability (<see cref="PartialChecksum"/>).
    /// </summary>
    internal readonly void EmitPartial(Span<byte> datagram, Ipv4Address source, Ipv4Address destination) =>
        EmitPartial(datagram, Checksum.PseudoHeader(source, destination, (byte)IpProtocol.Udp, BufferLength));

    /// <summary>The IPv6 form of <see cref="EmitPartial(Span{byte}, Ipv4Address, Ipv4Address)"/>.</summary>
    internal readonly void EmitPartial(Span<byte> datagram, Ipv6Address source, Ipv6Address destination) =>
        EmitPartial(datagram, Checksum.PseudoHeader(source, destination, (byte)IpProtocol.Udp, BufferLength));

    private readonly void EmitPartial(Span<byte> datagram, uint pseudo)
    {
        int len = BufferLength;
        ArgumentOutOfRangeException.ThrowIfLessThan(datagram.Length, len, nameof(datagram));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(len, ushort.MaxValue, nameof(PayloadLength));
        new UdpWriter(datagram[..len]) { SourcePort = SourcePort, DestinationPort = DestinationPort, Length = (ushort)len, DatagramChecksum = Checksum.Fold(pseudo) };
    }

    /// <summary>Writes the header with the checksum under the IPv6 pseudo-header (always present over IPv6).</summary>
    public readonly void Emit(Span<byte> datagram, Ipv6Address source, Ipv6Address destination)
    {
        int len = BufferLength;
        ArgumentOutOfRangeException.ThrowIfLessThan(datagram.Length, len, nameof(datagram));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(len, ushort.MaxValue, nameof(PayloadLength));
        new UdpWriter(datagram[..len]) { SourcePort = SourcePort, DestinationPort = DestinationPort, Length = (ushort)len }.FillChecksum(source, destination);
    }
}
