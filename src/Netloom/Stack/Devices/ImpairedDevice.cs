using Netloom.Wire;
using Netloom.Netem;
using Netloom.Time;

namespace Netloom.Stack.Devices;

/// <summary>
/// A seeded fault-injecting decorator (smoltcp's FaultInjector, netem's impairments) applied to
/// both directions of a device. Each direction runs a <see cref="NetemEngine"/>, the same engine as
/// an emulated link's direction, over an <see cref="Impairments"/>, so a device and a link given the
/// same impairments decide alike. Delayed frames wait in a bounded delay line of pre-allocated
/// buffers, released in due-time order through an <see cref="EventQueue{T}"/>; a full line drops
/// and counts.
/// </summary>
internal sealed class ImpairedDevice : IFrameDevice
{
    private sealed class DelayLine
    {
        public readonly byte[] Storage;
        public readonly int[] Length;
        public readonly int[] Free;
        public int FreeCount;
        public readonly EventQueue<int> Due = new();
        public readonly int FrameSize;
        public readonly NetemEngine Netem;
        public readonly Impairments Impairments;

        public DelayLine(int frames, int frameSize, Impairments imp, Random random)
        {
            Storage = new byte[frames * frameSize];
            Length = new int[frames];
            Free = new int[frames];
            // Slot 0 is taken first, then 1, ...: the order the old Stack<int> of slots gave.
            for (int i = 0; i < frames; i++) Free[i] = frames - 1 - i;
            FreeCount = frames;
            FrameSize = frameSize;
            Impairments = imp;
            Netem = new NetemEngine(random);
        }

        public Span<byte> Buffer(int i) => Storage.AsSpan(i * FrameSize, FrameSize);
    }

    private readonly IFrameDevice _inner;
    private readonly Func<Instant> _clock;
    private readonly DelayLine _txLine, _rxLine;
    private readonly byte[] _stage;
    private readonly List<int> _handedOut = [];

    /// <param name="seed">
    /// Seeds one generator that both directions draw from, in the order frames come, as before the
    /// engine was shared.
    /// </param>
    public ImpairedDevice(IFrameDevice inner, Impairments transmit, Impairments receive, Func<Instant> clock, int seed, int lineFrames = 4096)
    {
        if (transmit.Validate() is { } te) throw new ArgumentException($"transmit impairments: {te}");
        if (receive.Validate() is { } re) throw new ArgumentException($"receive impairments: {re}");
        _inner = inner;
        _clock = clock;
        var random = new Random(seed);
        _txLine = new DelayLine(lineFrames, inner.MaxFrameSize, transmit, random);
        _rxLine = new DelayLine(lineFrames, inner.MaxFrameSize, receive, random);
        _stage = new byte[inner.MaxFrameSize];
    }

    public int MaxFrameSize => _inner.MaxFrameSize;
    public long Lost, Duplicated, Reordered, LineFull;
    private bool _partial; // the frame being held came marked partial from the inner device
    /// <summary>Frames with a bit flipped, and frames dropped for the MTU or a full rate-limiter queue.</summary>
    public long Corrupted, Dropped;

    /// <summary>Runs one frame through a direction's engine into its delay line.</summary>
    private void Impair(DelayLine line, ReadOnlySpan<byte> frame, long now)
    {
        var imp = line.Impairments;
        _partial = line == _rxLine && _inner is IChecksumOffloadDevice { ReceivedPartial: true };
        var admission = line.Netem.Admit(imp, frame.Length);
        if (admission == Admission.Lost) { Lost++; return; }
        if (admission == Admission.TooLarge) { Dropped++; return; }
        if (admission == Admission.Twice) Duplicated++;
        Hold(line, frame, now);
        if (admission == Admission.Twice) Hold(line, frame, now);
    }

    /// <summary>Copies one copy of the frame into a free slot, where the engine may corrupt it, and queues it for its due time.</summary>
    private void Hold(DelayLine line, ReadOnlySpan<byte> frame, long now)
    {
        if (line.FreeCount == 0) { LineFull++; return; }
        int slot = line.Free[--line.FreeCount];
        var buffer = line.Buffer(slot)[..frame.Length];
        frame.CopyTo(buffer);
        // The impaired link is a medium that checks: a frame whose checksum the far end left
        // out gets it filled in here, before a corruption, so the stack's verifier sees the flip.
        if (_partial) PartialChecksum.Complete(buffer);
        line.Length[slot] = frame.Length;
        var launched = line.Netem.Launch(line.Impairments, buffer, now);
        if (launched.Corrupted) Corrupted++;
        if (launched.Departure == Departure.QueueFull)
        {
            Dropped++;
            line.Free[line.FreeCount++] = slot;
            return;
        }
        if (launched.Reordered) Reordered++;
        // In order or overtaking, one queue holds both: it releases by (due, arrival order).
        line.Due.Push(launched.At, slot);
    }

    public bool TryReceive(out ReadOnlySpan<byte> frame)
    {
        long now = _clock().Nanoseconds;
        // Everything the medium has goes through the impairments into the receive delay line.
        while (_inner.TryReceive(out var raw)) Impair(_rxLine, raw, now);
        _inner.ReleaseReceived();
        if (_rxLine.Due.TryPop(now, out int slot))
        {
            _handedOut.Add(slot);
            frame = _rxLine.Buffer(slot)[.._rxLine.Length[slot]];
            return true;
        }
        frame = default;
        return false;
    }

    public void ReleaseReceived()
    {
        foreach (int s in _handedOut) _rxLine.Free[_rxLine.FreeCount++] = s;
        _handedOut.Clear();
    }

    public Span<byte> TryAllocateTransmit(int length) => length <= _stage.Length ? _stage.AsSpan(0, length) : Span<byte>.Empty;

    public void CommitTransmit(int length)
    {
        Impair(_txLine, _stage.AsSpan(0, length), _clock().Nanoseconds);
        Release();
    }

    /// <summary>Passes the transmit frames that are due on to the medium.</summary>
    private void Release()
    {
        long now = _clock().Nanoseconds;
        while (_txLine.Due.PeekTime <= now && _txLine.Due.TryPeek(out int slot))
        {
            var buf = _inner.TryAllocateTransmit(_txLine.Length[slot]);
            if (buf.IsEmpty) break; // the medium is full: try again at the next flush
            _txLine.Due.Pop(out _);
            _txLine.Buffer(slot)[.._txLine.Length[slot]].CopyTo(buf);
            _inner.CommitTransmit(_txLine.Length[slot]);
            _txLine.Free[_txLine.FreeCount++] = slot;
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
        long best = Math.Min(_txLine.Due.PeekTime, _rxLine.Due.PeekTime);
        return best == long.MaxValue ? null : new Instant(best);
    }
}
