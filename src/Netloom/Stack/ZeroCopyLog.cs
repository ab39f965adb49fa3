namespace Netloom.Stack;

/// <summary>
/// One zero-copy completion: the sends numbered <see cref="First"/> to <see cref="Last"/>
/// (inclusive, the kernel's [lo, hi] of ee_info and ee_data; numbers count a socket's zero-copy
/// sends from 0 and wrap at 2^32) no longer reference the caller's memory. <see cref="Copied"/>:
/// the stack copied their bytes rather than referencing them (the kernel's
/// SO_EE_CODE_ZEROCOPY_COPIED); the memory was free once the send returned, and sends this small
/// gain nothing from zero-copy.
/// </summary>
public readonly record struct ZeroCopyCompletion(uint First, uint Last, bool Copied)
{
    /// <summary>How many sends the completion covers.</summary>
    public long Count => (long)(uint)(Last - First) + 1;
}

/// <summary>
/// A socket's completions waiting to be read, coalesced as the kernel does: a completion that
/// continues the last one (its first number is the last one's plus one) with the same code
/// extends it. The log is bounded: past <see cref="MaxEntries"/> ranges a completion extends the
/// last range whatever its code, and the range is marked copied if either was (a caller that reads
/// "copied" only stops using zero-copy, which is the safe reading). Not thread-safe: the stack lock guards it.
/// </summary>
internal sealed class ZeroCopyLog
{
    internal const int MaxEntries = 64;
    private readonly Queue<ZeroCopyCompletion> _entries = new();
    private ZeroCopyCompletion _tail;
    private bool _hasTail;

    public bool IsEmpty => !_hasTail;
    /// <summary>Completions recorded since the socket opened (before coalescing).</summary>
    public long Completed { get; private set; }

    public void Complete(uint id, bool copied)
    {
        Completed++;
        // A socket numbers its sends without gaps, so each completion continues the last one;
        // a range stops at 2^32 - 1 sends, as the kernel's (skb_zerocopy_notify_extend).
        if (_hasTail && _tail.Last + 1 == id && _tail.Count < uint.MaxValue)
        {
            if (_tail.Copied == copied || _entries.Count >= MaxEntries - 1)
            {
                _tail = _tail with { Last = id, Copied = _tail.Copied | copied };
                return;
            }
        }
        if (_hasTail) _entries.Enqueue(_tail);
        _tail = new ZeroCopyCompletion(id, id, copied);
        _hasTail = true;
    }

    /// <summary>Takes the oldest waiting completion.</summary>
    public bool TryTake(out ZeroCopyCompletion completion)
    {
        if (_entries.TryDequeue(out completion)) return true;
        if (!_hasTail) return false;
        completion = _tail;
        _hasTail = false;
        return true;
    }
}
