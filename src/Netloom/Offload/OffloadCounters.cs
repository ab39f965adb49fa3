using System.Runtime.InteropServices;

namespace Netloom.Offload;

/// <summary>
/// What an io_uring server has done so far, summed over its loops: a copy taken when
/// <see cref="UringServer.Counters"/> is read. The loops keep counting; read it again for newer figures.
/// </summary>
public readonly record struct OffloadCounters
{
    /// <summary>Connections the kernel handed over (including any refused at the connection limit).</summary>
    public long Accepted { get; init; }
    /// <summary>Receive completions handed to the handler.</summary>
    public long Requests { get; init; }
    /// <summary>Loop turns: each waits for completions once (an io_uring_enter, unless busy polling found them ready).</summary>
    public long Enters { get; init; }
    /// <summary>Responses sent with IORING_OP_SEND_ZC.</summary>
    public long ZeroCopySends { get; init; }
    /// <summary>Bundle sends issued.</summary>
    public long BundleSends { get; init; }
    /// <summary>Output batches the bundle sends carried.</summary>
    public long BundleBatches { get; init; }
    /// <summary>Connections closed because a bundle's byte count ended inside a batch.</summary>
    public long BundleFaults { get; init; }
}

/// <summary>
/// One loop's counters: plain fields its own thread increments (no interlocked operations);
/// <see cref="UringServer.Counters"/> sums them with volatile reads. The fields sit 64 bytes away
/// from either end of the object, so two loops' counters never share a cache line.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal sealed class LoopCounters
{
    [FieldOffset(64)] public long Accepted;
    [FieldOffset(72)] public long Requests;
    [FieldOffset(80)] public long Enters;
    [FieldOffset(88)] public long ZeroCopySends;
    [FieldOffset(96)] public long BundleSends;
    [FieldOffset(104)] public long BundleBatches;
    [FieldOffset(112)] public long BundleFaults;

    public static OffloadCounters Sum(IReadOnlyList<LoopCounters> loops)
    {
        long accepted = 0, requests = 0, enters = 0, zc = 0, sends = 0, batches = 0, faults = 0;
        foreach (var c in loops)
        {
            accepted += Volatile.Read(ref c.Accepted);
            requests += Volatile.Read(ref c.Requests);
            enters += Volatile.Read(ref c.Enters);
            zc += Volatile.Read(ref c.ZeroCopySends);
            sends += Volatile.Read(ref c.BundleSends);
            batches += Volatile.Read(ref c.BundleBatches);
            faults += Volatile.Read(ref c.BundleFaults);
        }
        return new OffloadCounters
        {
            Accepted = accepted, Requests = requests, Enters = enters, ZeroCopySends = zc,
            BundleSends = sends, BundleBatches = batches, BundleFaults = faults,
        };
    }
}
