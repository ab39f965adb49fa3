using System.Buffers.Binary;
using System.Text;
using Netloom.Time;

namespace Netloom.Wire.Capture;

/// <summary>
/// Writes pcapng: one section header, an interface description per <see cref="AddInterface"/>
/// (with if_name and if_tsresol = 9, nanoseconds), and an enhanced packet block per packet.
/// </summary>
public sealed class PcapNgWriter : CaptureWriter
{
    private int _interfaces;
    private readonly List<int> _snapLengths = [];

    public PcapNgWriter(Stream stream, bool ownsStream = false, string application = "netloom") : base(stream, ownsStream)
    {
        int appLen = Encoding.UTF8.GetByteCount(application);
        int optLen = 4 + Pad4(appLen) + 4;
        int total = 28 + optLen;
        var b = Reserve(total);
        BinaryPrimitives.WriteUInt32LittleEndian(b, PcapNgReader.SectionHeaderType);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], (uint)total);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], PcapNgReader.ByteOrderMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(b[12..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(b[14..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], -1); // section length unknown
        int o = 24;
        o = WriteOption(b, o, 4, Encoding.UTF8.GetBytes(application)); // shb_userappl
        BinaryPrimitives.WriteUInt32LittleEndian(b[o..], 0); // opt_endofopt
        BinaryPrimitives.WriteUInt32LittleEndian(b[(total - 4)..], (uint)total);
    }

    private static int Pad4(int n) => n + 3 & ~3;

    private static int WriteOption(Span<byte> b, int o, ushort code, ReadOnlySpan<byte> value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(b[o..], code);
        BinaryPrimitives.WriteUInt16LittleEndian(b[(o + 2)..], (ushort)value.Length);
        value.CopyTo(b[(o + 4)..]);
        b.Slice(o + 4 + value.Length, Pad4(value.Length) - value.Length).Clear();
        return o + 4 + Pad4(value.Length);
    }

    public override int AddInterface(LinkType linkType, string? name = null, int snapLength = CaptureLimits.DefaultSnapLength)
    {
        byte[] nameBytes = name is null ? [] : Encoding.UTF8.GetBytes(name);
        if (nameBytes.Length > 1024) throw new ArgumentException("interface name longer than 1024 bytes", nameof(name));
        int optLen = (nameBytes.Length > 0 ? 4 + Pad4(nameBytes.Length) : 0) + 8 + 4;
        int total = 20 + optLen;
        var b = Reserve(total);
        BinaryPrimitives.WriteUInt32LittleEndian(b, PcapNgReader.InterfaceDescriptionType);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], (uint)total);
        BinaryPrimitives.WriteUInt16LittleEndian(b[8..], (ushort)linkType);
        BinaryPrimitives.WriteUInt16LittleEndian(b[10..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], (uint)snapLength);
        int o = 16;
        if (nameBytes.Length > 0) o = WriteOption(b, o, 2, nameBytes); // if_name
        o = WriteOption(b, o, 9, [9]); // if_tsresol: 10^-9
        BinaryPrimitives.WriteUInt32LittleEndian(b[o..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(b[(total - 4)..], (uint)total);
        _snapLengths.Add(snapLength);
        return _interfaces++;
    }

    public override void Write(int interfaceId, Instant timestamp, ReadOnlySpan<byte> data, int originalLength = -1,
        PacketDirection direction = PacketDirection.Unknown)
    {
        if ((uint)interfaceId >= (uint)_interfaces)
            throw new ArgumentOutOfRangeException(nameof(interfaceId), $"interface {interfaceId} was not added; {_interfaces} interfaces exist");
        int cap = Math.Min(data.Length, _snapLengths[interfaceId]);
        // With a direction: an epb_flags option (code 2, 4 bytes) and the end-of-options marker.
        int options = direction == PacketDirection.Unknown ? 0 : 12;
        int total = 32 + Pad4(cap) + options;
        var b = Reserve(total);
        bool through = b.IsEmpty;
        if (through) b = new byte[28]; // only for records over 64 KiB
        ulong ts = (ulong)timestamp.Nanoseconds;
        BinaryPrimitives.WriteUInt32LittleEndian(b, PcapNgReader.EnhancedPacketType);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], (uint)total);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], (uint)interfaceId);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], (uint)(ts >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(b[16..], (uint)ts);
        BinaryPrimitives.WriteUInt32LittleEndian(b[20..], (uint)cap);
        BinaryPrimitives.WriteUInt32LittleEndian(b[24..], (uint)(originalLength < 0 ? data.Length : originalLength));
        Span<byte> trailer = stackalloc byte[20];
        int pad = Pad4(cap) - cap;
        trailer[..pad].Clear();
        int t = pad;
        if (options > 0)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(trailer[t..], 2);      // epb_flags
            BinaryPrimitives.WriteUInt16LittleEndian(trailer[(t + 2)..], 4);
            BinaryPrimitives.WriteUInt32LittleEndian(trailer[(t + 4)..], (uint)direction);
            BinaryPrimitives.WriteUInt32LittleEndian(trailer[(t + 8)..], 0); // opt_endofopt
            t += 12;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(trailer[t..], (uint)total);
        t += 4;
        if (through)
        {
            WriteThrough(b[..28]);
            WriteThrough(data[..cap]);
            WriteThrough(trailer[..t]);
            return;
        }
        data[..cap].CopyTo(b[28..]);
        trailer[..t].CopyTo(b[(28 + cap)..]);
    }
}
