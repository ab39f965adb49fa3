using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>Connection states (RFC 9293 §3.3.2).</summary>
internal enum TcpState : byte { Closed, Listen, SynSent, SynReceived, Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait }

/// <summary>Why a connection ended other than by an orderly close.</summary>
public enum TcpError : byte
{
    None,
    Refused,     // RST (or ICMP unreachable) in answer to our SYN
    Reset,       // the peer reset an established connection
    TimedOut,    // retransmissions, keep-alive probes or the user timeout ran out
    Aborted,     // this side aborted (RST sent)
}

/// <summary>What changed on a connection or listener; observers hear it on the stack's thread.</summary>
[Flags]
internal enum SocketEvents : byte
{
    None = 0,
    Connected = 1,
    Readable = 2,   // data arrived, or the peer finished sending
    Writable = 4,   // send buffer space was freed
    Closed = 8,     // the connection reached CLOSED (see Error) or TIME_WAIT
    Acceptable = 16,
}

/// <summary>Told about connection events, on the stack's thread with the stack lock held: keep it short.</summary>
internal interface ISocketObserver
{
    void OnSocketEvents(object socket, SocketEvents events);
}

/// <summary>A received segment, its options parsed once (a view: valid during processing only).</summary>
internal ref struct TcpInput
{
    public ushort SourcePort, DestinationPort;
    public uint Seq, Ack;
    public TcpFlags Flags;
    public ushort Window;
    public ReadOnlySpan<byte> Payload;
    public bool HasTimestamp;
    public uint TsVal, TsEcr;
    public ushort Mss;          // 0 when absent
    public sbyte WindowScale;   // -1 when absent
    public bool SackPermitted;
    public SackBlocks Sack;

    public readonly bool Syn => (Flags & TcpFlags.Syn) != 0;
    public readonly bool Ack_ => (Flags & TcpFlags.Ack) != 0;
    public readonly bool Fin => (Flags & TcpFlags.Fin) != 0;
    public readonly bool Rst => (Flags & TcpFlags.Rst) != 0;
    /// <summary>SEG.LEN: payload plus one for each of SYN and FIN.</summary>
    public readonly uint Length => (uint)Payload.Length + (Syn ? 1u : 0) + (Fin ? 1u : 0);

    public static bool TryRead(in TcpSegment s, out TcpInput input)
    {
        input = new TcpInput
        {
            SourcePort = s.SourcePort, DestinationPort = s.DestinationPort, Seq = s.SequenceNumber, Ack = s.AcknowledgmentNumber, Flags = s.Flags, Window = s.Window,
            Payload = s.Payload, WindowScale = -1,
        };
        var reader = s.ReadOptions();
        WireError error;
        while (reader.TryNext(out var o, out error))
        {
            switch ((TcpOptionKind)o[0])
            {
                case TcpOptionKind.MaxSegmentSize: input.Mss = (ushort)(o[2] << 8 | o[3]); break;
                case TcpOptionKind.WindowScale: input.WindowScale = (sbyte)Math.Min(o[2], (byte)14); break; // RFC 7323 §2.3: at most 14
                case TcpOptionKind.SackPermitted: input.SackPermitted = true; break;
                case TcpOptionKind.Timestamp:
                    input.HasTimestamp = true;
                    input.TsVal = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(o[2..]);
                    input.TsEcr = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(o[6..]);
                    break;
                case TcpOptionKind.Sack:
                    for (int i = 2; i + 8 <= o.Length; i += 8)
                        input.Sack.TryAdd(new SackBlock(System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(o[i..]),
                            System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(o[(i + 4)..])));
                    break;
            }
        }
        return error.IsNone;
    }
}

/// <summary>The options one outgoing segment carries.</summary>
internal struct TcpOutOptions
{
    public ushort Mss;          // 0: none
    public sbyte WindowScale;   // -1: none
    public bool SackPermitted;
    public bool HasTimestamp;
    public uint TsVal, TsEcr;
    public SackBlocks Sack;

    public static TcpOutOptions None => new() { WindowScale = -1 };

    /// <summary>Bytes the options take, padded to four.</summary>
    public readonly int Length
    {
        get
        {
            int n = 0;
            if (Mss != 0) n += 4;
            if (SackPermitted || HasTimestamp) n += SackPermitted && HasTimestamp ? 12 : (HasTimestamp ? 12 : 4);
            if (WindowScale >= 0) n += 4;
            if (Sack.Count > 0) n += 4 + 8 * Sack.Count;
            return n;
        }
    }

    /// <summary>Writes the options in Linux's order (MSS, SACK-permitted, timestamps, window scale), NOP-padded.</summary>
    public readonly void Write(Span<byte> d)
    {
        int n = 0;
        if (Mss != 0) TcpOptionWriter.Mss(d, ref n, true, Mss);
        if (SackPermitted && HasTimestamp)
        {
            TcpOptionWriter.SackPermitted(d, ref n, true);
            TcpOptionWriter.Timestamp(d, ref n, true, new TcpTimestamp(TsVal, TsEcr));
        }
        else if (HasTimestamp)
        {
            d[n++] = 1; d[n++] = 1;
            TcpOptionWriter.Timestamp(d, ref n, true, new TcpTimestamp(TsVal, TsEcr));
        }
        else if (SackPermitted)
        {
            d[n++] = 1; d[n++] = 1;
            TcpOptionWriter.SackPermitted(d, ref n, true);
        }
        if (WindowScale >= 0)
        {
            d[n++] = 1;
            TcpOptionWriter.WindowScale(d, ref n, true, (byte)WindowScale);
        }
        if (Sack.Count > 0)
        {
            d[n++] = 1; d[n++] = 1;
            TcpOptionWriter.Sack(d, ref n, true, Sack);
        }
    }
}
