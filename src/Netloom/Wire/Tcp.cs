using System.Buffers.Binary;

namespace Netloom.Wire;

/// <summary>TCP control bits (RFC 9293 §3.1; ECE and CWR from RFC 3168, NS from RFC 3540).</summary>
[Flags]
public enum TcpFlags : ushort
{
    None = 0,
    Fin = 0x001,
    Syn = 0x002,
    Rst = 0x004,
    Psh = 0x008,
    Ack = 0x010,
    Urg = 0x020,
    Ece = 0x040,
    Cwr = 0x080,
    Ns = 0x100,
}

internal static class TcpField
{
    public const int SourcePort = 0;
    public const int DestinationPort = 2;
    public const int Sequence = 4;
    public const int Acknowledgment = 8;
    public const int OffsetFlags = 12;  // data offset (4 bits), reserved (3 bits), 9 flag bits
    public const int Window = 14;
    public const int Checksum = 16;
    public const int UrgentPointer = 18;
    public const int MinHeaderLength = 20;
    public const int MaxHeaderLength = 60;
    public const ushort FlagMask = 0x0FFF; // flags and the reserved bits, kept for exact re-emission
}

/// <summary>A read view of a TCP segment: header (with validated options) and payload.</summary>
public readonly ref struct TcpSegment
{
    private readonly ReadOnlySpan<byte> _b;
    private TcpSegment(ReadOnlySpan<byte> b) => _b = b;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out TcpSegment segment, out WireError error)
    {
        segment = default;
        if (buffer.Length < TcpField.MinHeaderLength)
        {
            error = new(Layer.Tcp, WireErrorReason.Truncated, buffer.Length, TcpField.MinHeaderLength);
            return false;
        }
        int hl = (buffer[TcpField.OffsetFlags] >> 4) * 4;
        if (hl < TcpField.MinHeaderLength) { error = new(Layer.Tcp, WireErrorReason.HeaderLengthTooSmall, hl, TcpField.MinHeaderLength); return false; }
        if (hl > buffer.Length) { error = new(Layer.Tcp, WireErrorReason.HeaderLengthExceedsBuffer, hl, buffer.Length); return false; }
        if (!TcpOptionReader.Validate(buffer[TcpField.MinHeaderLength..hl], out error)) return false;
        segment = new TcpSegment(buffer);
        return true;
    }

    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(_b);
    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(_b[TcpField.DestinationPort..]);
    public uint SequenceNumber => BinaryPrimitives.ReadUInt32BigEndian(_b[TcpField.Sequence..]);
    public uint AcknowledgmentNumber => BinaryPrimitives.ReadUInt32BigEndian(_b[TcpField.Acknowledgment..]);
    public int HeaderLength => (_b[TcpField.OffsetFlags] >> 4) * 4;
    public TcpFlags Flags => (TcpFlags)(BinaryPrimitives.ReadUInt16BigEndian(_b[TcpField.OffsetFlags..]) & TcpField.FlagMask);
    public ushort Window => BinaryPrimitives.ReadUInt16BigEndian(_b[TcpField.Window..]);
    public ushort SegmentChecksum => BinaryPrimitives.ReadUInt16BigEndian(_b[TcpField.Checksum..]);
    public ushort UrgentPointer => BinaryPrimitives.ReadUInt16BigEndian(_b[TcpField.UrgentPointer..]);
    public ReadOnlySpan<byte> Options => _b[TcpField.MinHeaderLength..HeaderLength];
    public ReadOnlySpan<byte> Payload => _b[HeaderLength..];
    public TcpOptionReader ReadOptions() => new(Options);

    public bool ChecksumValid(Ipv4Address source, Ipv4Address destination) =>
        Checksum.Transport(source, destination, IpProtocol.Tcp, _b) == 0;

    /// <summary>The checksum under the IPv6 pseudo-header (RFC 8200 §8.1).</summary>
    public bool ChecksumValid(Ipv6Address source, Ipv6Address destination) =>
        Checksum.Transport(source, destination, IpProtocol.Tcp, _b) == 0;
}

