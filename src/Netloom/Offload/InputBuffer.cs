namespace Netloom.Offload;

/// <summary>
/// The bytes of a request that has not fully arrived, kept per connection and joined with the
/// next bytes. Bounded: past <see cref="Limit"/> the connection is to be closed.
/// </summary>
internal sealed class InputBuffer
{
    public const int Limit = 64 << 20;
    private byte[] _pending = [];  // made on first use: an idle slot holds no array
    private int _length;

    public void Reset() => _length = 0;

    /// <summary>Empties the buffer and lets go of a large array, so an idle slot holds no more than a small one.</summary>
    public void Trim()
    {
        _length = 0;
        if (_pending.Length > 64 << 10) _pending = [];
    }

    /// <summary>Hands the handler everything it can use now; false when the unused rest exceeds the limit.</summary>
    public bool Feed(IConnectionHandler handler, Connection c, ReadOnlySpan<byte> data)
    {
        if (_length == 0)
        {
            int used = handler.OnData(c, data);
            return Keep(data[used..]);
        }
        if (!Keep(data)) return false;
        int consumed = handler.OnData(c, _pending.AsSpan(0, _length));
        _pending.AsSpan(consumed, _length - consumed).CopyTo(_pending);
        _length -= consumed;
        return true;
    }

    private bool Keep(ReadOnlySpan<byte> rest)
    {
        if (rest.IsEmpty) return true;
        if (_length + rest.Length > Limit) return false;
        if (_length + rest.Length > _pending.Length) Array.Resize(ref _pending, Math.Max(Math.Max(4096, _pending.Length * 2), _length + rest.Length));
        rest.CopyTo(_pending.AsSpan(_length));
        _length += rest.Length;
        return true;
    }
}
