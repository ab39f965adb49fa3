namespace Netloom.Netem;

/// <summary>What <see cref="NetemEngine.Admit"/> decided for a frame entering the medium.</summary>
internal enum Admission : byte
{
    /// <summary>Its IP packet is larger than the MTU: dropped.</summary>
    TooLarge,
    /// <summary>Random or Gilbert-Elliott loss: dropped.</summary>
    Lost,
    /// <summary>It goes on once.</summary>
    Once,
    /// <summary>It goes on twice (duplication): the caller copies it, then launches both, the original first.</summary>
    Twice,
}

/// <summary>When one launched copy arrives at the far end, or why it does not.</summary>
internal enum Departure : byte
{
    /// <summary>It arrives at or after every frame launched before it: a FIFO of such frames stays in time order.</summary>
    InOrder,
    /// <summary>It arrives before a frame launched earlier (jitter without a rate, or a reorder draw).</summary>
    Overtakes,
    /// <summary>The rate limiter's queue was full: dropped.</summary>
    QueueFull,
}

/// <summary>The outcome of <see cref="NetemEngine.Launch"/> for one copy.</summary>
internal readonly record struct Launched(Departure Departure, long At, bool Corrupted, bool Reordered);

/// <summary>
/// netem's decisions for one direction of a medium, over an <see cref="Impairments"/>: the one
/// engine behind both the emulator's link directions and <c>ImpairedDevice</c>. It owns the seeded
/// generator and every piece of state the decisions carry from frame to frame (the Gilbert-Elliott
/// state, the rate limiter's backlog, the latest arrival so far), and draws in netem's order:
/// <list type="number">
/// <item><see cref="Admit"/>: the MTU, then loss (Gilbert-Elliott: state move, then the loss
/// draw in the new state), then the duplication draw;</item>
/// <item><see cref="Launch"/>, for the original and then the duplicate: the corruption draw (and
/// the bit), the rate limiter and its queue, the reorder draw, and the delay draw unless reordered.</item>
/// </list>
/// A draw is made only when its probability is not zero, so a medium without an impairment costs
/// nothing and consumes no randomness for it. The order and number of draws are what an emulated
/// run's seed replays: changing them changes every capture.
/// The caller keeps the delay line (the emulator's event queue, the device's buffer slots): the
/// engine says when each copy arrives, and whether it arrives in order.
/// </summary>
internal sealed class NetemEngine(Random random)
{
    private readonly Random _random = random;
    private readonly Queue<(long Depart, int Bytes)> _waiting = new();
    private long _lastArrival, _busyUntil, _waitingBytes;
    private bool _geBad;

    /// <summary>Frames waiting for the rate limiter as of the last launch.</summary>
    public int QueuedFrames => _waiting.Count;

    /// <summary>
    /// Whether a frame of <paramref name="length"/> bytes (Ethernet header included) enters the
    /// medium, and how many times.
    /// </summary>
    public Admission Admit(Impairments imp, int length)
    {
        int mtu = imp.Mtu > 0 ? imp.Mtu : int.MaxValue;
        if (length - 14 > mtu) return Admission.TooLarge;
        if (Lost(imp)) return Admission.Lost;
        return imp.Duplicate > 0 && _random.NextDouble() < imp.Duplicate ? Admission.Twice : Admission.Once;
    }

    private bool Lost(Impairments imp)
    {
        if (imp.GilbertElliott is { } ge)
        {
            // netem's order: first the state transition, then the loss draw in the new state.
            _geBad = _geBad ? _random.NextDouble() >= ge.R : _random.NextDouble() < ge.P;
            double p = _geBad ? ge.LossInBad : ge.LossInGood;
            return p > 0 && _random.NextDouble() < p;
        }
        return imp.Loss > 0 && _random.NextDouble() < imp.Loss;
    }

    /// <summary>
    /// Sends one copy of an admitted frame at <paramref name="now"/> (nanoseconds): may corrupt it in
    /// place, queues it behind the rate limiter, and says when it arrives.
    /// </summary>
    public Launched Launch(Impairments imp, Span<byte> frame, long now)
    {
        bool corrupted = false, reordered = false;
        if (imp.Corrupt > 0 && _random.NextDouble() < imp.Corrupt && frame.Length > 14)
        {
            // Flip one bit past the Ethernet header, as netem corrupts the packet and not the link header.
            int bit = 14 * 8 + _random.Next((frame.Length - 14) * 8);
            frame[bit >> 3] ^= (byte)(1 << (bit & 7));
            corrupted = true;
        }
        long depart = now;
        if (imp.RateBitsPerSecond > 0)
        {
            while (_waiting.TryPeek(out var w) && w.Depart <= now) { _waiting.Dequeue(); _waitingBytes -= w.Bytes; }
            if (imp.QueuePackets > 0 && _waiting.Count >= imp.QueuePackets || imp.QueueBytes > 0 && _waitingBytes + frame.Length > imp.QueueBytes)
                return new Launched(Departure.QueueFull, 0, corrupted, false);
            long wire = (long)Math.Ceiling((frame.Length + imp.Overhead) * 8e9 / imp.RateBitsPerSecond);
            depart = Math.Max(now, _busyUntil) + wire;
            _busyUntil = depart;
            _waiting.Enqueue((depart, frame.Length));
            _waitingBytes += frame.Length;
        }
        long delay;
        if (imp.Reorder > 0 && _random.NextDouble() < imp.Reorder) { delay = 0; reordered = true; }
        else delay = SampleDelay(imp);
        long at = depart + delay;
        // As in netem: with a rate limit, frames leave one after another, so jitter delays but never
        // reorders them (only an explicit reorder share overtakes). Without a rate, jitter reorders.
        if (imp.RateBitsPerSecond > 0 && delay > 0) at = Math.Max(at, _lastArrival);
        if (at < _lastArrival) return new Launched(Departure.Overtakes, at, corrupted, reordered);
        _lastArrival = at;
        return new Launched(Departure.InOrder, at, corrupted, reordered);
    }

    private long SampleDelay(Impairments imp)
    {
        long mean = imp.Delay.Nanoseconds, jitter = imp.Jitter.Nanoseconds;
        if (jitter == 0) return mean;
        double z = imp.Distribution switch
        {
            DelayDistribution.Uniform => _random.NextDouble() * 2 - 1,
            DelayDistribution.Normal => Normal(),
            _ => Pareto(),
        };
        return Math.Max(0, mean + (long)(z * jitter));
    }

    /// <summary>A standard normal draw (Box-Muller).</summary>
    private double Normal()
    {
        double u1 = 1.0 - _random.NextDouble(), u2 = _random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>A Pareto draw with shape 3 and scale 1 (mean 1.5, standard deviation √3/2), standardised.</summary>
    private double Pareto()
    {
        const double Alpha = 3, Mean = 1.5, Sd = 0.8660254037844386;
        double x = Math.Pow(1.0 - _random.NextDouble(), -1 / Alpha);
        return (x - Mean) / Sd;
    }

    /// <summary>Forgets the rate limiter's backlog (the medium went down: what was queued is lost with it).</summary>
    public void ResetQueue()
    {
        _waiting.Clear();
        _waitingBytes = 0;
        _busyUntil = 0;
    }
}
