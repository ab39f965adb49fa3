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

/// <summary>One switch port's counters; written by the forwarding thread only.</summary>
public sealed class SwitchPortCounters
{
    public long RxPackets, RxBytes, TxPackets, TxBytes, Flooded;
    /// <summary>Frames sent out of this port by swapping buffer indexes (zero copy) rather than copying.</summary>
    public long ZeroCopy;
    private readonly long[] _drops = new long[Enum.GetValues<DropReason>().Length];

    public long Drops(DropReason reason) => _drops[(int)reason];
    public long TotalDrops => _drops.Sum();
    internal void Drop(DropReason reason, long count = 1) => _drops[(int)reason] += count;
}
