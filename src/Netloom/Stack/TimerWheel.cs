using Netloom.Time;

namespace Netloom.Stack;

/// <summary>
/// A hashed timer wheel (Varghese and Lauck): slots of <see cref="Tick"/>, each a list of timers
/// due in that slot modulo the wheel. Timers are small integer handles into a fixed array, so
/// scheduling allocates nothing. The owner asks <see cref="NextDeadline"/> for PollAt and calls
/// <see cref="Expire"/> with the current time.
/// </summary>
internal sealed class TimerWheel
{
    public static readonly Duration Tick = Duration.FromMilliseconds(1);
    private const int Slots = 1024;

    private struct Timer
    {
        public long Due;      // nanoseconds; long.MaxValue when idle
        public int Next;      // next timer in the same slot, or -1
        public int Prev;
        public int Slot;      // -1 when not scheduled
        public int Owner;     // what the timer is for: handed back on expiry
        public byte Kind;
    }

    private readonly Timer[] _timers;
    private readonly int[] _heads = new int[Slots];
    private readonly Stack<int> _free;
    private long _earliest = long.MaxValue; // never later than the earliest scheduled timer's due time
    private bool _earliestStale;

    public TimerWheel(int capacity)
    {
        _timers = new Timer[capacity];
        _free = new Stack<int>(capacity);
        for (int i = capacity - 1; i >= 0; i--)
        {
            _timers[i] = new Timer { Due = long.MaxValue, Slot = -1, Next = -1, Prev = -1 };
            _free.Push(i);
        }
        _heads.AsSpan().Fill(-1);
    }

    /// <summary>A timer handle to schedule and cancel; -1 when every timer is in use.</summary>
    public int Create(byte kind, int owner)
    {
        if (!_free.TryPop(out int t)) return -1;
        _timers[t].Kind = kind;
        _timers[t].Owner = owner;
        return t;
    }

    public void Destroy(int timer)
    {
        if (timer < 0) return;
        Cancel(timer);
        _free.Push(timer);
    }

    public void Schedule(int timer, Instant due)
    {
        Cancel(timer);
        ref Timer t = ref _timers[timer];
        t.Due = due.Nanoseconds;
        t.Slot = (int)((ulong)(due.Nanoseconds / Tick.Nanoseconds) % Slots);
        t.Prev = -1;
        t.Next = _heads[t.Slot];
        if (t.Next >= 0) _timers[t.Next].Prev = timer;
        _heads[t.Slot] = timer;
        if (t.Due < _earliest) _earliest = t.Due;
    }

    public void Cancel(int timer)
    {
        ref Timer t = ref _timers[timer];
        if (t.Slot < 0) return;
        if (t.Prev >= 0) _timers[t.Prev].Next = t.Next; else _heads[t.Slot] = t.Next;
        if (t.Next >= 0) _timers[t.Next].Prev = t.Prev;
        // _earliest stays as it is: a lower bound is enough (the worst case is one early poll, after
        // which Expire recomputes it). Recomputing here would scan every timer on each cancel, and
        // a busy connection or neighbour entry cancels its earliest timer on every packet.
        t.Slot = -1;
        t.Due = long.MaxValue;
    }

    public bool IsScheduled(int timer) => _timers[timer].Slot >= 0;

    /// <summary>When the earliest scheduled timer is due, or null when none is.</summary>
    public Instant? NextDeadline()
    {
        if (_earliestStale)
        {
            _earliest = long.MaxValue;
            foreach (ref readonly var t in _timers.AsSpan()) if (t.Slot >= 0 && t.Due < _earliest) _earliest = t.Due;
            _earliestStale = false;
        }
        return _earliest == long.MaxValue ? null : new Instant(_earliest);
    }

    /// <summary>Calls <paramref name="fire"/> for every timer due at or before <paramref name="now"/>.</summary>
    public void Expire<TState>(Instant now, TState state, Action<TState, byte, int> fire)
    {
        if (_earliest > now.Nanoseconds && !_earliestStale) return;
        // Walk every slot only when a full turn may have passed; otherwise the slots since the earliest.
        long first = Math.Min(_earliest, now.Nanoseconds) / Tick.Nanoseconds, last = now.Nanoseconds / Tick.Nanoseconds;
        long span = Math.Min(last - first + 1, Slots);
        for (long s = 0; s < span; s++)
        {
            int slot = (int)((ulong)(first + s) % Slots);
            int t = _heads[slot];
            while (t >= 0 && _timers[t].Slot == slot) // a callback may have cancelled the next one
            {
                int next = _timers[t].Next;
                if (_timers[t].Due <= now.Nanoseconds)
                {
                    byte kind = _timers[t].Kind;
                    int owner = _timers[t].Owner;
                    Cancel(t);
                    fire(state, kind, owner);
                }
                t = next;
            }
        }
        _earliestStale = true;
    }
}
