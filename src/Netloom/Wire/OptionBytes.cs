using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Netloom.Wire;

/// <summary>
/// Up to 40 bytes of header options (the most IPv4 or TCP can carry) held inline, so a repr
/// that carries options stays a plain value with no allocation.
/// </summary>
public struct OptionBytes
{
    public const int Capacity = 40;

    [InlineArray(Capacity)]
    private struct Storage { private byte _e0; }

    private Storage _bytes;
    private byte _length;

    public readonly int Length => _length;

    public static OptionBytes From(ReadOnlySpan<byte> bytes)
    {
        var o = new OptionBytes();
        o.Set(bytes);
        return o;
    }

    public void Set(ReadOnlySpan<byte> bytes)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes.Length, Capacity, nameof(bytes));
        bytes.CopyTo(_bytes);
        _length = (byte)bytes.Length;
    }

    /// <summary>Appends bytes; false when they do not fit.</summary>
    public bool TryAppend(ReadOnlySpan<byte> bytes)
    {
        if (_length + bytes.Length > Capacity) return false;
        bytes.CopyTo(((Span<byte>)_bytes)[_length..]);
        _length += (byte)bytes.Length;
        return true;
    }

    public void Clear() => _length = 0;

    [UnscopedRef]
    public readonly ReadOnlySpan<byte> Span => ((ReadOnlySpan<byte>)_bytes)[.._length];
}
