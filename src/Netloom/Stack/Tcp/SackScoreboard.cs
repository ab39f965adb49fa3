namespace Netloom.Stack;

/// <summary>
/// The sender's record of what the peer has selectively acknowledged (RFC 6675 §2's
/// scoreboard): up to <see cref="Capacity"/> disjoint sequence ranges above SND.UNA, sorted.
/// When full, new information about the lowest ranges wins (they matter first for recovery);
/// forgetting a range only costs a needless retransmission.
/// </summary>
internal sealed class SackScoreboard
{
    public const int Capacity = 32;
    private readonly SeqRangeSet _ranges = new(Capacity);

    public int Count => _ranges.Count;
    public bool IsEmpty => _ranges.IsEmpty;
    public long SackedBytes { get; private set; }
    public uint HighSacked => _ranges.IsEmpty ? 0 : _ranges.Right(_ranges.Count - 1);

    /// <summary>Records a SACK block if it lies within (SND.UNA, SND.MAX]; returns true when it told us something new.</summary>
    public bool Add(uint left, uint right, uint sndUna, uint sndMax)
    {
        if (!Seq.Lt(left, right) || Seq.Le(right, sndUna) || Seq.Gt(right, sndMax)) return false; // D-SACK or bogus: ignore
        if (Seq.Lt(left, sndUna)) left = sndUna;
        // When full, new information about the lowest ranges wins: the highest range is forgotten.
        if (_ranges.Add(left, right, evictHighest: true, out bool changed) < 0 || !changed) return false;
        SackedBytes = _ranges.CoveredBytes();
        return true;
    }

    /// <summary>SND.UNA moved: forget everything at or below it.</summary>
    public void AdvanceTo(uint sndUna)
    {
        _ranges.RemoveBelow(sndUna);
        SackedBytes = _ranges.CoveredBytes();
    }

    public void Clear() { _ranges.Clear(); SackedBytes = 0; }

    /// <summary>
    /// If <paramref name="seq"/> is SACKed, the end of its range; otherwise <paramref name="seq"/>
    /// itself, with <paramref name="runEnd"/> set to where the next SACKed range starts.
    /// </summary>
    public uint SkipSacked(uint seq, out uint runEnd)
    {
        for (int i = 0; i < _ranges.Count; i++)
        {
            if (Seq.Lt(seq, _ranges.Left(i))) { runEnd = _ranges.Left(i); return seq; }
            if (Seq.Lt(seq, _ranges.Right(i))) seq = _ranges.Right(i);
        }
        runEnd = seq + int.MaxValue;
        return seq;
    }

    /// <summary>
    /// RFC 6675 IsLost for every hole at once: unSACKed data below the returned sequence has at
    /// least <paramref name="dupThresh"/> segments' worth of SACKed data above it. Returns
    /// <paramref name="sndUna"/> when nothing is deemed lost.
    /// </summary>
    public uint LossBoundary(uint sndUna, int dupThresh, int mss)
    {
        long above = 0;
        for (int i = _ranges.Count - 1; i >= 0; i--)
        {
            above += _ranges.Right(i) - _ranges.Left(i);
            if (above > (long)(dupThresh - 1) * mss) return _ranges.Left(i);
        }
        return sndUna;
    }

    /// <summary>Bytes in [from, to) that no SACKed range covers.</summary>
    public long UnsackedBytes(uint from, uint to)
    {
        if (!Seq.Lt(from, to)) return 0;
        long n = to - from;
        for (int i = 0; i < _ranges.Count; i++)
        {
            uint l = Seq.Max(_ranges.Left(i), from), r = Seq.Min(_ranges.Right(i), to);
            if (Seq.Lt(l, r)) n -= r - l;
        }
        return n;
    }
}
