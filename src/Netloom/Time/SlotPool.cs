namespace Netloom.Time;

/// <summary>
/// Values parked under small integer handles, with freed handles reused: the event queue's events
/// and the network's callbacks wait here, so scheduling allocates nothing once the peak is seen.
/// </summary>
internal sealed class SlotPool<T>
{
    private T[] _items = new T[64];
    private int[] _free = new int[64];
    private int _freeCount, _used;

    /// <summary>Parks <paramref name="item"/> and returns its handle.</summary>
    public int Add(in T item)
    {
        int slot;
        if (_freeCount > 0) slot = _free[--_freeCount];
        else
        {
            if (_used == _items.Length)
            {
                Array.Resize(ref _items, _used * 2);
                Array.Resize(ref _free, _used * 2);
            }
            slot = _used++;
        }
        _items[slot] = item;
        return slot;
    }

    /// <summary>The value under <paramref name="slot"/>, left in place.</summary>
    public ref readonly T Peek(int slot) => ref _items[slot];

    /// <summary>Takes the value back out; the handle is free again.</summary>
    public T Take(int slot)
    {
        ref T item = ref _items[slot];
        var value = item;
        item = default!; // let references go
        _free[_freeCount++] = slot;
        return value;
    }
}
