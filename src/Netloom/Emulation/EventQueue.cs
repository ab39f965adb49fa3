namespace Netloom.Emulation;

internal enum EventKind : byte
{
    /// <summary>A frame reaches the far end of a link direction (a frame that overtakes others).</summary>
    Arrival,
    /// <summary>The first frame of a link direction's in-order queue arrives.</summary>
    Head,
    /// <summary>A node asked to be polled (its timers, its apps).</summary>
    Wake,
    /// <summary>A scheduled action: a scenario event, an app start.</summary>
    Action,
}

internal struct SimEvent
{
    public EventKind Kind;
    /// <summary>Link id (Arrival, Head), node id (Wake) or action index (Action).</summary>
    public int Target;
    /// <summary>Direction 0/1 (Arrival, Head).</summary>
    public int Aux;
    /// <summary>The link's epoch when the frame left (Arrival): a link that went down meanwhile loses it.</summary>
    public long Epoch;
    public SimFrame? Frame;
}

/// <summary>
/// The discrete-event queue: a binary heap ordered by (time, insertion order), so events at the same
/// instant run in the order they were scheduled and every run with the same seed is the same.
/// </summary>
internal sealed class EventQueue
{
    // Key and event side by side: each step of a sift touches one entry, not two arrays.
    private struct Entry
    {
        public long Time, Order;
        public SimEvent Event;
    }

    private Entry[] _heap = new Entry[1024];
    private long _order;

    public int Count { get; private set; }

    public long PeekTime => Count > 0 ? _heap[0].Time : long.MaxValue;

    public void Push(long time, in SimEvent e)
    {
        if (Count == _heap.Length) Array.Resize(ref _heap, Count * 2);
        var heap = _heap;
        int i = Count++;
        long order = _order++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            ref Entry p = ref heap[parent];
            if (p.Time < time || p.Time == time && p.Order < order) break;
            heap[i] = p;
            i = parent;
        }
        heap[i] = new Entry { Time = time, Order = order, Event = e };
    }

    public SimEvent Pop(out long time)
    {
        var heap = _heap;
        var top = heap[0].Event;
        time = heap[0].Time;
        int n = --Count;
        if (n > 0)
        {
            var last = heap[n];
            int i = 0;
            while (true)
            {
                int child = 2 * i + 1;
                if (child >= n) break;
                if (child + 1 < n && Less(ref heap[child + 1], ref heap[child])) child++;
                if (!Less(ref heap[child], ref last)) break;
                heap[i] = heap[child];
                i = child;
            }
            heap[i] = last;
        }
        heap[n] = default;
        return top;
    }

    private static bool Less(ref Entry a, ref Entry b) => a.Time < b.Time || a.Time == b.Time && a.Order < b.Order;
}
