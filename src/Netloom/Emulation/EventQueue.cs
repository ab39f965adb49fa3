namespace Netloom.Emulation;

internal enum EventKind : byte
{
    /// <summary>A frame reaches the far end of a link direction.</summary>
    Arrival,
    /// <summary>A node asked to be polled (its timers, its apps).</summary>
    Wake,
    /// <summary>A scheduled action: a scenario event, an app start.</summary>
    Action,
}

internal struct SimEvent
{
    public EventKind Kind;
    /// <summary>Link id (Arrival), node id (Wake) or action index (Action).</summary>
    public int Target;
    /// <summary>Direction 0/1 (Arrival).</summary>
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
    private SimEvent[] _events = new SimEvent[1024];
    private (long Time, long Order)[] _keys = new (long, long)[1024];
    private long _order;

    public int Count { get; private set; }

    public void Push(long time, in SimEvent e)
    {
        if (Count == _events.Length)
        {
            Array.Resize(ref _events, Count * 2);
            Array.Resize(ref _keys, Count * 2);
        }
        int i = Count++;
        var key = (time, _order++);
        // Sift up.
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (!Less(key, _keys[parent])) break;
            _events[i] = _events[parent];
            _keys[i] = _keys[parent];
            i = parent;
        }
        _events[i] = e;
        _keys[i] = key;
    }

    public long PeekTime => Count > 0 ? _keys[0].Time : long.MaxValue;

    public SimEvent Pop(out long time)
    {
        var top = _events[0];
        time = _keys[0].Time;
        int n = --Count;
        if (n > 0)
        {
            var last = _events[n];
            var lastKey = _keys[n];
            int i = 0;
            while (true)
            {
                int child = 2 * i + 1;
                if (child >= n) break;
                if (child + 1 < n && Less(_keys[child + 1], _keys[child])) child++;
                if (!Less(_keys[child], lastKey)) break;
                _events[i] = _events[child];
                _keys[i] = _keys[child];
                i = child;
            }
            _events[i] = last;
            _keys[i] = lastKey;
        }
        _events[n] = default;
        return top;
    }

    private static bool Less((long Time, long Order) a, (long Time, long Order) b) =>
        a.Time < b.Time || a.Time == b.Time && a.Order < b.Order;
}
