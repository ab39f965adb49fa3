namespace Netloom.Stack;

/// <summary>
/// Disjoint ranges [Left, Right) of sequence numbers, kept sorted, at most a fixed number of them
/// (storage taken once, at construction). Comparisons are modulo 2^32 (RFC 9293 §3.4), so every
/// range must lie within 2^31 of the others. Ranges that overlap or touch merge. The receiver's
/// out-of-order <see cref="Assembler"/> and the sender's <see cref="SackScoreboard"/> both keep
/// their ranges here.
/// </summary>
internal sealed class SeqRangeSet
{
    private readonly uint[] _left, _right;
    private int _count;

    public SeqRangeSet(int capacity)
    {
        _left = new uint[capacity];
        _right = new uint[capacity];
    }

    public int Capacity => _left.Length;
    public int Count => _count;
    public bool IsEmpty => _count == 0;
    public uint Left(int i) => _left[i];
    public uint Right(int i) => _right[i];

    /// <summary>
    /// Adds [<paramref name="left"/>, <paramref name="right"/>) (non-empty), merging what it overlaps
    /// or touches. Returns the index of the range that now holds it, with <paramref name="changed"/>
    /// false when it was already covered; -1 when it needs a new range and none is free. When
    /// <paramref name="evictHighest"/>, a full set forgets its highest range to make room for a lower
    /// one instead (a range above all the others is still refused).
    /// </summary>
    public int Add(uint left, uint right, bool evictHighest, out bool changed)
    {
        changed = false;
        int i = 0;
        while (i < _count && Seq.Lt(_right[i], left)) i++;
        // i is the first range that ends at or after left: merge every range that touches [left, right).
        int j = i;
        uint l = left, r = right;
        while (j < _count && Seq.Le(_left[j], r)) { l = Seq.Min(l, _left[j]); r = Seq.Max(r, _right[j]); j++; }
        int merged = j - i;
        if (merged == 1 && _left[i] == l && _right[i] == r) return i; // already covered
        if (merged == 0)
        {
            if (_count == _left.Length)
            {
                if (!evictHighest || i == _count) return -1;
                _count--;
            }
            Array.Copy(_left, i, _left, i + 1, _count - i);
            Array.Copy(_right, i, _right, i + 1, _count - i);
            _count++;
        }
        else if (merged > 1)
        {
            Array.Copy(_left, j, _left, i + 1, _count - j);
            Array.Copy(_right, j, _right, i + 1, _count - j);
            _count -= merged - 1;
        }
        _left[i] = l;
        _right[i] = r;
        changed = true;
        return i;
    }

    /// <summary>Forgets the first <paramref name="n"/> ranges.</summary>
    public void RemoveFirst(int n = 1)
    {
        if (n <= 0) return;
        Array.Copy(_left, n, _left, 0, _count - n);
        Array.Copy(_right, n, _right, 0, _count - n);
        _count -= n;
    }

    /// <summary>Forgets everything before <paramref name="seq"/>: ranges that end at or below it go, one that straddles it is cut.</summary>
    public void RemoveBelow(uint seq)
    {
        int drop = 0;
        while (drop < _count && Seq.Le(_right[drop], seq)) drop++;
        RemoveFirst(drop);
        if (_count > 0 && Seq.Lt(_left[0], seq)) _left[0] = seq;
    }

    /// <summary>Bytes all ranges cover.</summary>
    public long CoveredBytes()
    {
        long n = 0;
        for (int i = 0; i < _count; i++) n += _right[i] - _left[i];
        return n;
    }

    public void Clear() => _count = 0;
}
