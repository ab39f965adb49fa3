using Netloom.Time;

namespace Netloom.Stack.Devices;

/// <summary>
/// A seeded fault-injecting decorator (smoltcp's FaultInjector, netem's impairments) applied to
/// both directions of a device. Delayed frames wait in a bounded delay line of pre-allocated
/// buffers, released in due-time order; a full line drops and counts.
/// </summary>
internal sealed class ImpairedDevice : IFrameDevice
{
    private sealed class DelayLine(int frames, int frameSize)
    {
        public readonly byte[] Storage = new byte[frames * frameSize];
        public readonly int[] Length = new int[frames];
        public readonly Stack<int> Free = new(Enumerable.Range(0, frames).Reverse());
        public readonly PriorityQueue<int, (long Due, long Seq)> Due = new(frames);
        public readonly int FrameSize = frameSize;
        public long Seq;

        public Span<byte> Buffer(int i) => Storage.AsSpan(i * FrameSize, FrameSize);
    }

    private readonly IFrameDevice _inner;
    private readonly Impairment _tx, _rx;
    private readonly Func<Instant> _clock;
    private readonly Random _random;
    private readonly DelayLine _txLine, _rxLine;
    private readonly byte[] _stage;
    private readonly List<int> _handedOut = [];

    public ImpairedDevice(IFrameDevice inner, Impairment transmit, Impairment receive, Func<Instant> clock, int seed, int lineFrames = 4096)
    {
        _inner = inner;
        _tx = transmit;
        _rx = receive;
        _clock = clock;
        _random = new Random(seed);
        _txLine = new DelayLine(lineFrames, inner.MaxFrameSize);
        _rxLine = new DelayLine(lineFrames, inner.MaxFrameSize);
        _stage = new byte[inner.MaxFrameSize];
    }

    public int MaxFrameSize => _inner.MaxFrameSize;
    public long Lost, Duplicated, Reordered, LineFull;

    /// <summary>How many copies of a frame go on (0: lost) and when each is due.</summary>
    private int Decide(Impairment imp, Instant now, Span<long> due)
    {
        if (imp.Loss > 0 && _random.NextDouble() < imp.Loss) { Lost++; return 0; }
        int copies = imp.Duplicate > 0 && _random.NextDouble() < imp.Duplicate ? 2 : 1;
        if (copies == 2) Duplicated++;
        for (int c = 0; c < copies; c++)
        {
            long delay = imp.Delay.Nanoseconds;
            if (imp.Jitter.Nanoseconds > 0) delay += (long)((_random.NextDouble() * 2 - 1) * imp.Jitter.Nanoseconds);
            if (imp.Reorder > 0 && _random.NextDouble() < imp.Reorder) { delay = 0; Reordered++; }
            due[c] = now.Nanoseconds + Math.Max(0, delay);
        }
        return copies;
    }

    private bool Hold(DelayLine line, ReadOnlySpan<byte> frame, long due)
    {
        if (!line.Free.TryPop(out int slot)) { LineFull++; return false; }
        frame.CopyTo(line.Buffer(slot));
        line.Length[slot] = frame.Length;
        line.Due.Enqueue(slot, (due, line.Seq++));
        return true;
    }

    public bool TryReceive(out ReadOnlySpan<byte> frame)
    {
        var now = _clock();
        Span<long> due = stackalloc long[2];
        // Everything the medium has goes through the impairments into the receive delay line.
        while (_inner.TryReceive(out var raw))
        {
            int copies = Decide(_rx, now, due);
            for (int c = 0; c < copies; c++) Hold(_rxLine, raw, due[c]);
        }
        _inner.ReleaseReceived();
        if (_rxLine.Due.TryPeek(out int slot, out var key) && key.Due <= now.Nanoseconds)
        {
            _rxLine.Due.Dequeue();
            _handedOut.Add(slot);
            frame = _rxLine.Buffer(slot)[.._rxLine.Length[slot]];
            return true;
        }
        frame = default;
        return false;
    }

    public void ReleaseReceived()
    {
        foreach (int s in _handedOut) _rxLine.Free.Push(s);
        _handedOut.Clear();
    }

    public Span<byte> TryAllocateTransmit(int length) => length <= _stage.Length ? _stage.AsSpan(0, length) : Span<byte>.Empty;

    public void CommitTransmit(int length)
    {
        Span<long> due = stackalloc long[2];
        int copies = Decide(_tx, _clock(), due);
        for (int c = 0; c < copies; c++) Hold(_txLine, _stage.AsSpan(0, length), due[c]);
        Release();
    }

    /// <summary>Passes the transmit frames that are due on to the medium.</summary>
    private void Release()
    {
        long now = _clock().Nanoseconds;
        while (_txLine.Due.TryPeek(out int slot, out var key) && key.Due <= now)
        {
            var buf = _inner.TryAllocateTransmit(_txLine.Length[slot]);
            if (buf.IsEmpty) break; // the medium is full: try again at the next flush
            _txLine.Due.Dequeue();
            _txLine.Buffer(slot)[.._txLine.Length[slot]].CopyTo(buf);
            _inner.CommitTransmit(_txLine.Length[slot]);
            _txLine.Free.Push(slot);
        }
    }

    public void Flush()
    {
        Release();
        _inner.Flush();
    }

    /// <summary>When the next held frame falls due (for the owner's sleep), or null.</summary>
    public Instant? NextDue()
    {
        long best = long.MaxValue;
        if (_txLine.Due.TryPeek(out _, out var t)) best = t.Due;
        if (_rxLine.Due.TryPeek(out _, out var r)) best = Math.Min(best, r.Due);
        return best == long.MaxValue ? null : new Instant(best);
    }
}
