namespace Netloom.Emulation;

/// <summary>
/// One frame travelling through the emulated network: a pooled buffer and its length. A frame has
/// one owner at a time (a node's transmit slot, a link in flight, a node's inbox); the last owner
/// returns it to the <see cref="FramePool"/>. Forwarding passes the frame on, it never copies.
/// </summary>
internal sealed class SimFrame
{
    internal SimFrame(int capacity) => Data = new byte[capacity];

    public byte[] Data { get; }
    public int Length { get; internal set; }
    public Span<byte> Span => Data.AsSpan(0, Length);
}

/// <summary>
/// Frame buffers of one size for a whole network. It grows on demand up to <see cref="Limit"/>
/// frames in existence; past that a transmit finds no buffer and the frame is dropped and counted,
/// so a runaway scenario cannot take all memory.
/// </summary>
internal sealed class FramePool
{
    private readonly Stack<SimFrame> _free = new();

    public FramePool(int frameSize, int limit)
    {
        FrameSize = frameSize;
        Limit = limit;
    }

    public int FrameSize { get; }
    public int Limit { get; }
    /// <summary>Frames created so far (free or in use).</summary>
    public int Created { get; private set; }
    public int InUse => Created - _free.Count;
    /// <summary>Requests refused because <see cref="Limit"/> frames were in use.</summary>
    public long Exhausted { get; private set; }

    public SimFrame? Rent()
    {
        if (_free.TryPop(out var f)) return f;
        if (Created >= Limit) { Exhausted++; return null; }
        Created++;
        return new SimFrame(FrameSize);
    }

    public SimFrame? Copy(SimFrame source)
    {
        var f = Rent();
        if (f is null) return null;
        source.Span.CopyTo(f.Data);
        f.Length = source.Length;
        return f;
    }

    public void Return(SimFrame frame)
    {
        frame.Length = 0;
        _free.Push(frame);
    }
}
