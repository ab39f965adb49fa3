using System.Buffers.Binary;
using Netloom.Time;

namespace Netloom.Wire.Capture;

/// <summary>Writes classic pcap (little-endian, nanosecond magic by default). One link type per file.</summary>
public sealed class PcapWriter : CaptureWriter
{
    private readonly bool _nanos;
    private LinkType? _linkType;
    private int _snapLength;

    public PcapWriter(Stream stream, bool ownsStream = false, bool nanosecondResolution = true) : base(stream, ownsStream) =>
        _nanos = nanosecondResolution;

    public override int AddInterface(LinkType linkType, string? name = null, int snapLength = CaptureLimits.DefaultSnapLength)
    {
        if (_linkType is { } existing)
        {
            if (existing != linkType)
                throw new NotSupportedException($"classic pcap holds one link type ({existing}); write .pcapng to capture {linkType} too");
            return 0;
        }
        _linkType = linkType;
        _snapLength = snapLength;
        var h = Reserve(24);
        BinaryPrimitives.WriteUInt32LittleEndian(h, _nanos ? PcapReader.NanoMagic : PcapReader.MicroMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 4);
        BinaryPrimitives.WriteInt32LittleEndian(h[8..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], (uint)snapLength);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], (uint)linkType);
        return 0;
    }

    /// <summary>Writes one record; classic pcap has no place for the direction, so it is not kept.</summary>
    public override void Write(int interfaceId, Instant timestamp, ReadOnlySpan<byte> data, int originalLength = -1,
        PacketDirection direction = PacketDirection.Unknown)
    {
        if (_linkType is null || interfaceId != 0)
            throw new InvalidOperationException("call AddInterface once before writing; classic pcap has only interface 0");
        int cap = Math.Min(data.Length, _snapLength);
        var h = Reserve(16 + cap);
        bool through = h.IsEmpty;
        if (through) h = new byte[16]; // only for records over 64 KiB
        BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)timestamp.TotalSeconds);
        long frac = timestamp.SubsecondNanoseconds;
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], (uint)(_nanos ? frac : frac / 1000));
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], (uint)cap);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], (uint)(originalLength < 0 ? data.Length : originalLength));
        if (through)
        {
            WriteThrough(h[..16]);
            WriteThrough(data[..cap]);
        }
        else
        {
            data[..cap].CopyTo(h[16..]);
        }
    }
}