/// <summary>
/// An in-place writer over a TCP segment (header and payload): for rewriting fields of a segment
/// already built, then refilling or patching the checksum.
/// </summary>
public readonly ref struct TcpWriter
{
    private readonly Span<byte> _b;

    public TcpWriter(Span<byte> segment)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(segment.Length, TcpField.MinHeaderLength, nameof(segment));
        _b = segment;
    }

    public ushort SourcePort { set => BinaryPrimitives.WriteUInt16BigEndian(_b, value); }
    public ushort DestinationPort { set => BinaryPrimitives.WriteUInt16BigEndian(_b[TcpField.DestinationPort..], value); }
    public uint SequenceNumber { set => BinaryPrimitives.WriteUInt32BigEndian(_b[TcpField.Sequence..], value); }
    public uint AcknowledgmentNumber { set => BinaryPrimitives.WriteUInt32BigEndian(_b[TcpField.Acknowledgment..], value); }
    public ushort Window { set => BinaryPrimitives.WriteUInt16BigEndian(_b[TcpField.Window..], value); }
    public ushort UrgentPointer { set => BinaryPrimitives.WriteUInt16BigEndian(_b[TcpField.UrgentPointer..], value); }
    public ushort SegmentChecksum { set => BinaryPrimitives.WriteUInt16BigEndian(_b[TcpField.Checksum..], value); }

    /// <summary>Sets the data offset (from a header length in bytes) and the control bits.</summary>
    public void SetHeaderLengthAndFlags(int headerLength, TcpFlags flags) =>
        BinaryPrimitives.WriteUInt16BigEndian(_b[TcpField.OffsetFlags..], (ushort)(headerLength / 4 << 12 | (ushort)flags & TcpField.FlagMask));

    /// <summary>Computes the checksum over pseudo-header, header and payload (the whole span).</summary>
    public void FillChecksum(Ipv4Address source, Ipv4Address destination)
    {
        SegmentChecksum = 0;
        SegmentChecksum = Checksum.Transport(source, destination, IpProtocol.Tcp, _b);
    }

    /// <summary>Computes the checksum under the IPv6 pseudo-header.</summary>
    public void FillChecksum(Ipv6Address source, Ipv6Address destination)
    {
        SegmentChecksum = 0;
        SegmentChecksum = Checksum.Transport(source, destination, IpProtocol.Tcp, _b);
    }
}

