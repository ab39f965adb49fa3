using Netloom.Time;

namespace Netloom.Wire.Capture;

/// <summary>Link-layer header types (tcpdump.org LINKTYPE_ values) used in capture files.</summary>
public enum LinkType : ushort
{
    Null = 0,
    Ethernet = 1,
    Raw = 101,
    LinuxSll = 113,
}

/// <summary>Which way a packet went through the interface it was captured on (pcapng epb_flags bits 0-1).</summary>
public enum PacketDirection : byte { Unknown = 0, Inbound = 1, Outbound = 2 }

/// <summary>One packet read from a capture file. <see cref="Data"/> is valid until the next read.</summary>
public readonly ref struct CapturedPacket
{
    public CapturedPacket(Instant timestamp, int interfaceId, LinkType linkType, int originalLength, ReadOnlySpan<byte> data,
        PacketDirection direction = PacketDirection.Unknown)
    {
        Direction = direction;
        Timestamp = timestamp;
        InterfaceId = interfaceId;
        LinkType = linkType;
        OriginalLength = originalLength;
        Data = data;
    }

    public Instant Timestamp { get; }
    public int InterfaceId { get; }
    public LinkType LinkType { get; }
    public int OriginalLength { get; }
    public ReadOnlySpan<byte> Data { get; }
    public PacketDirection Direction { get; }
}

public enum CaptureReadResult { Packet, End, Error }

/// <summary>Writes packets to a capture file. Writing a packet allocates nothing.</summary>
public interface ICaptureWriter : IDisposable
{
    /// <summary>Declares an interface and returns its id for <see cref="Write"/>.</summary>
    int AddInterface(LinkType linkType, string? name = null, int snapLength = CaptureLimits.DefaultSnapLength);

    void Write(int interfaceId, Instant timestamp, ReadOnlySpan<byte> data, int originalLength = -1, PacketDirection direction = PacketDirection.Unknown);

    void Flush();
}

public static class CaptureLimits
{
    public const int DefaultSnapLength = 262_144;
    /// <summary>The largest record or block accepted from a file; anything larger is corruption.</summary>
    public const int MaxRecordLength = 16 * 1024 * 1024;
}
