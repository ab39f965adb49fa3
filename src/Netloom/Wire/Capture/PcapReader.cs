using System.Buffers.Binary;
using Netloom.Time;

namespace Netloom.Wire.Capture;

/// <summary>Classic libpcap files: microsecond or nanosecond magic, either byte order.</summary>
public sealed class PcapReader : CaptureReader
{
    internal const uint MicroMagic = 0xA1B2C3D4, NanoMagic = 0xA1B23C4D;
    internal static bool IsMagic(uint m) => m is MicroMagic or NanoMagic
        || BinaryPrimitives.ReverseEndianness(m) is MicroMagic or NanoMagic;

    private const int FileHeaderLength = 24, RecordHeaderLength = 16;
    private readonly bool _bigEndian;
    private readonly bool _nanos;
    private bool _headerRead;

    internal PcapReader(Stream stream, bool ownsStream, ReadOnlySpan<byte> magic) : base(stream, ownsStream)
    {
        uint le = BinaryPrimitives.ReadUInt32LittleEndian(magic);
        _bigEndian = le is not (MicroMagic or NanoMagic);
        uint m = _bigEndian ? BinaryPrimitives.ReverseEndianness(le) : le;
        _nanos = m == NanoMagic;
        Offset = 4;
    }

    public override string Format => "pcap";
    public LinkType LinkType { get; private set; }
    public int SnapLength { get; private set; }
    public bool NanosecondResolution => _nanos;

    private uint U32(ReadOnlySpan<byte> b) => _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(b) : BinaryPrimitives.ReadUInt32LittleEndian(b);
    private ushort U16(ReadOnlySpan<byte> b) => _bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(b) : BinaryPrimitives.ReadUInt16LittleEndian(b);

    public override CaptureReadResult Read(out CapturedPacket packet)
    {
        packet = default;
        if (Error is not null) return CaptureReadResult.Error;
        if (!_headerRead)
        {
            if (!TryFill(FileHeaderLength - 4, 0, "file header", out var h)) return CaptureReadResult.Error;
            ushort major = U16(h);
            if (major != 2) return Fail($"pcap: version {major}.{U16(h[2..])} at offset 4 is not 2.x");
            SnapLength = (int)Math.Min(U32(h[12..]), int.MaxValue);
            LinkType = (LinkType)(U32(h[16..]) & 0xFFFF); // upper bits carry FCS length flags
            _headerRead = true;
            Offset = FileHeaderLength;
        }
        long at = Offset;
        Span<byte> rh = stackalloc byte[RecordHeaderLength];
        int got = ReadSome(rh);
        if (got == 0) return CaptureReadResult.End;
        if (got < RecordHeaderLength)
            return Fail($"pcap: record header at offset {at} is truncated: {got} of {RecordHeaderLength} bytes present");
        uint sec = U32(rh), frac = U32(rh[4..]), incl = U32(rh[8..]), orig = U32(rh[12..]);
        if (incl > CaptureLimits.MaxRecordLength)
            return Fail($"pcap: record at offset {at} claims {incl} captured bytes, more than the {CaptureLimits.MaxRecordLength} limit");
        if (frac >= (_nanos ? 1_000_000_000u : 1_000_000u))
            return Fail($"pcap: record at offset {at} has sub-second timestamp {frac}, out of range");
        if (!TryFill((int)incl, at, "record data", out var data)) return CaptureReadResult.Error;
        Offset = at + RecordHeaderLength + incl;
        var ts = Instant.FromSeconds(sec, _nanos ? frac : frac * 1000L);
        packet = new CapturedPacket(ts, 0, LinkType, (int)Math.Min(orig, int.MaxValue), data);
        return CaptureReadResult.Packet;
    }
}
