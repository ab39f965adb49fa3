namespace Netloom.Time;

/// <summary>
/// The discrete-event queue: one engine for everything in Netloom that waits for a moment in
/// (virtual or real) time. The emulator's <c>Network</c> runs on it, <c>ImpairedDevice</c>'s delay
/// lines hold their frames in it, and the tests' virtual-time harnesses deliver through it.
/// Events are ordered by (time, insertion order), so events at the same instant come out in the
/// order they were pushed and every run with the same seed is the same.
/// Two parts keep that order cheaply:
/// <list type="bullet">
/// <item>Events for the instant being processed (a frame over a link with no delay, a wake-up "now")
/// go to a FIFO: they were pushed after everything already waiting for this instant, so they come
/// out after it, in their own order, and never touch the heap.</item>
/// <item>Later events go to a 4-ary min-heap of small keys (time, order, slot) holding no references,
/// so a sift moves 24-byte plain values with no GC write barriers; the events themselves stay put
/// in a slot array until popped.</item>
/// </list>
/// An event pushed for a time before the last one popped counts as due at that last time (it is
/// late, and comes after what was already due then). Pushing allocates nothing once the queue has
/// seen its peak.
/// </summary>
internal sealed class EventQueue<T>
{
    private struct Key
    {
        public long Time, Order;
        public int Slot;
    }

    private Key[] _heap = new Key[256];
    private int _heapCount;
    private readonly SlotPool<T> _events = new();
    private long _order;

    // The FIFO of events at _current: a ring.
    private T[] _now = new T[256];
    private int _nowHead, _nowCount;
    /// <summary>The time of the last event popped; every queued event is at or after it.</summary>
    private long _current = long.MinValue;

    public int Count => _heapCount + _nowCount;

    /// <summary>When the next event is due (nanoseconds), or <see cref="long.MaxValue"/> when none waits.</summary>
    public long PeekTime => _nowCount > 0 ? _current : _heapCount > 0 ? _heap[0].Time : long.MaxValue;

    public void Push(long time, in T e)
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

    /// <summary>Whether the next event comes from the FIFO (heap events at the current instant were pushed before anything in it).</summary>
    private bool NextIsNow => _nowCount > 0 && (_heapCount == 0 || _heap[0].Time > _current);

    /// <summary>The next event, left in the queue. False when none waits.</summary>
    public bool TryPeek(out T e)
    {
        if (NextIsNow) e = _now[_nowHead];
        else if (_heapCount > 0) e = _events.Peek(_heap[0].Slot);
        else { e = default!; return false; }
        return true;
    }

    /// <summary>Takes the next event if it is due by <paramref name="now"/>.</summary>
    public bool TryPop(long now, out T e)
    {
        if (PeekTime > now) { e = default!; return false; }
        e = Pop(out _);
        return true;
    }

    /// <summary>Takes the next event; the queue must not be empty.</summary>
    public T Pop(out long time)
    {
        if (NextIsNow)
        {
            ref T head = ref _now[_nowHead];
            var e = head;
            head = default!;
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
        var bigger = new T[_now.Length * 2];
        for (int k = 0; k < _nowCount; k++) bigger[k] = _now[(_nowHead + k) & (_now.Length - 1)];
        _now = bigger;
        _nowHead = 0;
    }

    private static bool Less(ref Key a, ref Key b) => a.Time < b.Time || a.Time == b.Time && a.Order < b.Order;
}
