namespace Netloom.Stack;

/// <summary>A fixed-size FIFO that keeps the newest items: when full, adding drops the oldest.</summary>
internal sealed class RecentQueue<T>(int capacity) where T : struct
{
    private readonly T[] _items = new T[capacity];
    private int _head, _count;

    public int Count => _count;

    public void Add(in T item)
    {
        _items[(_head + _count) % _items.Length] = item;
        if (_count < _items.Length) _count++; else _head = (_head + 1) % _items.Length;
    }

    public bool TryTake(out T item)
    {
        item = default;
        if (_count == 0) return false;
        item = _items[_head];
        _head = (_head + 1) % _items.Length;
        _count--;
        return true;
    }
}
