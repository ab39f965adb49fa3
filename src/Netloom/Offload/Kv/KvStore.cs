namespace Netloom.Offload.Kv;

/// <summary>Byte-array keys, looked up by span without allocating (.NET's alternate lookup).</summary>
internal sealed class ByteKeyComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
{
    public static readonly ByteKeyComparer Instance = new();
    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
    public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);
    public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);
    public int GetHashCode(ReadOnlySpan<byte> alternate)
    {
        var h = new HashCode(); // seeded per process: clients cannot aim collisions at one bucket
        h.AddBytes(alternate);
        return h.ToHashCode();
    }
    public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
}

/// <summary>A stored value: a string, or a list (a ring-buffer deque of byte arrays).</summary>
internal sealed class KvValue
{
    public byte[]? String;
    public int StringLength;
    public byte[][]? List;
    public int ListHead, ListCount;
    public long ExpiresAtMs; // 0: never

    public void SetString(ReadOnlySpan<byte> value)
    {
        List = null;
        if (String is null || String.Length < value.Length || String.Length > 4 * value.Length + 64) String = new byte[value.Length];
        value.CopyTo(String);
        StringLength = value.Length;
    }

    public ReadOnlySpan<byte> StringValue => String.AsSpan(0, StringLength);

    public void Push(ReadOnlySpan<byte> item, bool left)
    {
        List ??= new byte[8][];
        if (ListCount == List.Length)
        {
            var grown = new byte[List.Length * 2][];
            for (int i = 0; i < ListCount; i++) grown[i] = List[(ListHead + i) % List.Length];
            List = grown;
            ListHead = 0;
        }
        if (left)
        {
            ListHead = (ListHead - 1 + List.Length) % List.Length;
            List[ListHead] = item.ToArray();
        }
        else List[(ListHead + ListCount) % List.Length] = item.ToArray();
        ListCount++;
    }

    public byte[]? Pop(bool left)
    {
        if (List is null || ListCount == 0) return null;
        int at = left ? ListHead : (ListHead + ListCount - 1) % List.Length;
        var item = List[at];
        List[at] = null!;
        if (left) ListHead = (ListHead + 1) % List.Length;
        ListCount--;
        return item;
    }

    public byte[] At(int index) => List![(ListHead + index) % List.Length];
}

/// <summary>The key space, shared by every connection and engine thread (one lock: Redis itself is single-threaded).</summary>
internal sealed class KvStore
{
    public readonly Lock Lock = new();
    private readonly Dictionary<byte[], KvValue> _map = new(ByteKeyComparer.Instance);
    private readonly Dictionary<byte[], KvValue>.AlternateLookup<ReadOnlySpan<byte>> _lookup;

    public KvStore() => _lookup = _map.GetAlternateLookup<ReadOnlySpan<byte>>();

    public int Count => _map.Count;

    /// <summary>The live value of a key (expired ones are removed on the way).</summary>
    public KvValue? Get(ReadOnlySpan<byte> key, long nowMs)
    {
        if (!_lookup.TryGetValue(key, out var v)) return null;
        if (v.ExpiresAtMs != 0 && v.ExpiresAtMs <= nowMs) { _lookup.Remove(key); return null; }
        return v;
    }

    public KvValue GetOrAdd(ReadOnlySpan<byte> key, long nowMs)
    {
        var v = Get(key, nowMs);
        if (v is not null) return v;
        v = new KvValue();
        _lookup[key] = v;
        return v;
    }

    public bool Remove(ReadOnlySpan<byte> key, long nowMs) => Get(key, nowMs) is not null && _lookup.Remove(key);
}
