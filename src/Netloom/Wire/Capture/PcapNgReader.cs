using System.Buffers.Binary;
using Netloom.Time;

namespace Netloom.Wire.Capture;

/// <summary>
/// pcapng files (draft-ietf-opsawg-pcapng): sections in either byte order, interfaces with their
/// if_tsresol and if_tsoffset, enhanced, simple and obsolete packet blocks. Other block types
/// are skipped by their length.
/// </summary>
public sealed class PcapNgReader : CaptureReader
{
    internal const uint SectionHeaderType = 0x0A0D0D0A;
    internal const uint ByteOrderMagic = 0x1A2B3C4D;
    internal const uint InterfaceDescriptionType = 1, ObsoletePacketType = 2, SimplePacketType = 3, EnhancedPacketType = 6;
    private const int MaxInterfaces = 65_536;

    private readonly struct Interface(LinkType linkType, int snapLength, ulong unitsPerSecond, long offsetSeconds)
    {
        public LinkType LinkType { get; } = linkType;
        public int SnapLength { get; } = snapLength;
        public ulong UnitsPerSecond { get; } = unitsPerSecond;
        public long OffsetSeconds { get; } = offsetSeconds;
    }

    private readonly List<Interface> _interfaces = [];
    private bool _bigEndian;
    private bool _pendingSectionMagic;

    internal PcapNgReader(Stream stream, bool ownsStream, ReadOnlySpan<byte> magic) : base(stream, ownsStream)
    {
        _pendingSectionMagic = true; // the first block's type has been read already
        Offset = 0;
    }

    public override string Format => "pcapng";
    public int InterfaceCount => _interfaces.Count;
    public LinkType InterfaceLinkType(int id) => _interfaces[id].LinkType;

    private uint U32(ReadOnlySpan<byte> b) => _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(b) : BinaryPrimitives.ReadUInt32LittleEndian(b);
    private ushort U16(ReadOnlySpan<byte> b) => _bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(b) : BinaryPrimitives.ReadUInt16LittleEndian(b);

    public override CaptureReadResult Read(out CapturedPacket packet)
    {
        packet = default;
        Span<byte> head = stackalloc byte[8];
        Span<byte> bom = stackalloc byte[4];
        while (true)
        {
            if (Error is not null) return CaptureReadResult.Error;
            long at = Offset;
            uint type;
            if (_pendingSectionMagic)
            {
                // Type already consumed by Open: read the length only.
                if (ReadSome(head[4..]) < 4) return Fail($"pcapng: section header at offset {at} is truncated");
                type = SectionHeaderType;
                _pendingSectionMagic = false;
            }
            else
            {
                int got = ReadSome(head);
                if (got == 0) return CaptureReadResult.End;
                if (got < 8) return Fail($"pcapng: block header at offset {at} is truncated: {got} of 8 bytes present");
                type = U32(head);
            }

            if (type == SectionHeaderType)
            {
                // The byte order comes from the magic that follows the length.
                if (ReadSome(bom) < 4) return Fail($"pcapng: section header at offset {at} is truncated");
                uint m = BinaryPrimitives.ReadUInt32LittleEndian(bom);
                if (m == ByteOrderMagic) _bigEndian = false;
                else if (BinaryPrimitives.ReverseEndianness(m) == ByteOrderMagic) _bigEndian = true;
                else return Fail($"pcapng: section header at offset {at} has byte-order magic 0x{m:x8}, expected 0x1a2b3c4d");
                uint len = U32(head[4..]);
                if (!CheckLength(len, 28, at)) return CaptureReadResult.Error;
                if (!TryFill((int)len - 12, at, "section header", out var body)) return CaptureReadResult.Error;
                if (U16(body) != 1) return Fail($"pcapng: section header at offset {at} has major version {U16(body)}, expected 1");
                if (!CheckTrailer(body, len, at)) return CaptureReadResult.Error;
                _interfaces.Clear(); // interface ids are per section
                Offset = at + len;
                continue;
            }

            uint length = U32(head[4..]);
            if (!CheckLength(length, 12, at)) return CaptureReadResult.Error;
            if (!TryFill((int)length - 8, at, "block", out var block)) return CaptureReadResult.Error;
            if (!CheckTrailer(block, length, at)) return CaptureReadResult.Error;
            Offset = at + length;
            var b = block[..^4];
            switch (type)
            {
                case InterfaceDescriptionType:
                    if (!TryAddInterface(b, at)) return CaptureReadResult.Error;
                    continue;
                case EnhancedPacketType:
                    return ReadEnhanced(b, at, out packet);
                case SimplePacketType:
                    return ReadSimple(b, at, out packet);
                case ObsoletePacketType:
                    return ReadObsolete(b, at, out packet);
                default:
                    continue; // unknown or uninteresting block: skipped by length
            }
        }
    }

    private bool CheckLength(uint length, int min, long at)
    {
        if (length < min || length % 4 != 0 || length > CaptureLimits.MaxRecordLength)
        {
            Fail($"pcapng: block at offset {at} has length {length}: must be a multiple of 4 between {min} and {CaptureLimits.MaxRecordLength}");
            return false;
        }
        return true;
    }

    private bool CheckTrailer(ReadOnlySpan<byte> rest, uint length, long at)
    {
        uint trailer = U32(rest[^4..]);
        if (trailer == length) return true;
        Fail($"pcapng: block at offset {at} has length {length} but trailing length {trailer}");
        return false;
    }

