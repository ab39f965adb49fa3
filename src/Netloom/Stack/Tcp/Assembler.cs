namespace Netloom.Stack;

/// <summary>
/// Out-of-order data waiting beyond RcvNxt: up to <see cref="Capacity"/> disjoint byte ranges in
/// a <see cref="SeqRangeSet"/>, read as offsets from RcvNxt. The bytes themselves sit in the
/// receive ring past its tail. Also remembers which range changed last, for the first SACK block
/// (RFC 2018 §4).
/// </summary>
internal sealed class Assembler
{
    public const int Capacity = 16;
    private readonly SeqRangeSet _ranges = new(Capacity);
    private uint _base; // where RcvNxt is in the set's sequence space: offset 0
    private int _latest = -1;

    public int Count => _ranges.Count;
    public bool IsEmpty => _ranges.IsEmpty;
    public (int Start, int End) this[int i] => ((int)(_ranges.Left(i) - _base), (int)(_ranges.Right(i) - _base));

    /// <summary>Adds [start, end) (offsets from RcvNxt); false when it would need a new range and none is free.</summary>
    public bool Add(int start, int end)
    {
        if (end <= start) return true;
        int i = _ranges.Add(_base + (uint)start, _base + (uint)end, evictHighest: false, out _);
        if (i < 0) return false;
        _latest = i;
        return true;
    }

    /// <summary>RcvNxt moved forward by <paramref name="bytes"/>: returns how many more bytes are now contiguous and drops them.</summary>
    public int Shift(int bytes)
    {
        _base += (uint)bytes;
        int gained = 0, drop = 0;
        while (drop < _ranges.Count && Seq.Le(_ranges.Left(drop), _base))
        {
            gained = Math.Max(gained, (int)(_ranges.Right(drop) - _base));
            drop++;
        }
        _ranges.RemoveFirst(drop);
        _latest = _latest >= drop ? _latest - drop : -1;
        _base += (uint)gained;
        return gained;
    }

    /// <summary>The range that changed last, first (RFC 2018 §4), or -1.</summary>
    public int Latest => _latest < _ranges.Count ? _latest : -1;

    public void Clear() { _ranges.Clear(); _latest = -1; }
}
