using System.Buffers.Binary;

namespace Netloom.Wire;

/// <summary>Multicast Listener Discovery version 2 (RFC 3810): field offsets and record types.</summary>
internal static class MldField
{
    public const int MaxResponseCode = 4;    // query: 16 bits
    public const int MulticastAddress = 8;   // query: 16 bytes
    public const int QueryFlags = 24;        // query v2: reserved 4 bits, S 1, QRV 3
    public const int QueryIntervalCode = 25;
    public const int SourceCount = 26;
    public const int Sources = 28;
    /// <summary>An MLDv1 query (RFC 2710) is 24 bytes; an MLDv2 query at least 28 (RFC 3810 §8.1).</summary>
    public const int QueryV1Length = 24, QueryV2Length = 28;
    public const int ReportRecordCount = 6;  // report: 16 bits
    public const int ReportRecords = 8;
    public const int RecordLength = 20;      // type, aux data length, source count, address; no sources, no aux data

    /// <summary>Multicast address record types (RFC 3810 §5.2.12).</summary>
    public const byte ModeIsInclude = 1, ModeIsExclude = 2, ChangeToInclude = 3, ChangeToExclude = 4;
}

/// <summary>
/// A read view of a Multicast Listener Query (RFC 3810 §5.1): <see cref="TryParse"/> checks the
/// length for the version and that the source list lies inside the message.
/// </summary>
internal readonly ref struct MldQuery
{
    private readonly ReadOnlySpan<byte> _b;
    private MldQuery(ReadOnlySpan<byte> b) => _b = b;

    public static bool TryParse(ReadOnlySpan<byte> message, out MldQuery query, out WireError error)
    {
        query = default;
        if (!Icmpv6Message.TryParse(message, out var m, out error)) return false;
        if (m.Type != (byte)Icmpv6Type.MulticastListenerQuery) { error = new(Layer.Icmpv6, WireErrorReason.BadValue, m.Type, (int)Icmpv6Type.MulticastListenerQuery); return false; }
        if (message.Length < MldField.QueryV1Length) { error = new(Layer.Icmpv6, WireErrorReason.Truncated, message.Length, MldField.QueryV1Length); return false; }
        if (message.Length >= MldField.QueryV2Length)
        {
            int need = MldField.Sources + 16 * BinaryPrimitives.ReadUInt16BigEndian(message[MldField.SourceCount..]);
            if (message.Length < need) { error = new(Layer.Icmpv6, WireErrorReason.LengthExceedsBuffer, need, message.Length); return false; }
        }
        query = new MldQuery(message);
        return true;
    }

    /// <summary>False for a 24-byte MLDv1 query (RFC 3810 §8.1 tells them apart by length).</summary>
    public bool IsVersion2 => _b.Length >= MldField.QueryV2Length;
    public ushort MaxResponseCode => BinaryPrimitives.ReadUInt16BigEndian(_b[MldField.MaxResponseCode..]);
    /// <summary>The unspecified address for a General Query, else the group asked about.</summary>
    public Ipv6Address MulticastAddress => Ipv6Address.Read(_b[MldField.MulticastAddress..]);
    /// <summary>Querier's Robustness Variable; 0 means the querier's is above 7 or unknown.</summary>
    public byte Qrv => IsVersion2 ? (byte)(_b[MldField.QueryFlags] & 7) : (byte)0;
    public int SourceCount => IsVersion2 ? BinaryPrimitives.ReadUInt16BigEndian(_b[MldField.SourceCount..]) : 0;

    /// <summary>
    /// RFC 3810 §5.1.3: the Maximum Response Delay in milliseconds. Codes below 32768 are the
    /// delay; above, a floating-point form: (mantissa | 0x1000) shifted left by exponent + 3.
    /// </summary>
    public int MaxResponseDelayMilliseconds => DecodeMaxResponseCode(MaxResponseCode);

    public static int DecodeMaxResponseCode(ushort code)
    {
        if (code < 0x8000) return code;
        int mant = code & 0x0FFF, exp = (code >> 12) & 7;
        return (mant | 0x1000) << (exp + 3);
    }
}

/// <summary>
/// Writes an MLDv2 report (RFC 3810 §5.2): records without sources or auxiliary data (what a
/// host in any-source mode reports), and the hop-by-hop header with a Router Alert that every
/// MLD message carries (RFC 3810 §5, RFC 2711 value 0: "Multicast Listener Discovery").
/// </summary>
internal static class Mldv2ReportWriter
{
    /// <summary>Hop-by-hop header: next header, length 0 (8 bytes), Router Alert (type 5, length 2, value 0), PadN of 0.</summary>
    public const int HopByHopLength = 8;
    private const byte RouterAlertOption = 5, PadNOption = 1;

    public static int Length(int records) => MldField.ReportRecords + records * MldField.RecordLength;

    public static void EmitRouterAlertHopByHop(Span<byte> header, byte nextHeader)
    {
        header[0] = nextHeader;
        header[1] = 0;
        header[2] = RouterAlertOption;
        header[3] = 2;
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], 0); // MLD
        header[6] = PadNOption;
        header[7] = 0;
    }

    /// <summary>Writes the report with one record of <paramref name="recordType"/> per group, and its checksum.</summary>
    public static int Emit(Span<byte> message, byte recordType, ReadOnlySpan<Ipv6Address> groups, Ipv6Address source, Ipv6Address destination)
    {
        int len = Length(groups.Length);
        var m = message[..len];
        m[..MldField.ReportRecords].Clear();
        BinaryPrimitives.WriteUInt16BigEndian(m[MldField.ReportRecordCount..], (ushort)groups.Length);
        for (int i = 0; i < groups.Length; i++)
        {
            var r = m.Slice(MldField.ReportRecords + i * MldField.RecordLength, MldField.RecordLength);
            r[0] = recordType;
            r[1] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(r[2..], 0);
            groups[i].Write(r[4..]);
        }
        new Icmpv6Writer(m) { Type = (byte)Icmpv6Type.Mldv2Report, Code = 0 }.FillChecksum(source, destination);
        return len;
    }
}
