using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Netloom.Wire;

/// <summary>TCP option kinds (IANA registry; RFC 9293, RFC 7323, RFC 2018).</summary>
public enum TcpOptionKind : byte
{
    EndOfList = 0,
    NoOperation = 1,
    MaxSegmentSize = 2,
    WindowScale = 3,
    SackPermitted = 4,
    Sack = 5,
    Timestamp = 8,
}

/// <summary>A SACK block: the left edge and the right edge (one past the last byte).</summary>
public readonly record struct SackBlock(uint Left, uint Right);

/// <summary>The timestamp option's TSval and TSecr (RFC 7323 §3).</summary>
public readonly record struct TcpTimestamp(uint Value, uint Echo);

/// <summary>Up to four SACK blocks held inline (40 option bytes fit at most four).</summary>
public struct SackBlocks
{
    public const int Capacity = 4;

    [InlineArray(Capacity)]
    private struct Storage { private SackBlock _e0; }

    private Storage _blocks;
    private byte _count;

    public readonly int Count => _count;
    public readonly SackBlock this[int index] =>
        (uint)index < _count ? _blocks[index] : throw new ArgumentOutOfRangeException(nameof(index));

    public bool TryAdd(SackBlock block)
    {
        if (_count == Capacity) return false;
        _blocks[_count++] = block;
        return true;
    }

    public void Clear() => _count = 0;
}

/// <summary>
/// Walks a TCP options area. Every option it yields has been checked: its length byte is
/// present, at least 2, inside the area, and right for the known kinds.
/// </summary>
public ref struct TcpOptionReader
{
    private readonly ReadOnlySpan<byte> _area;
    private int _pos;

    public TcpOptionReader(ReadOnlySpan<byte> area) { _area = area; _pos = 0; }

    /// <summary>Byte offset of the options area inside the TCP header, for error messages.</summary>
    private const int AreaOffset = 20;

    /// <summary>
    /// Reads the next option into <paramref name="option"/> (kind byte first). After End of
    /// Option List, <paramref name="option"/> is the EOL byte and everything after it.
    /// </summary>
    public bool TryNext(out ReadOnlySpan<byte> option, out WireError error)
    {
        option = default;
        error = default;
        if (_pos >= _area.Length) return false;
        byte kind = _area[_pos];
        if (kind == (byte)TcpOptionKind.EndOfList)
        {
            option = _area[_pos..];
            _pos = _area.Length;
            return true;
        }
        if (kind == (byte)TcpOptionKind.NoOperation)
        {
            option = _area.Slice(_pos++, 1);
            return true;
        }
        if (_pos + 1 >= _area.Length)
        {
            error = new(Layer.Tcp, WireErrorReason.OptionOverrun, kind, AreaOffset + _pos, _area.Length);
            _pos = _area.Length;
            return false;
        }
        int len = _area[_pos + 1];
        bool lengthOk = len >= 2 && (TcpOptionKind)kind switch
        {
            TcpOptionKind.MaxSegmentSize => len == 4,
            TcpOptionKind.WindowScale => len == 3,
            TcpOptionKind.SackPermitted => len == 2,
            TcpOptionKind.Sack => len >= 10 && (len - 2) % 8 == 0,
            TcpOptionKind.Timestamp => len == 10,
            _ => true,
        };
        if (!lengthOk)
        {
            error = new(Layer.Tcp, WireErrorReason.BadOptionLength, kind, AreaOffset + _pos, len);
            _pos = _area.Length;
            return false;
        }
        if (_pos + len > _area.Length)
        {
            error = new(Layer.Tcp, WireErrorReason.OptionOverrun, kind, AreaOffset + _pos, _area.Length);
            _pos = _area.Length;
            return false;
        }
        option = _area.Slice(_pos, len);
        _pos += len;
        return true;
    }

    /// <summary>Checks a whole options area.</summary>
    public static bool Validate(ReadOnlySpan<byte> area, out WireError error)
    {
        var r = new TcpOptionReader(area);
        while (r.TryNext(out _, out error)) { }
        return error.IsNone;
    }
}

/// <summary>
/// The order in which options appeared in a parsed header, so re-emitting reproduces it byte
/// for byte. Entries are option kinds for the known options, NOP and EOL, or
/// <see cref="Raw"/> for an option kept as bytes (unknown kinds and repeats).
/// </summary>
public struct TcpOptionLayout
{
    public const byte Raw = 0xFF;

    [InlineArray(OptionBytes.Capacity)]
    private struct Storage { private byte _e0; }

    private Storage _entries;
    private byte _count;

    public readonly int Count => _count;
    public readonly byte this[int index] => _entries[index];
    public void Add(byte entry) => _entries[_count++] = entry; // at most one entry per option byte: cannot overflow
    public void Clear() => _count = 0;
}

/// <summary>Writes TCP options; shared by length computation and emission.</summary>
internal static class TcpOptionWriter
{
    public static void Mss(Span<byte> d, ref int n, bool write, ushort mss)
    {
        if (write)
        {
            d[n] = 2; d[n + 1] = 4;
            BinaryPrimitives.WriteUInt16BigEndian(d[(n + 2)..], mss);
        }
        n += 4;
    }

    public static void WindowScale(Span<byte> d, ref int n, bool write, byte shift)
    {
        if (write) { d[n] = 3; d[n + 1] = 3; d[n + 2] = shift; }
        n += 3;
    }

    public static void SackPermitted(Span<byte> d, ref int n, bool write)
    {
        if (write) { d[n] = 4; d[n + 1] = 2; }
        n += 2;
    }

    public static void Timestamp(Span<byte> d, ref int n, bool write, TcpTimestamp ts)
    {
        if (write)
        {
            d[n] = 8; d[n + 1] = 10;
            BinaryPrimitives.WriteUInt32BigEndian(d[(n + 2)..], ts.Value);
            BinaryPrimitives.WriteUInt32BigEndian(d[(n + 6)..], ts.Echo);
        }
        n += 10;
    }

    public static void Sack(Span<byte> d, ref int n, bool write, in SackBlocks blocks)
    {
        if (write)
        {
            d[n] = 5; d[n + 1] = (byte)(2 + 8 * blocks.Count);
            for (int i = 0; i < blocks.Count; i++)
            {
                BinaryPrimitives.WriteUInt32BigEndian(d[(n + 2 + 8 * i)..], blocks[i].Left);
                BinaryPrimitives.WriteUInt32BigEndian(d[(n + 6 + 8 * i)..], blocks[i].Right);
            }
        }
        n += 2 + 8 * blocks.Count;
    }

    public static void Byte(Span<byte> d, ref int n, bool write, byte b)
    {
        if (write) d[n] = b;
        n++;
    }

    public static void Bytes(Span<byte> d, ref int n, bool write, ReadOnlySpan<byte> bytes)
    {
        if (write) bytes.CopyTo(d[n..]);
        n += bytes.Length;
    }
}
