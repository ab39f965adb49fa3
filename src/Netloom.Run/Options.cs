using Netloom.Run.Native;
using Netloom.Stack;

namespace Netloom.Run;

/// <summary>getsockopt's output rules: the value is cut to the caller's length, which is then set.</summary>
internal static unsafe class Options
{
    public static long WriteInt(byte* value, uint* length, int v)
    {
        if (value is null || length is null) return -Errno.EFAULT;
        int n = (int)Math.Min(*length, 4u);
        new ReadOnlySpan<byte>(&v, 4)[..n].CopyTo(new Span<byte>(value, n));
        *length = (uint)n;
        return 0;
    }

    public static long WriteBytes(byte* value, uint* length, ReadOnlySpan<byte> bytes)
    {
        if (value is null || length is null) return -Errno.EFAULT;
        int n = (int)Math.Min(*length, (uint)bytes.Length);
        bytes[..n].CopyTo(new Span<byte>(value, n));
        *length = (uint)n;
        return 0;
    }

    /// <summary>An int option's value: the kernel takes at least 4 bytes (a shorter one is EINVAL).</summary>
    public static bool TryReadInt(byte* value, uint length, out int v)
    {
        v = 0;
        if (value is null || length < 4) return false;
        v = *(int*)value;
        return true;
    }
}

/// <summary>
/// struct tcp_info's first 104 bytes (the fields every kernel since 2.6 has), filled from the
/// connection: state, options, window scales, RTO, MSS, RTT, cwnd, retransmissions. A test pins
/// the offsets against linux/tcp.h.
/// </summary>
internal static unsafe class TcpInfo
{
    public const int Length = 104;
    public const int State = 0, Options = 5, WindowScales = 6, Rto = 8, SndMss = 16, RcvMss = 20, Unacked = 24,
        Rtt = 68, RttVar = 72, SndSsthresh = 76, SndCwnd = 80, AdvMss = 84, TotalRetrans = 100;
    private const byte TCPI_OPT_TIMESTAMPS = 1, TCPI_OPT_SACK = 2, TCPI_OPT_WSCALE = 4;

    public static long Write(TcpSocket? c, bool listening, byte* value, uint* length)
    {
        Span<byte> info = stackalloc byte[Length];
        info.Clear();
        info[State] = listening ? (byte)10 : c is null ? (byte)7 : LinuxState(c.State);
        if (c is not null)
        {
            byte opts = 0;
            if (c.TimestampsEnabled) opts |= TCPI_OPT_TIMESTAMPS;
            if (c.SackEnabled) opts |= TCPI_OPT_SACK;
            if (c.SendWindowScale > 0 || c.ReceiveWindowScale > 0) opts |= TCPI_OPT_WSCALE;
            info[Options] = opts;
            info[WindowScales] = (byte)((c.SendWindowScale & 0xF) | (c.ReceiveWindowScale & 0xF) << 4);
            Put(info, SndMss, c.MaxSegmentSize);
            Put(info, RcvMss, c.MaxSegmentSize);
            Put(info, AdvMss, c.MaxSegmentSize);
            long srttUs = c.SmoothedRtt.Nanoseconds / 1000;
            Put(info, Rtt, (int)Math.Min(srttUs, int.MaxValue));
            Put(info, RttVar, (int)Math.Min(srttUs / 2, int.MaxValue));
            Put(info, Rto, 200_000);
            int mss = Math.Max(1, c.MaxSegmentSize);
            Put(info, SndCwnd, Math.Max(1, c.CongestionWindow / mss));
            Put(info, SndSsthresh, c.SlowStartThreshold >= int.MaxValue / 2 ? int.MaxValue : Math.Max(2, c.SlowStartThreshold / mss));
            Put(info, Unacked, (c.SendQueued + mss - 1) / mss);
            Put(info, TotalRetrans, (int)Math.Min(c.Retransmits, int.MaxValue));
        }
        return Run.Options.WriteBytes(value, length, info);
    }

    private static void Put(Span<byte> info, int offset, int v) => System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(info[offset..], v);

    /// <summary>Linux's TCP_* state numbers (include/net/tcp_states.h).</summary>
    public static byte LinuxState(TcpState s) => s switch
    {
        TcpState.Established => 1, TcpState.SynSent => 2, TcpState.SynReceived => 3, TcpState.FinWait1 => 4,
        TcpState.FinWait2 => 5, TcpState.TimeWait => 6, TcpState.Closed => 7, TcpState.CloseWait => 8,
        TcpState.LastAck => 9, TcpState.Listen => 10, TcpState.Closing => 11, _ => 7,
    };
}
