namespace Netloom.Offload;

/// <summary>
/// A connection's output batches for send bundles: queued in order in the connection's own
/// provided buffer ring, where a batch's buffer id is its index in <see cref="_batches"/>.
/// </summary>
internal sealed unsafe class BundleQueue
{
    /// <summary>Batches a connection may queue (the buffer ring's size), and the bytes beyond which output waits in the handler's buffer.</summary>
    public const int Depth = 8, MaxBytes = 4 << 20;

    private readonly OutputBuffer?[] _batches = new OutputBuffer?[Depth];
    private BufferRing? _ring;

    public BundleQueue(BufferRing ring)
    {
        _ring = ring;
        GroupId = ring.GroupId;
    }

    public int Head { get; private set; }
    public int Count { get; private set; }
    public long Bytes { get; private set; }
    public ushort GroupId { get; }
    public bool HasRoom => Count < Depth && Bytes < MaxBytes;
    public int OldestLength => _batches[Head]!.Length;

    /// <summary>Queues a batch at the tail and publishes it to the kernel.</summary>
    public void Enqueue(OutputBuffer batch)
    {
        int id = (Head + Count) & (Depth - 1);
        _batches[id] = batch;
        Count++;
        Bytes += batch.Length;
        _ring!.Add(batch.Pointer, batch.Length, (ushort)id);
        _ring.Publish();
    }

    /// <summary>The oldest batch has been sent: it goes back to the table.</summary>
    public void DropOldest(ConnectionTable table)
    {
        var batch = _batches[Head]!;
        _batches[Head] = null;
        Head = (Head + 1) & (Depth - 1);
        Count--;
        Bytes -= batch.Length;
        table.ReturnBatch(batch);
    }

    /// <summary>The connection closed: its queued batches go back, and its ring forgets them, so the next connection on the slot starts empty.</summary>
    public void Clear(ConnectionTable table)
    {
        if (Count == 0) return;
        while (Count > 0) DropOldest(table);
        _ring?.Reset();
    }

    public void DisposeRing()
    {
        _ring?.Dispose();
        _ring = null;
    }
}