    private bool TryAddInterface(ReadOnlySpan<byte> b, long at)
    {
        if (b.Length < 8) { Fail($"pcapng: interface description at offset {at} is too short"); return false; }
        if (_interfaces.Count >= MaxInterfaces) { Fail($"pcapng: more than {MaxInterfaces} interfaces in a section at offset {at}"); return false; }
        var linkType = (LinkType)U16(b);
        int snap = (int)Math.Min(U32(b[4..]), int.MaxValue);
        ulong units = 1_000_000; // default resolution: microseconds
        long offsetSeconds = 0;
        var opts = b[8..];
        while (opts.Length >= 4)
        {
            ushort code = U16(opts), olen = U16(opts[2..]);
            if (code == 0) break;
            int padded = olen + 3 & ~3;
            if (4 + padded > opts.Length) { Fail($"pcapng: interface description at offset {at} has an option running past the block"); return false; }
            var v = opts.Slice(4, olen);
            if (code == 9 && olen >= 1) // if_tsresol
            {
                int exp = v[0] & 0x7F;
                bool binary = (v[0] & 0x80) != 0;
                if ((binary && exp > 63) || (!binary && exp > 19)) { Fail($"pcapng: interface at offset {at} has if_tsresol 0x{v[0]:x2}, out of range"); return false; }
                units = binary ? 1UL << exp : Pow10(exp);
            }
            else if (code == 14 && olen == 8) // if_tsoffset, seconds
            {
                offsetSeconds = (long)(_bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(v) : BinaryPrimitives.ReadUInt64LittleEndian(v));
            }
            opts = opts[(4 + padded)..];
        }
        _interfaces.Add(new Interface(linkType, snap, units, offsetSeconds));
        return true;
    }

    private static ulong Pow10(int e)
    {
        ulong r = 1;
        for (int i = 0; i < e; i++) r *= 10;
        return r;
    }

    private Instant ToInstant(in Interface iface, ulong units)
    {
        ulong perSecond = iface.UnitsPerSecond;
        ulong seconds = units / perSecond, rem = units % perSecond;
        long nanos = (long)((UInt128)rem * 1_000_000_000UL / perSecond);
        return Instant.FromSeconds((long)seconds + iface.OffsetSeconds, nanos);
    }

    private CaptureReadResult ReadEnhanced(ReadOnlySpan<byte> b, long at, out CapturedPacket packet)
    {
        packet = default;
        if (b.Length < 20) return Fail($"pcapng: enhanced packet block at offset {at} is too short");
        uint id = U32(b);
        if (id >= _interfaces.Count) return Fail($"pcapng: packet block at offset {at} names interface {id}, but the section declares {_interfaces.Count}");
        ulong ts = (ulong)U32(b[4..]) << 32 | U32(b[8..]);
        uint cap = U32(b[12..]), orig = U32(b[16..]);
        if (cap > b.Length - 20) return Fail($"pcapng: packet block at offset {at} claims {cap} captured bytes but holds {b.Length - 20}");
        var iface = _interfaces[(int)id];
        packet = new CapturedPacket(ToInstant(iface, ts), (int)id, iface.LinkType, (int)Math.Min(orig, int.MaxValue), b.Slice(20, (int)cap),
            DirectionOf(b[Math.Min(b.Length, 20 + (int)((cap + 3) & ~3u))..])); // a block without padding has no options
        return CaptureReadResult.Packet;
    }

    /// <summary>The direction from an epb_flags option, if the options carry one.</summary>
    private PacketDirection DirectionOf(ReadOnlySpan<byte> opts)
    {
        while (opts.Length >= 4)
        {
            ushort code = U16(opts), len = U16(opts[2..]);
            if (code == 0) break;
            int padded = len + 3 & ~3;
            if (4 + padded > opts.Length) break;
            if (code == 2 && len == 4) return (PacketDirection)(U32(opts[4..]) & 3);
            opts = opts[(4 + padded)..];
        }
        return PacketDirection.Unknown;
    }

    private CaptureReadResult ReadSimple(ReadOnlySpan<byte> b, long at, out CapturedPacket packet)
    {
        packet = default;
        if (_interfaces.Count == 0) return Fail($"pcapng: simple packet block at offset {at} before any interface description");
        if (b.Length < 4) return Fail($"pcapng: simple packet block at offset {at} is too short");
        var iface = _interfaces[0];
        int orig = (int)Math.Min(U32(b), int.MaxValue);
        int cap = Math.Min(orig, b.Length - 4);
        if (iface.SnapLength > 0) cap = Math.Min(cap, iface.SnapLength);
        packet = new CapturedPacket(Instant.Zero, 0, iface.LinkType, orig, b.Slice(4, cap));
        return CaptureReadResult.Packet;
    }

    private CaptureReadResult ReadObsolete(ReadOnlySpan<byte> b, long at, out CapturedPacket packet)
    {
        packet = default;
        if (b.Length < 20) return Fail($"pcapng: packet block at offset {at} is too short");
        int id = U16(b);
        if (id >= _interfaces.Count) return Fail($"pcapng: packet block at offset {at} names interface {id}, but the section declares {_interfaces.Count}");
        ulong ts = (ulong)U32(b[4..]) << 32 | U32(b[8..]);
        uint cap = U32(b[12..]), orig = U32(b[16..]);
        if (cap > b.Length - 20) return Fail($"pcapng: packet block at offset {at} claims {cap} captured bytes but holds {b.Length - 20}");
        var iface = _interfaces[id];
        packet = new CapturedPacket(ToInstant(iface, ts), id, iface.LinkType, (int)Math.Min(orig, int.MaxValue), b.Slice(20, (int)cap));
        return CaptureReadResult.Packet;
    }
}
