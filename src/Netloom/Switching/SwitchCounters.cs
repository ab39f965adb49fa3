namespace Netloom.Switching;

/// <summary>Why the switch dropped a frame.</summary>
public enum DropReason
{
    /// <summary>The output port's TX ring was full: a slow port drops instead of stalling the switch.</summary>
    TxRingFull,
    /// <summary>Shorter than an Ethernet header.</summary>
    TooShort,
    /// <summary>The destination lives on the port the frame came from.</summary>
    SameSegment,
    /// <summary>Longer than the output port's buffers (ports with different buffer sizes).</summary>
    TooLong,
    /// <summary>A slot with an impossible length or buffer index (a port's shared memory can hold anything).</summary>
    Invalid,
}

/// <summary>
/// One switch port's counters; written in place by the forwarding thread only. The public API hands
/// out <see cref="SwitchPortCountersSnapshot"/> copies (<see cref="Switch.Counters"/>).
/// </summary>
internal sealed class SwitchPortCounters
{
    public long RxPackets, RxBytes, TxPackets, TxBytes, Flooded;
    /// <summary>Frames sent out of this port by swapping buffer indexes (zero copy) rather than copying.</summary>
    public long ZeroCopy;
    /// <summary>Frames (and bytes) in from this port that the XDP fast path sent on in the kernel, never seen by the switch's thread; read from the program's counters.</summary>
    public long FastPathPackets, FastPathBytes;
    private readonly long[] _drops = new long[DropReasons];

    internal static readonly int DropReasons = Enum.GetValues<DropReason>().Length;

    public long Drops(DropReason reason) => _drops[(int)reason];
    internal void Drop(DropReason reason, long count = 1) => _drops[(int)reason] += count;

    public SwitchPortCountersSnapshot Snapshot() => new()
    {
        RxPackets = RxPackets,
        RxBytes = RxBytes,
        TxPackets = TxPackets,
        TxBytes = TxBytes,
        Flooded = Flooded,
        ZeroCopy = ZeroCopy,
        FastPathPackets = FastPathPackets,
        FastPathBytes = FastPathBytes,
        DropCounts = (long[])_drops.Clone(),
    };
}

/// <summary>One switch port's counters at one moment.</summary>
public readonly record struct SwitchPortCountersSnapshot
{
    /// <summary>Frames taken in from this port.</summary>
    public long RxPackets { get; init; }
    public long RxBytes { get; init; }
    /// <summary>Frames forwarded out of this port (unicast and flooded).</summary>
    public long TxPackets { get; init; }
    public long TxBytes { get; init; }
    /// <summary>Frames sent out of this port because their destination was unknown, broadcast or multicast.</summary>
    public long Flooded { get; init; }
    /// <summary>Frames sent out of this port by swapping buffer indexes (zero copy) rather than copying.</summary>
    public long ZeroCopy { get; init; }
    /// <summary>
    /// Frames in from this port that the XDP fast path forwarded inside the kernel (an xdp port
    /// whose switch pushed its learned stations to the port's XDP program). They are not in
    /// <see cref="RxPackets"/> or any port's <see cref="TxPackets"/>: the switch's thread never saw them.
    /// </summary>
    public long FastPathPackets { get; init; }
    public long FastPathBytes { get; init; }
    internal long[]? DropCounts { get; init; }

    public long Drops(DropReason reason) => DropCounts is { } d ? d[(int)reason] : 0;

    public long TotalDrops
    {
        get
        {
            long total = 0;
            if (DropCounts is { } d) foreach (long n in d) total += n;
            return total;
        }
    }
}
