namespace Netloom.Emulation;

internal enum EventKind : byte
{
    /// <summary>A frame reaches the far end of a link direction (a frame that overtakes others).</summary>
    Arrival,
    /// <summary>The first frame of a link direction's in-order queue arrives.</summary>
    Head,
    /// <summary>A node asked to be polled (its timers, its apps).</summary>
    Wake,
    /// <summary>A scheduled callback: a scenario event, an app start, an async continuation on a host.</summary>
    Callback,
}

internal struct SimEvent
{
    public EventKind Kind;
    /// <summary>Link id (Arrival, Head), node id (Wake) or callback slot (Callback).</summary>
    public int Target;
    /// <summary>Direction 0/1 (Arrival, Head).</summary>
    public int Aux;
    /// <summary>The link's epoch when the frame left (Arrival): a link that went down meanwhile loses it.</summary>
    public long Epoch;
    public SimFrame? Frame;
}

/// <summary>
/// The discrete-event queue, ordered by (time, insertion order), so events at the same instant run in
/// the order they were scheduled and every run with the same seed is the same.
/// Two parts keep that order cheaply:
/// <list type="bullet">
/// <item>Events for the instant being processed (a frame over a link with no delay, a wake-up "now")
/// go to a FIFO: they were scheduled after everything already waiting for this instant, so they run
/// after it, in their own order, and never touch the heap.</item>
/// <item>Later events go to a 4-ary min-heap of small keys (time, order, slot) holding no references,
/// so a sift moves 24-byte plain values with no GC write barriers; the events themselves stay put
/// in a slot array until popped.</item>
/// </list>
/// </summary>
internal sealed class EventQueue
{
    private struct Key
    {
        public long Time, Order;
        public int Slot;
    }

    private Key[] _heap = new Key[256];
    private int _heapCount;
    private readonly SlotPool<SimEvent> _events = new();
    private long _order;

    // The FIFO of events at _current: a ring.
    private SimEvent[] _now = new SimEvent[256];
    private int _nowHead, _nowCount;
    /// <summary>The time of the last event popped; every queued event is at or after it.</summary>
    private long _current = long.MinValue;

    public int Count => _heapCount + _nowCount;

    public long PeekTime => _nowCount > 0 ? _current : _heapCount > 0 ? _heap[0].Time : long.MaxValue;

    public void Push(long time, in SimEvent e)
    {
        if (time <= _current)
        {
            // Scheduled for the instant being processed: after all of it that was scheduled earlier.
            if (_nowCount == _now.Length) GrowNow();
            _now[(_nowHead + _nowCount++) & (_now.Length - 1)] = e;
            return;
        }
        int slot = _events.Add(e);
        if (_heapCount == _heap.Length) Array.Resize(ref _heap, _heapCount * 2);
        var heap = _heap;
        int i = _heapCount++;
        long order = _order++;
        while (i > 0)
        {
            int parent = (i - 1) >> 2;
            ref Key p = ref heap[parent];
            if (p.Time < time || p.Time == time && p.Order < order) break;
            heap[i] = p;
            i = parent;
        }
        heap[i] = new Key { Time = time, Order = order, Slot = slot };
    }

    public SimEvent Pop(out long time)
    {
        // Heap events at the current instant were scheduled before anything in the FIFO.
        if (_nowCount > 0 && (_heapCount == 0 || _heap[0].Time > _current))
        {
            ref SimEvent head = ref _now[_nowHead];
            var e = head;
            head = default;
            _nowHead = (_nowHead + 1) & (_now.Length - 1);
            _nowCount--;
            time = _current;
            return e;
        }
        var heap = _heap;
        var top = heap[0];
        time = _current = top.Time;
        int n = --_heapCount;
        if (n > 0)
        {
            var last = heap[n];
            int i = 0;
            while (true)
            {
                int first = 4 * i + 1;
                if (first >= n) break;
                int best = first;
                int end = Math.Min(first + 4, n);
                for (int c = first + 1; c < end; c++)
                    if (Less(ref heap[c], ref heap[best])) best = c;
                if (!Less(ref heap[best], ref last)) break;
                heap[i] = heap[best];
                i = best;
            }
            heap[i] = last;
        }
        return _events.Take(top.Slot);
    }

    private void GrowNow()
    {
        var bigger = new SimEvent[_now.Length * 2];
        for (int k = 0; k < _nowCount; k++) bigger[k] = _now[(_nowHead + k) & (_now.Length - 1)];
        _now = bigger;
        _nowHead = 0;
    }

    private static bool Less(ref Key a, ref Key b) => a.Time < b.Time || a.Time == b.Time && a.Order < b.Order;
}
