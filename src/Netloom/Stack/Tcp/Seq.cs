namespace Netloom.Stack;

/// <summary>
/// Sequence-number comparisons modulo 2^32 (RFC 9293 §3.4): a is before b when the signed
/// distance from b to a is negative. Valid while the two are less than 2^31 apart.
/// </summary>
internal static class Seq
{
    public static bool Lt(uint a, uint b) => (int)(a - b) < 0;
    public static bool Le(uint a, uint b) => (int)(a - b) <= 0;
    public static bool Gt(uint a, uint b) => (int)(a - b) > 0;
    public static bool Ge(uint a, uint b) => (int)(a - b) >= 0;
    public static uint Max(uint a, uint b) => Gt(a, b) ? a : b;
    public static uint Min(uint a, uint b) => Lt(a, b) ? a : b;

    /// <summary>start ≤ x &lt; start + length.</summary>
    public static bool InWindow(uint x, uint start, uint length) => x - start < length;
}
