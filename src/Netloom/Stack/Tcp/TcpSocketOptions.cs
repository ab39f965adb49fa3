using Netloom.Time;

namespace Netloom.Stack;

/// <summary>
/// One TCP connection's settings. Buffer sizes are rounded up to powers of two and fixed for the
/// connection's life: they are its whole memory, and they bound the windows it offers.
/// </summary>
public sealed record TcpSocketOptions
{
    public int SendBufferSize { get; init; } = 256 << 10;
    public int ReceiveBufferSize { get; init; } = 256 << 10;
    /// <summary>The receive window offered at first; autotuning grows it up to the buffer as the reader keeps up.</summary>
    public int InitialReceiveWindow { get; init; } = 64 << 10;
    /// <summary>Send small segments at once instead of waiting for outstanding data to be acknowledged (disables Nagle, RFC 896).</summary>
    public bool NoDelay { get; init; }
    public CongestionAlgorithm Congestion { get; init; } = CongestionAlgorithm.Cubic;
    /// <summary>Initial congestion window in segments (RFC 6928).</summary>
    public int InitialWindowSegments { get; init; } = 10;
    public bool WindowScaling { get; init; } = true;
    public bool Timestamps { get; init; } = true;
    public bool SelectiveAck { get; init; } = true;

    /// <summary>How long an ACK may wait for a second segment or data to ride on (RFC 9293 §3.8.6.3: under 500 ms).</summary>
    public Duration DelayedAck { get; init; } = Duration.FromMilliseconds(40);
    /// <summary>Segments acknowledged at once at the start of a connection, before delaying ACKs (Linux's quick-ack).</summary>
    public int QuickAcks { get; init; } = 16;
    public Duration InitialRto { get; init; } = Duration.FromSeconds(1);
    public Duration MinRto { get; init; } = Duration.FromMilliseconds(200);
    public Duration MaxRto { get; init; } = Duration.FromSeconds(120);
    /// <summary>Timeouts of one segment before the connection is aborted (Linux's tcp_retries2).</summary>
    public int MaxRetransmissions { get; init; } = 15;
    public int SynRetries { get; init; } = 6;
    /// <summary>Abort when sent data stays unacknowledged this long (RFC 9293 §3.8.3's USER TIMEOUT); zero: no limit.</summary>
    public Duration UserTimeout { get; init; } = Duration.Zero;

    /// <summary>
    /// Zero-copy sends shorter than this are copied into the send buffer (and reported as copied):
    /// below about 10 KB, tracking lent memory costs more than the copy it saves (the kernel's
    /// msg_zerocopy.rst gives the same figure).
    /// </summary>
    public int ZeroCopyThreshold { get; init; } = 10 << 10;

    public bool KeepAlive { get; init; }
    public Duration KeepAliveIdle { get; init; } = Duration.FromSeconds(7200);
    public Duration KeepAliveInterval { get; init; } = Duration.FromSeconds(75);
    public int KeepAliveProbes { get; init; } = 9;

    public void Validate()
    {
        if (SendBufferSize is < 1024 or > 1 << 30) throw new ArgumentOutOfRangeException(nameof(SendBufferSize), SendBufferSize, "send buffer must be 1 KiB to 1 GiB");
        if (ReceiveBufferSize is < 1024 or > 1 << 30) throw new ArgumentOutOfRangeException(nameof(ReceiveBufferSize), ReceiveBufferSize, "receive buffer must be 1 KiB to 1 GiB");
        if (InitialWindowSegments is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(InitialWindowSegments), InitialWindowSegments, "initial window must be 1 to 100 segments");
        if (MaxRetransmissions < 1) throw new ArgumentOutOfRangeException(nameof(MaxRetransmissions), MaxRetransmissions, "at least one retransmission");
        if (ZeroCopyThreshold < 0) throw new ArgumentOutOfRangeException(nameof(ZeroCopyThreshold), ZeroCopyThreshold, "the zero-copy threshold cannot be negative");
        if (KeepAliveProbes < 1) throw new ArgumentOutOfRangeException(nameof(KeepAliveProbes), KeepAliveProbes, "at least one keep-alive probe");
        if (MinRto <= Duration.Zero || MaxRto < MinRto) throw new ArgumentException("RTO bounds must satisfy 0 < MinRto <= MaxRto");
    }

    internal static int RoundUp(int size) => (int)Math.Max(64, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)size));

    /// <summary>The receive buffer as allocated (a power of two).</summary>
    internal int ReceiveCapacity => RoundUp(ReceiveBufferSize);

    /// <summary>The window offered at first: the initial window, at least four segments, within the buffer.</summary>
    internal int InitialWindowLimit => Math.Min(ReceiveCapacity, Math.Max(InitialReceiveWindow, 4 * 1460));

    /// <summary>The window scale announced (RFC 7323 §2.3): the least shift that lets the whole buffer be offered.</summary>
    internal byte ReceiveWindowShift
    {
        get
        {
            byte shift = 0;
            while (WindowScaling && shift < 14 && (ReceiveCapacity >> shift) > 65535) shift++;
            return shift;
        }
    }
}