/// <summary>
/// The parsed form of a TCP header. Known options are typed fields; unknown ones, repeats and
/// bytes after End of Option List are kept raw. A repr built in code (empty layout) emits its
/// options in the order Linux uses; a parsed one re-emits the order it was read in.
/// </summary>
public struct TcpRepr
{
    public ushort SourcePort;
    public ushort DestinationPort;
    public uint SequenceNumber;
    public uint AcknowledgmentNumber;
    /// <summary>Control bits; the three reserved bits are kept as read.</summary>
    public TcpFlags Flags;
    public ushort Window;
    public ushort UrgentPointer;
    public ushort? MaxSegmentSize;
    public byte? WindowScale;
    public bool SackPermitted;
    public SackBlocks Sack;
    public TcpTimestamp? Timestamp;
    /// <summary>Options kept as bytes: unknown kinds, repeats, and the tail after End of Option List.</summary>
    public OptionBytes RawOptions;
    public TcpOptionLayout Layout;
    /// <summary>How many bytes of <see cref="RawOptions"/> are the tail after End of Option List.</summary>
    public byte TailLength;
    public int PayloadLength;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out TcpRepr repr, out WireError error)
    {
        repr = default;
        if (!TcpSegment.TryParse(buffer, out var s, out error)) return false;
        repr = FromSegment(s);
        return true;
    }

    public static TcpRepr FromSegment(in TcpSegment s)
    {
        var r = new TcpRepr
        {
            SourcePort = s.SourcePort,
            DestinationPort = s.DestinationPort,
            SequenceNumber = s.SequenceNumber,
            AcknowledgmentNumber = s.AcknowledgmentNumber,
            Flags = s.Flags,
            Window = s.Window,
            UrgentPointer = s.UrgentPointer,
            PayloadLength = s.Payload.Length,
        };
        var reader = s.ReadOptions();
        while (reader.TryNext(out var o, out _)) r.AddParsedOption(o);
        return r;
    }

    private void AddParsedOption(ReadOnlySpan<byte> o)
    {
        switch ((TcpOptionKind)o[0])
        {
            case TcpOptionKind.EndOfList:
                Layout.Add(0);
                RawOptions.TryAppend(o[1..]);
                TailLength = (byte)(o.Length - 1);
                return;
            case TcpOptionKind.NoOperation:
                Layout.Add(1);
                return;
            case TcpOptionKind.MaxSegmentSize when MaxSegmentSize is null:
                MaxSegmentSize = BinaryPrimitives.ReadUInt16BigEndian(o[2..]);
                break;
            case TcpOptionKind.WindowScale when WindowScale is null:
                WindowScale = o[2];
                break;
            case TcpOptionKind.SackPermitted when !SackPermitted:
                SackPermitted = true;
                break;
            case TcpOptionKind.Timestamp when Timestamp is null:
                Timestamp = new TcpTimestamp(BinaryPrimitives.ReadUInt32BigEndian(o[2..]), BinaryPrimitives.ReadUInt32BigEndian(o[6..]));
                break;
            case TcpOptionKind.Sack when Sack.Count == 0:
                for (int i = 2; i + 8 <= o.Length; i += 8)
                    Sack.TryAdd(new SackBlock(BinaryPrimitives.ReadUInt32BigEndian(o[i..]), BinaryPrimitives.ReadUInt32BigEndian(o[(i + 4)..])));
                break;
            default:
                Layout.Add(TcpOptionLayout.Raw);
                RawOptions.TryAppend(o);
                return;
        }
        Layout.Add(o[0]);
    }

    /// <summary>Length of the options area, padded to a multiple of four.</summary>
    public readonly int OptionsLength => WriteOptions(default, write: false) + 3 & ~3;
    public readonly int HeaderLength => TcpField.MinHeaderLength + OptionsLength;
    public readonly int BufferLength => HeaderLength + PayloadLength;

    /// <summary>
    /// Writes the header into <paramref name="segment"/>, whose payload (PayloadLength bytes)
    /// already follows the header, and fills the checksum over pseudo-header, header and payload.
    /// </summary>
    public readonly void Emit(Span<byte> segment, Ipv4Address source, Ipv4Address destination)
    {
        int len = EmitWithoutChecksum(segment);
        new TcpWriter(segment[..len]).FillChecksum(source, destination);
    }

    /// <summary>Writes the header as the IPv4 form does, with the checksum under the IPv6 pseudo-header.</summary>
    public readonly void Emit(Span<byte> segment, Ipv6Address source, Ipv6Address destination)
    {
        int len = EmitWithoutChecksum(segment);
        new TcpWriter(segment[..len]).FillChecksum(source, destination);
    }

    /// <summary>
    /// Writes the header as <see cref="Emit(Span{byte}, Ipv4Address, Ipv4Address)"/> does, but
    /// with only the pseudo-header sum in the checksum field: the payload is not summed (a port
    /// whose two ends declared the checksum capability, <see cref="PartialChecksum"/>).
    /// </summary>
    internal readonly void EmitPartial(Span<byte> segment, Ipv4Address source, Ipv4Address destination)
    {
        int len = EmitWithoutChecksum(segment);
        new TcpWriter(segment).SegmentChecksum = Checksum.Fold(Checksum.PseudoHeader(source, destination, (byte)IpProtocol.Tcp, len));
    }

    /// <summary>The IPv6 form of <see cref="EmitPartial(Span{byte}, Ipv4Address, Ipv4Address)"/>.</summary>
    internal readonly void EmitPartial(Span<byte> segment, Ipv6Address source, Ipv6Address destination)
    {
        int len = EmitWithoutChecksum(segment);
        new TcpWriter(segment).SegmentChecksum = Checksum.Fold(Checksum.PseudoHeader(source, destination, (byte)IpProtocol.Tcp, len));
    }

    /// <summary>
    /// Writes the header as <see cref="Emit(Span{byte}, Ipv4Address, Ipv4Address)"/> does but leaves the checksum zero, for a layer that
    /// computes it over its own pseudo-header (IPv6's, RFC 8200 §8.1). Returns header plus payload length.
    /// </summary>
    internal readonly int EmitWithoutChecksum(Span<byte> segment)
    {
        int optLen = WriteOptions(default, write: false);
        if (optLen > OptionBytes.Capacity) ThrowOptionsTooLong(optLen);
        int hl = TcpField.MinHeaderLength + (optLen + 3 & ~3);
        int len = hl + PayloadLength;
        ArgumentOutOfRangeException.ThrowIfLessThan(segment.Length, len, nameof(segment));
        segment = segment[..len];
        var w = new TcpWriter(segment)
        {
            SourcePort = SourcePort,
            DestinationPort = DestinationPort,
            SequenceNumber = SequenceNumber,
            AcknowledgmentNumber = AcknowledgmentNumber,
            Window = Window,
            UrgentPointer = UrgentPointer,
        };
        w.SetHeaderLengthAndFlags(hl, Flags);
        var area = segment[TcpField.MinHeaderLength..hl];
        WriteOptions(area, write: true);
        area[optLen..].Clear(); // pad with End of Option List
        w.SegmentChecksum = 0;
        return len;
    }

    /// <summary>Walks the options once: computes their length, and writes them when asked.</summary>
    private readonly int WriteOptions(Span<byte> d, bool write)
    {
        int n = 0;
        return Layout.Count > 0 ? WriteInLayoutOrder(d, ref n, write) : WriteCanonical(d, ref n, write);
    }

    private readonly int WriteCanonical(Span<byte> d, ref int n, bool write)
    {
        // Linux's order on a SYN: MSS, SACK-permitted, timestamps, NOP, window scale.
        if (MaxSegmentSize is ushort mss) TcpOptionWriter.Mss(d, ref n, write, mss);
        if (SackPermitted && Timestamp is TcpTimestamp t0)
        {
            TcpOptionWriter.SackPermitted(d, ref n, write);
            TcpOptionWriter.Timestamp(d, ref n, write, t0);
        }
        else if (SackPermitted)
        {
            TcpOptionWriter.Byte(d, ref n, write, 1);
            TcpOptionWriter.Byte(d, ref n, write, 1);
            TcpOptionWriter.SackPermitted(d, ref n, write);
        }
        else if (Timestamp is TcpTimestamp t1)
        {
            TcpOptionWriter.Byte(d, ref n, write, 1);
            TcpOptionWriter.Byte(d, ref n, write, 1);
            TcpOptionWriter.Timestamp(d, ref n, write, t1);
        }
        if (WindowScale is byte ws)
        {
            TcpOptionWriter.Byte(d, ref n, write, 1);
            TcpOptionWriter.WindowScale(d, ref n, write, ws);
        }
        if (Sack.Count > 0)
        {
            TcpOptionWriter.Byte(d, ref n, write, 1);
            TcpOptionWriter.Byte(d, ref n, write, 1);
            TcpOptionWriter.Sack(d, ref n, write, Sack);
        }
        TcpOptionWriter.Bytes(d, ref n, write, RawOptions.Span);
        return n;
    }

    private readonly int WriteInLayoutOrder(Span<byte> d, ref int n, bool write)
    {
        var raw = RawOptions.Span;
        int rawPos = 0;
        bool mss = false, ws = false, sackOk = false, ts = false, sack = false;
        for (int i = 0; i < Layout.Count; i++)
        {
            switch (Layout[i])
            {
                case 0:
                    TcpOptionWriter.Byte(d, ref n, write, 0);
                    TcpOptionWriter.Bytes(d, ref n, write, raw.Slice(rawPos, Math.Min(TailLength, raw.Length - rawPos)));
                    rawPos = raw.Length;
                    break;
                case 1:
                    TcpOptionWriter.Byte(d, ref n, write, 1);
                    break;
                case (byte)TcpOptionKind.MaxSegmentSize when MaxSegmentSize is ushort m:
                    TcpOptionWriter.Mss(d, ref n, write, m); mss = true;
                    break;
                case (byte)TcpOptionKind.WindowScale when WindowScale is byte w:
                    TcpOptionWriter.WindowScale(d, ref n, write, w); ws = true;
                    break;
                case (byte)TcpOptionKind.SackPermitted when SackPermitted:
                    TcpOptionWriter.SackPermitted(d, ref n, write); sackOk = true;
                    break;
                case (byte)TcpOptionKind.Timestamp when Timestamp is TcpTimestamp t:
                    TcpOptionWriter.Timestamp(d, ref n, write, t); ts = true;
                    break;
                case (byte)TcpOptionKind.Sack when Sack.Count > 0:
                    TcpOptionWriter.Sack(d, ref n, write, Sack); sack = true;
                    break;
                case TcpOptionLayout.Raw when rawPos + 1 < raw.Length:
                    int len = Math.Min(raw[rawPos + 1], raw.Length - rawPos);
                    TcpOptionWriter.Bytes(d, ref n, write, raw.Slice(rawPos, len));
                    rawPos += len;
                    break;
                default:
                    break; // a typed option the caller has since removed
            }
        }
        // Typed options set after parsing, absent from the layout, go last.
        if (!mss && MaxSegmentSize is ushort m2) TcpOptionWriter.Mss(d, ref n, write, m2);
        if (!ws && WindowScale is byte w2) TcpOptionWriter.WindowScale(d, ref n, write, w2);
        if (!sackOk && SackPermitted) TcpOptionWriter.SackPermitted(d, ref n, write);
        if (!ts && Timestamp is TcpTimestamp t2) TcpOptionWriter.Timestamp(d, ref n, write, t2);
        if (!sack && Sack.Count > 0) TcpOptionWriter.Sack(d, ref n, write, Sack);
        return n;
    }

    private static void ThrowOptionsTooLong(int length) =>
        throw new InvalidOperationException($"TCP options take {length} bytes; at most {OptionBytes.Capacity} fit in a header");

    /// <summary>Flags as letters in bit order: F S R P A U E C N ("SA", "FPA").</summary>
    public static int FormatFlags(TcpFlags flags, Span<char> destination)
    {
        const string letters = "FSRPAUECN";
        int n = 0;
        for (int i = 0; i < letters.Length; i++)
            if (((ushort)flags & 1 << i) != 0 && n < destination.Length) destination[n++] = letters[i];
        return n;
    }
}
