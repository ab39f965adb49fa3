namespace Netloom.Offload;

/// <summary>
/// One connection's state in a loop: its descriptor (or registered file slot), the generation
/// that tags its completions, which operations are in flight, and its buffers. The slot and its
/// buffers are reused by later connections.
/// </summary>
internal sealed class ConnectionSlot
{
    public ConnectionSlot(int index, NativeAllocator memory)
    {
        Index = index;
        Connection = new Connection(index, memory);
        InFlight = new OutputBuffer(memory);
    }

    public readonly int Index;
    /// <summary>A descriptor, or a registered file slot when the loop uses them; -1 when free.</summary>
    public int Fd = -1;
    public uint Generation;
    public bool RecvArmed, Sending, ZcPending, ShutdownPending, Closing;
    public readonly Connection Connection;
    public readonly InputBuffer Input = new();
    /// <summary>Paired sends: the half of the double buffer the kernel is sending from.</summary>
    public readonly OutputBuffer InFlight;
    /// <summary>Send bundles: the batches queued in the connection's own buffer ring (made on first use).</summary>
    public BundleQueue? Bundle;

    /// <summary>Completions still to come before the descriptor may be closed.</summary>
    public bool OperationsPending => RecvArmed || Sending || ZcPending || ShutdownPending;

    /// <summary>Output not yet sent, wherever it waits.</summary>
    public bool OutputPending => Sending || ZcPending || InFlight.Length > 0 || Bundle is { Count: > 0 } || Connection.Output.Length > 0;
}

/// <summary>
/// A loop's connections: a fixed array of slots, a free list, and the spare output batches of
/// send bundles. It owns every native buffer a connection uses (its output, its in-flight half,
/// its queued batches and buffer ring) and frees them all on <see cref="Dispose"/>; a closed
/// connection keeps small buffers for the next one on its slot and gives large ones back.
/// </summary>
internal sealed class ConnectionTable : IDisposable
{
    /// <summary>Buffers above this go back to the allocator when their connection closes: a slot keeps only what typical traffic needs.</summary>
    public const int KeepCapacity = 256 << 10;
    /// <summary>Spare batches kept for send bundles, and the largest one kept.</summary>
    private const int SpareBatches = 1024, SpareBatchCapacity = 256 << 10;

    private readonly ConnectionSlot[] _slots;
    private readonly Stack<int> _free;
    private readonly Stack<OutputBuffer> _spareBatches = new();
    private bool _disposed;

    public ConnectionTable(int capacity, NativeAllocator memory)
    {
        Memory = memory;
        _slots = new ConnectionSlot[capacity];
        _free = new Stack<int>(capacity);
        for (int i = capacity - 1; i >= 0; i--)
        {
            _slots[i] = new ConnectionSlot(i, memory);
            _free.Push(i);
        }
    }

    public NativeAllocator Memory { get; }
    public int Capacity => _slots.Length;
    public ConnectionSlot this[int index] => _slots[index];

    /// <summary>Takes a free slot for a new connection on <paramref name="fd"/>; false at the connection limit.</summary>
    public bool TryOpen(int fd, out ConnectionSlot slot)
    {
        if (!_free.TryPop(out int i)) { slot = null!; return false; }
        slot = _slots[i];
        slot.Fd = fd;
        slot.Generation++;
        slot.RecvArmed = slot.Sending = slot.ZcPending = slot.ShutdownPending = slot.Closing = false;
        slot.Input.Reset();
        slot.InFlight.Reset();
        var c = slot.Connection;
        c.Output.Reset();
        c.CloseRequested = false;
        c.WakePending = 0;
        c.Generation = slot.Generation;
        return true;
    }

    /// <summary>The connection's descriptor is closed: its slot goes back to the free list with its queued batches dropped and large buffers freed.</summary>
    public void Release(ConnectionSlot slot)
    {
        slot.Fd = -1;
        slot.Bundle?.Clear(this);
        Trim(slot.Connection.Output);
        Trim(slot.InFlight);
        slot.Input.Trim();
        _free.Push(slot.Index);
    }

    private static void Trim(OutputBuffer b)
    {
        b.Reset();
        if (b.Capacity > KeepCapacity) b.Free();
    }

    /// <summary>An empty buffer for the next output batch of send bundles.</summary>
    public OutputBuffer RentBatch() => _spareBatches.Count > 0 ? _spareBatches.Pop() : new OutputBuffer(Memory);

    /// <summary>A batch the kernel has sent: kept for reuse if small, freed otherwise.</summary>
    public void ReturnBatch(OutputBuffer batch)
    {
        batch.Reset();
        if (_spareBatches.Count < SpareBatches && batch.Capacity <= SpareBatchCapacity) _spareBatches.Push(batch);
        else batch.Free();
    }

    /// <summary>Unregisters the connections' buffer rings: call before the io_uring ring they belong to is closed.</summary>
    public void DisposeBufferRings()
    {
        foreach (var slot in _slots) slot.Bundle?.DisposeRing();
    }

    /// <summary>Frees every native buffer the table's connections hold (after the ring is gone, so the kernel reads none of them).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        DisposeBufferRings();
        foreach (var slot in _slots)
        {
            slot.Bundle?.Clear(this);
            slot.Connection.Output.Free();
            slot.InFlight.Free();
        }
        while (_spareBatches.TryPop(out var b)) b.Free();
    }
}
