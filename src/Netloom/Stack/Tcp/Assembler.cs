namespace Netloom.Stack;

/// <summary>
/// Out-of-order data waiting beyond RcvNxt: up to <see cref="Capacity"/> disjoint byte ranges,
/// as offsets from RcvNxt, kept sorted. The bytes themselves sit in the receive ring past its
/// tail. Also remembers which range changed last, for the first SACK block (RFC 2018 §4).
/// </summary>
internal sealed class Assembler
{
    public const int Capacity = 16;
    private readonly int[] _start = new int[Capacity], _end = new int[Capacity];
    private int _count, _latest = -1;

    public int Count => _count;
    public bool IsEmpty => _count == 0;
    public (int Start, int End) this[int i] => (_start[i], _end[i]);

    /// <summary>Adds [start, end) (offsets from RcvNxt); false when it would need a new range and none is free.</summary>
    public bool Add(int start, int end)
    {
        if (end <= start) return true;
        int i = 0;
        while (i < _count && _end[i] < start) i++;
        // i is the first range that ends at or after start: merge every range that touches [start, end).
        int j = i;
        while (j < _count && _start[j] <= end) { start = Math.Min(start, _start[j]); end = Math.Max(end, _end[j]); j++; }
        int merged = j - i;
        if (merged == 0)
        {
            if (_count == Capacity) return false;
            Array.Copy(_start, i, _start, i + 1, _count - i);
            Array.Copy(_end, i, _end, i + 1, _count - i);
            _count++;
        }
        else if (merged > 1)
        {
            Array.Copy(_start, j, _start, i + 1, _count - j);
            Array.Copy(_end, j, _end, i + 1, _count - j);
            _count -= merged - 1;
        }
        _start[i] = start;
        _end[i] = end;
        _latest = i;
        return true;
    }

    /// <summary>RcvNxt moved forward by <paramref name="bytes"/>: returns how many more bytes are now contiguous and drops them.</summary>
    public int Shift(int bytes)
    {
        for (int i = 0; i < _count; i++) { _start[i] -= bytes; _end[i] -= bytes; }
        int gained = 0;
        while (_count > 0 && _start[0] <= 0)
        {
            gained = Math.Max(gained, _end[0]);
            RemoveFirst();
        }
        if (gained > 0) for (int i = 0; i < _count; i++) { _start[i] -= gained; _end[i] -= gained; }
        return gained;
    }

    private void RemoveFirst()
    {
        Array.Copy(_start, 1, _start, 0, _count - 1);
        Array.Copy(_end, 1, _end, 0, _count - 1);
        _count--;
        _latest = _latest > 0 ? _latest - 1 : -1;
    }

    /// <summary>The range that changed last, first (RFC 2018 §4), or -1.</summary>
    public int Latest => _latest < _count ? _latest : -1;

    public void Clear() { _count = 0; _latest = -1; }
}
