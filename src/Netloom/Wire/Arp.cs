using System.Buffers.Binary;

namespace Netloom.Wire;

public enum ArpOperation : ushort { Request = 1, Reply = 2 }

/// <summary>Byte offsets of an Ethernet/IPv4 ARP packet (RFC 826).</summary>
internal static class ArpField
{
    public const int HardwareType = 0;
    public const int ProtocolType = 2;
    public const int HardwareLength = 4;
    public const int ProtocolLength = 5;
    public const int Operation = 6;
    public const int SenderMac = 8;
    public const int SenderIp = 14;
    public const int TargetMac = 18;
    public const int TargetIp = 24;
    public const int Length = 28;
}

/// <summary>A read view of an ARP packet for Ethernet and IPv4; other kinds are rejected.</summary>
public readonly ref struct ArpPacket
{
    private readonly ReadOnlySpan<byte> _b;
    private ArpPacket(ReadOnlySpan<byte> b) => _b = b;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out ArpPacket packet, out WireError error)
    {
        packet = default;
        if (buffer.Length < ArpField.Length)
        {
            error = new(Layer.Arp, WireErrorReason.Truncated, buffer.Length, ArpField.Length);
            return false;
        }
        ushort htype = BinaryPrimitives.ReadUInt16BigEndian(buffer);
        ushort ptype = BinaryPrimitives.ReadUInt16BigEndian(buffer[ArpField.ProtocolType..]);
        if (htype != 1) { error = new(Layer.Arp, WireErrorReason.UnsupportedHardwareType, htype); return false; }
        if (ptype != 0x0800) { error = new(Layer.Arp, WireErrorReason.UnsupportedProtocolType, ptype); return false; }
        if (buffer[ArpField.HardwareLength] != 6 || buffer[ArpField.ProtocolLength] != 4)
        {
            error = new(Layer.Arp, WireErrorReason.BadAddressLength, buffer[ArpField.HardwareLength], buffer[ArpField.ProtocolLength]);
            return false;
        }
        packet = new ArpPacket(buffer);
        error = default;
        return true;
    }

    public ushort Operation => BinaryPrimitives.ReadUInt16BigEndian(_b[ArpField.Operation..]);
    public MacAddress SenderMac => MacAddress.Read(_b[ArpField.SenderMac..]);
    public Ipv4Address SenderIp => Ipv4Address.Read(_b[ArpField.SenderIp..]);
    public MacAddress TargetMac => MacAddress.Read(_b[ArpField.TargetMac..]);
    public Ipv4Address TargetIp => Ipv4Address.Read(_b[ArpField.TargetIp..]);
    /// <summary>Bytes after the ARP packet (Ethernet padding).</summary>
    public ReadOnlySpan<byte> Trailer => _b[ArpField.Length..];
}

/// <summary>An in-place writer over an Ethernet/IPv4 ARP packet; it writes the fixed type and length fields.</summary>
public readonly ref struct ArpWriter
{
    private readonly Span<byte> _b;

    public ArpWriter(Span<byte> packet)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(packet.Length, ArpField.Length, nameof(packet));
        _b = packet;
        BinaryPrimitives.WriteUInt16BigEndian(_b, 1);
        BinaryPrimitives.WriteUInt16BigEndian(_b[ArpField.ProtocolType..], 0x0800);
        _b[ArpField.HardwareLength] = 6;
        _b[ArpField.ProtocolLength] = 4;
    }

    public ushort Operation { set => BinaryPrimitives.WriteUInt16BigEndian(_b[ArpField.Operation..], value); }
    public MacAddress SenderMac { set => value.Write(_b[ArpField.SenderMac..]); }
    public Ipv4Address SenderIp { set => value.Write(_b[ArpField.SenderIp..]); }
    public MacAddress TargetMac { set => value.Write(_b[ArpField.TargetMac..]); }
    public Ipv4Address TargetIp { set => value.Write(_b[ArpField.TargetIp..]); }
}

/// <summary>The parsed form of an Ethernet/IPv4 ARP packet.</summary>
public struct ArpRepr
{
    public ushort Operation;
    public MacAddress SenderMac;
    public Ipv4Address SenderIp;
    public MacAddress TargetMac;
    public Ipv4Address TargetIp;

    public const int BufferLength = ArpField.Length;

    public static ArpRepr Request(MacAddress senderMac, Ipv4Address senderIp, Ipv4Address targetIp) =>
        new() { Operation = (ushort)ArpOperation.Request, SenderMac = senderMac, SenderIp = senderIp, TargetMac = MacAddress.Zero, TargetIp = targetIp };

    public static ArpRepr Reply(MacAddress senderMac, Ipv4Address senderIp, MacAddress targetMac, Ipv4Address targetIp) =>
        new() { Operation = (ushort)ArpOperation.Reply, SenderMac = senderMac, SenderIp = senderIp, TargetMac = targetMac, TargetIp = targetIp };

    public static bool TryParse(ReadOnlySpan<byte> buffer, out ArpRepr repr, out WireError error)
    {
        repr = default;
        if (!ArpPacket.TryParse(buffer, out var p, out error)) return false;
        repr = new ArpRepr { Operation = p.Operation, SenderMac = p.SenderMac, SenderIp = p.SenderIp, TargetMac = p.TargetMac, TargetIp = p.TargetIp };
        return true;
    }

    public readonly void Emit(Span<byte> buffer) => _ = new ArpWriter(buffer)
    {
        Operation = Operation,
        SenderMac = SenderMac,
        SenderIp = SenderIp,
        TargetMac = TargetMac,
        TargetIp = TargetIp,
    };
}
