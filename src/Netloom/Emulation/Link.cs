using Netloom.Netem;

namespace Netloom.Emulation;

/// <summary>Why a link lost a frame.</summary>
public enum LinkDrop
{
    /// <summary>Random or Gilbert-Elliott loss.</summary>
    Loss,
    /// <summary>The rate limiter's queue was full.</summary>
    Queue,
    /// <summary>The link was down when the frame was sent, or went down while it was in flight.</summary>
    Down,
    /// <summary>Larger than the link's MTU.</summary>
    Mtu,
    /// <summary>The receiving node was crashed.</summary>
    NodeDown,
    /// <summary>The network's frame pool was exhausted (a duplicate could not be made).</summary>
    NoBuffer,
}

/// <summary>Counters of one direction of a link.</summary>
internal sealed class LinkCounters
{
    private readonly long[] _drops = new long[Enum.GetValues<LinkDrop>().Length];

    public long Sent, SentBytes, Delivered, DeliveredBytes, Duplicated, Corrupted, Reordered;
    public long Drops(LinkDrop reason) => _drops[(int)reason];
    public long TotalDrops => _drops.Sum();
    internal void Drop(LinkDrop reason) => _drops[(int)reason]++;
}

/// <summary>
/// One direction of a link. A frame sent into it is lost, queued behind the rate limiter,
/// delayed, duplicated, corrupted or reordered as <see cref="Impairments"/> says, and arrives at the
/// far end as an event. The decisions are <see cref="NetemEngine"/>'s, the engine
/// <c>ImpairedDevice</c> also runs; this class adds what only a link has (being down, counters,
/// capture) and its delay line, which is the network's event queue. Randomness is the direction's
/// own seeded generator, so adding traffic elsewhere does not change what happens here.
/// </summary>
internal sealed class LinkDirection
{
    private readonly Network _net;
    private readonly NetemEngine _netem;
    /// <summary>
    /// Frames in flight whose arrival times only grow (a fixed delay, a rate): they wait here and only
    /// the first sits in the network's event heap, which then holds one entry per busy link rather
    /// than one per frame. A frame that would overtake (jitter, reordering) goes to the heap itself.
    /// </summary>
    private readonly Queue<(long At, long Epoch, SimFrame Frame)> _inFlight = new();

    internal LinkDirection(Network net, Link link, int index, NodePort from, NodePort to, Impairments imp, int seed)
    {
        _net = net;
        Link = link;
        Index = index;
        From = from;
        To = to;
        Impairments = imp;
        _netem = new NetemEngine(new Random(seed));
    }

    public Link Link { get; }
    public int Index { get; }
    public NodePort From { get; }
    public NodePort To { get; }
    public LinkCounters Counters { get; } = new();

    /// <summary>What this direction does to frames; may be replaced while the network runs.</summary>
    public Impairments Impairments
    {
        get;
        set
        {
            if (value.Validate() is { } error) throw new ArgumentException($"link {Link?.Name}: {error}");
            field = value;
        }
    }

    /// <summary>Frames waiting for the rate limiter right now.</summary>
    public int QueuedFrames => _netem.QueuedFrames;

    /// <summary>Takes ownership of <paramref name="frame"/> and sends it on its way (or drops it).</summary>
    internal void Transmit(SimFrame frame, long now)
    {
        var c = Counters;
        var imp = Impairments;
        c.Sent++;
        c.SentBytes += frame.Length;
        _net.Capture(this, frame, now);
        if (!Link.IsUp) { Drop(frame, LinkDrop.Down); return; }
        var admission = _netem.Admit(imp, frame.Length);
        if (admission == Admission.TooLarge) { Drop(frame, LinkDrop.Mtu); return; }
        if (admission == Admission.Lost) { Drop(frame, LinkDrop.Loss); return; }
        SimFrame? copy = null;
        if (admission == Admission.Twice)
        {
            copy = _net.Pool.Copy(frame);
            if (copy is null) c.Drop(LinkDrop.NoBuffer);
            else c.Duplicated++;
        }
        Launch(frame, now, imp);
        if (copy is not null) Launch(copy, now, imp);
    }

    private void Launch(SimFrame frame, long now, Impairments imp)
    {
        var launched = _netem.Launch(imp, frame.Span, now);
        if (launched.Corrupted) Counters.Corrupted++;
        if (launched.Departure == Departure.QueueFull) { Drop(frame, LinkDrop.Queue); return; }
        if (launched.Reordered) Counters.Reordered++;
        long at = launched.At;
        if (launched.Departure == Departure.InOrder)
        {
            _inFlight.Enqueue((at, Link.Epoch, frame));
            if (_inFlight.Count == 1) _net.ScheduleHead(this, at);
        }
        else _net.ScheduleArrival(this, frame, at);
    }

    /// <summary>The first frame of the in-order queue is due: hands it over and schedules the next.</summary>
    internal (SimFrame Frame, long Epoch) TakeHead()
    {
        var (_, epoch, frame) = _inFlight.Dequeue();
        if (_inFlight.TryPeek(out var next)) _net.ScheduleHead(this, next.At);
        return (frame, epoch);
    }

    internal void Drop(SimFrame frame, LinkDrop reason)
    {
        Counters.Drop(reason);
        _net.Pool.Return(frame);
    }

    /// <summary>Forgets the rate limiter's backlog (the link went down: what was queued is lost with it).</summary>
    internal void ResetQueue() => _netem.ResetQueue();
}

/// <summary>
/// A point-to-point link between two node ports, one <see cref="LinkDirection"/> each way.
/// Taking it down loses what is in flight; impairments can change while it runs.
/// </summary>
public sealed class Link
{
    internal Link(Network net, int id, string name, NodePort a, NodePort b, Impairments aToB, Impairments bToA, int seed)
    {
        Id = id;
        Name = name;
        A = a;
        B = b;
        AtoB = new LinkDirection(net, this, 0, a, b, aToB, seed * 2 + 1);
        BtoA = new LinkDirection(net, this, 1, b, a, bToA, seed * 2 + 2);
    }

    public int Id { get; }
    public string Name { get; }
    internal NodePort A { get; }
    internal NodePort B { get; }
    internal LinkDirection AtoB { get; }
    internal LinkDirection BtoA { get; }
    public bool IsUp { get; private set; } = true;
    /// <summary>Bumped when the link goes down, so frames in flight from before are lost.</summary>
    internal long Epoch { get; private set; }
    /// <summary>Set while a partition holds the link down, so a heal raises only what it lowered.</summary>
    internal bool DownByPartition { get; set; }

    internal LinkDirection Direction(int index) => index == 0 ? AtoB : BtoA;

    /// <summary>Sets both directions' impairments.</summary>
    public void SetImpairments(Impairments both)
    {
        AtoB.Impairments = both;
        BtoA.Impairments = both;
    }

    public void Down()
    {
        if (!IsUp) return;
        IsUp = false;
        Epoch++;
        AtoB.ResetQueue();
        BtoA.ResetQueue();
    }

    public void Up() => IsUp = !Removed;

    /// <summary>Taken out of the running network: down for good, and neither end's port leads to it.</summary>
    internal bool Removed { get; private set; }

    internal void Remove()
    {
        Down();
        Removed = true;
        foreach (var p in new[] { A, B })
        {
            p.Link = null;
            p.Out = null;
        }
    }

    public override string ToString() => $"{Name} ({A} <-> {B})";
}
