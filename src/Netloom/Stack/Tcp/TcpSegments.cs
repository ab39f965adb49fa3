using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// Where TCP hands its segments: the IP layer under it (IPv4 over Ethernet today). TCP knows no
/// IP version and no frame layout; the layer below adds its headers and the pseudo-header
/// checksum. Implementations must not keep references past the call.
/// </summary>
internal interface ITcpOutput
{
    /// <summary>
    /// Sends one segment. False when the device had no room and nothing left: the caller keeps
    /// the segment's effects undone and tries again after <see cref="TcpTable.RetryBlocked"/>.
    /// True when it left, or was queued or dropped for a reason a retry cannot fix (no route).
    /// </summary>
    bool TrySend(in TcpSegmentOut segment);

    /// <summary>The largest payload a segment to <paramref name="remote"/> carries without TCP options: the MTU less the IP and TCP headers.</summary>
    int MaxSegmentSize(IpAddr remote);

    /// <summary>Hands what was sent to the device.</summary>
    void Flush();

    /// <summary>The device's loan buffers (sends with no copy at all), when it has them.</summary>
    ILoanDevice? Loans => null;
}

/// <summary>
/// A received segment as the IP layer hands it to TCP: the addresses, the parsed header (the one
/// header model, <see cref="TcpRepr"/>) and the payload. A view: valid during processing only.
/// </summary>
internal ref struct TcpSegmentIn
{
    public IpAddr Source, Destination;
    public TcpRepr Header;
    public ReadOnlySpan<byte> Payload;

    public TcpSegmentIn(IpAddr source, IpAddr destination, in TcpRepr header, ReadOnlySpan<byte> payload)
    {
        Source = source;
        Destination = destination;
        Header = header;
        Payload = payload;
    }

    public uint Seq { readonly get => Header.SequenceNumber; set => Header.SequenceNumber = value; }
    public readonly uint Ack => Header.AcknowledgmentNumber;
    public readonly ushort Window => Header.Window;
    public readonly ushort SourcePort => Header.SourcePort;
    public readonly ushort DestinationPort => Header.DestinationPort;
    public readonly bool Syn => (Header.Flags & TcpFlags.Syn) != 0;
    public readonly bool HasAck => (Header.Flags & TcpFlags.Ack) != 0;
    public readonly bool Fin => (Header.Flags & TcpFlags.Fin) != 0;
    public readonly bool Rst => (Header.Flags & TcpFlags.Rst) != 0;
    /// <summary>SEG.LEN: payload plus one for each of SYN and FIN.</summary>
    public readonly uint Length => (uint)Payload.Length + (Syn ? 1u : 0) + (Fin ? 1u : 0);

    public readonly bool HasTimestamp => Header.Timestamp.HasValue;
    public readonly uint TsVal => Header.Timestamp.GetValueOrDefault().Value;
    public readonly uint TsEcr => Header.Timestamp.GetValueOrDefault().Echo;
    /// <summary>The MSS the peer announced, 0 when absent.</summary>
    public readonly ushort PeerMss => Header.MaxSegmentSize ?? 0;
    /// <summary>The window shift the peer offered, at most 14 (RFC 7323 §2.3); -1 when absent.</summary>
    public readonly sbyte PeerWindowScale => Header.WindowScale is byte ws ? (sbyte)Math.Min(ws, (byte)14) : (sbyte)-1;
}

/// <summary>
/// A segment TCP hands out: the addresses, the header (its <see cref="TcpRepr.PayloadLength"/> is
/// the payload's length) and where the payload comes from (bytes of a send buffer, copied once
/// by the layer below straight into its frame).
/// </summary>
internal readonly struct TcpSegmentOut
{
    public readonly IpAddr Source, Destination;
    public readonly TcpRepr Header;
    private readonly SendQueue? _payload;
    private readonly int _payloadOffset;

    public TcpSegmentOut(IpAddr source, IpAddr destination, in TcpRepr header, SendQueue? payload = null, int payloadOffset = 0)
    {
        if (header.PayloadLength > 0 && payload is null) throw new ArgumentException("a segment with a payload needs its source", nameof(payload));
        Source = source;
        Destination = destination;
        Header = header;
        _payload = payload;
        _payloadOffset = payloadOffset;
    }

    /// <summary>The send queue the payload comes from, and its offset there.</summary>
    public SendQueue? Payload => _payload;
    public int PayloadOffset => _payloadOffset;

    /// <summary>Copies the payload into <paramref name="destination"/> (at least PayloadLength bytes).</summary>
    public void CopyPayload(Span<byte> destination)
    {
        if (Header.PayloadLength > 0) _payload!.Peek(_payloadOffset, destination[..Header.PayloadLength]);
    }
}
