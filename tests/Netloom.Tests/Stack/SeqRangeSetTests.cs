using Netloom.Stack;

namespace Netloom.Tests.Stack;

public class SeqRangeSetTests
{
    private static string Show(SeqRangeSet s)
    {
        var parts = new string[s.Count];
        for (int i = 0; i < s.Count; i++) parts[i] = $"[{s.Left(i)},{s.Right(i)})";
        return string.Join(" ", parts);
    }

    [Fact]
    public void Ranges_that_overlap_or_touch_merge_and_the_rest_stay_sorted()
    {
        var s = new SeqRangeSet(8);
        s.Add(30, 40, false, out _);
        s.Add(10, 20, false, out _);
        Assert.Equal("[10,20) [30,40)", Show(s));
        Assert.Equal(0, s.Add(20, 25, false, out bool changed)); // touches the first
        Assert.True(changed);
        Assert.Equal(0, s.Add(12, 18, false, out changed));      // already covered
        Assert.False(changed);
        s.Add(24, 31, false, out _);                               // bridges both
        Assert.Equal("[10,40)", Show(s));
        Assert.Equal(30, s.CoveredBytes());
    }

    [Fact]
    public void Sequence_numbers_compare_modulo_2_to_the_32()
    {
        var s = new SeqRangeSet(4);
        s.Add(10, 20, false, out _);                   // just past the wrap
        s.Add(uint.MaxValue - 9, 5, false, out _);     // crosses it: before [10,20)
        Assert.Equal(uint.MaxValue - 9, s.Left(0));
        Assert.Equal(25, s.CoveredBytes());
        s.Add(5, 10, false, out _);
        Assert.Equal(1, s.Count);
        s.RemoveBelow(2);
        Assert.Equal(2u, s.Left(0));
        Assert.Equal(18, s.CoveredBytes());
    }

    [Fact]
    public void A_full_set_refuses_a_new_range_or_forgets_its_highest_when_asked()
    {
        var s = new SeqRangeSet(2);
        s.Add(10, 20, false, out _);
        s.Add(30, 40, false, out _);
        Assert.Equal(-1, s.Add(50, 60, false, out _));
        Assert.Equal(-1, s.Add(50, 60, true, out _));  // above everything: still refused
        Assert.Equal(0, s.Add(0, 5, true, out _));      // lower: the highest range goes
        Assert.Equal("[0,5) [10,20)", Show(s));
        Assert.Equal(1, s.Add(18, 22, false, out _));   // merging needs no new range
    }
}
