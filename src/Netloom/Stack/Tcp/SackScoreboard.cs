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
    private readonly uint[] _left = new uint[Capacity], _right = new uint[Capacity];
    private int _count;

    public int Count => _count;
    public bool IsEmpty => _count == 0;
    public long SackedBytes { get; private set; }
    public uint HighSacked => _count == 0 ? 0 : _right[_count - 1];

    /// <summary>Records a SACK block if it lies within (SND.UNA, SND.MAX]; returns true when it told us something new.</summary>
    public bool Add(uint left, uint right, uint sndUna, uint sndMax)
    {
        if (!Seq.Lt(left, right) || Seq.Le(right, sndUna) || Seq.Gt(right, sndMax)) return false; // D-SACK or bogus: ignore
        if (Seq.Lt(left, sndUna)) left = sndUna;
        int i = 0;
        while (i < _count && Seq.Lt(_right[i], left)) i++;
        int j = i;
        uint l = left, r = right;
        while (j < _count && Seq.Le(_left[j], r)) { l = Seq.Min(l, _left[j]); r = Seq.Max(r, _right[j]); j++; }
        if (j - i == 1 && _left[i] == l && _right[i] == r) return false; // already known
        int merged = j - i;
        if (merged == 0)
        {
            if (_count == Capacity)
            {
                if (i == _count) return false; // above everything we track: drop the newest information
                _count--;                      // forget the highest range to make room
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
        Recount();
        return true;
    }

    /// <summary>SND.UNA moved: forget everything at or below it.</summary>
    public void AdvanceTo(uint sndUna)
    {
        int drop = 0;
        while (drop < _count && Seq.Le(_right[drop], sndUna)) drop++;
        if (drop > 0)
        {
            Array.Copy(_left, drop, _left, 0, _count - drop);
            Array.Copy(_right, drop, _right, 0, _count - drop);
            _count -= drop;
        }
        if (_count > 0 && Seq.Lt(_left[0], sndUna)) _left[0] = sndUna;
        Recount();
    }

    public void Clear() { _count = 0; SackedBytes = 0; }

    /// <summary>
    /// If <paramref name="seq"/> is SACKed, the end of its range; otherwise <paramref name="seq"/>
    /// itself, with <paramref name="runEnd"/> set to where the next SACKed range starts.
    /// </summary>
    public uint SkipSacked(uint seq, out uint runEnd)
    {
        for (int i = 0; i < _count; i++)
        {
            if (Seq.Lt(seq, _left[i])) { runEnd = _left[i]; return seq; }
            if (Seq.Lt(seq, _right[i])) seq = _right[i];
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
        for (int i = _count - 1; i >= 0; i--)
        {
            above += _right[i] - _left[i];
            if (above > (long)(dupThresh - 1) * mss) return _left[i];
        }
        return sndUna;
    }

    /// <summary>Bytes in [from, to) that no SACKed range covers.</summary>
    public long UnsackedBytes(uint from, uint to)
    {
        if (!Seq.Lt(from, to)) return 0;
        long n = to - from;
        for (int i = 0; i < _count; i++)
        {
            uint l = Seq.Max(_left[i], from), r = Seq.Min(_right[i], to);
            if (Seq.Lt(l, r)) n -= r - l;
        }
        return n;
    }

    private void Recount()
    {
        long n = 0;
        for (int i = 0; i < _count; i++) n += _right[i] - _left[i];
        SackedBytes = n;
    }
}
