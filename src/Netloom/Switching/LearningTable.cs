using System.Numerics;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Switching;

/// <summary>
/// A learning bridge's MAC table with a fixed size. Open addressing with a keyed hash (so an
/// attacker cannot aim at one bucket) and a probe window of 8. An insert into a full window
/// evicts the stalest entry in it, so a busy station, refreshed by every frame it sends, is not
/// the one evicted; if it ever is, its next frame teaches it again. A flood of random source
/// MACs therefore neither grows memory nor pins anyone out. Entries age after
/// <see cref="AgeTime"/>. A last-source cache skips the table for runs of frames from one
/// station, as VALE does, and a last-destination cache (dropped whenever an entry changes, and
/// after a second) skips it for runs of frames to one station.
/// </summary>
public sealed class LearningTable : ILookup, IMacLookup
{
    private const int Window = 8;

    private struct Entry
    {
        public ulong Key;      // MAC + 1; zero marks an empty entry
        public int Port;
        public long LastSeen;  // nanoseconds
    }

    private readonly Entry[] _entries;
    private readonly int _shift;
    private readonly ulong _seed;
    private ulong _lastKey;
    private int _lastPort = -1;
    private long _lastRefresh;
    // Last-destination cache: valid while no entry changed and for at most a second (so aging applies).
    private int _version;
    private ulong _lastDstKey;
    private int _lastDstPort, _lastDstVersion = -1;
    private long _lastDstAt;

    public LearningTable(int capacity = 16_384, Duration? ageTime = null, ulong? seed = null)
    {
        if (capacity < Window || capacity > 1 << 24 || !BitOperations.IsPow2(capacity))
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"capacity must be a power of two from {Window} to 2^24");
        _entries = new Entry[capacity];
        _shift = 64 - BitOperations.Log2((uint)capacity);
        _seed = seed ?? (ulong)Random.Shared.NextInt64() | 1;
        AgeTime = ageTime ?? Duration.FromSeconds(300);
    }

    public Duration AgeTime { get; }
    public int Capacity => _entries.Length;
    public long Evictions { get; private set; }

    /// <summary>How many live entries the table holds (a scan: for tests and statistics, not the hot path).</summary>
    public int Count(Instant now)
    {
        int n = 0;
        foreach (ref readonly var e in _entries.AsSpan()) if (e.Key != 0 && now.Nanoseconds - e.LastSeen < AgeTime.Nanoseconds) n++;
        return n;
    }

    private int Bucket(ulong key) => (int)(((key ^ _seed) * 0x9E3779B97F4A7C15UL) >> _shift);

    public void Learn(MacAddress source, int port, Instant now) => Learn(source.ToUInt64(), port, now.Nanoseconds);

    /// <summary>The hot path: a 48-bit MAC as a number, time in nanoseconds.</summary>
    internal void Learn(ulong mac, int port, long t)
    {
        if ((mac & (1UL << 40)) != 0) return; // a group address is never a station's location
        ulong key = mac + 1;
        // Same station, same port, refreshed within the last second: nothing to do.
        if (key == _lastKey && port == _lastPort && t - _lastRefresh < 1_000_000_000) return;
        int mask = _entries.Length - 1, b = Bucket(key), victim = -1;
        long oldest = long.MaxValue;
        for (int i = 0; i < Window; i++)
        {
            ref Entry e = ref _entries[(b + i) & mask];
            if (e.Key == key)
            {
                if (e.Port != port) _version++;
                e.Port = port;
                e.LastSeen = t;
                Remember(key, port, t);
                return;
            }
            if (e.Key == 0 || t - e.LastSeen >= AgeTime.Nanoseconds) { victim = (b + i) & mask; oldest = long.MinValue; continue; }
            if (oldest != long.MinValue && e.LastSeen < oldest) { oldest = e.LastSeen; victim = (b + i) & mask; }
        }
        ref Entry v = ref _entries[victim];
        if (v.Key != 0 && t - v.LastSeen < AgeTime.Nanoseconds) Evictions++;
        v = new Entry { Key = key, Port = port, LastSeen = t };
        _version++;
        Remember(key, port, t);
    }

    private void Remember(ulong key, int port, long t)
    {
        _lastKey = key;
        _lastPort = port;
        _lastRefresh = t;
    }

    public int Lookup(MacAddress destination, Instant now) => Lookup(destination.ToUInt64(), now.Nanoseconds);

    internal int Lookup(ulong mac, long t)
    {
        if ((mac & (1UL << 40)) != 0) return ILookup.Flood;
        ulong key = mac + 1;
        if (key == _lastDstKey && _version == _lastDstVersion && t - _lastDstAt < 1_000_000_000) return _lastDstPort;
        int mask = _entries.Length - 1, b = Bucket(key);
        for (int i = 0; i < Window; i++)
        {
            ref Entry e = ref _entries[(b + i) & mask];
            if (e.Key != key) continue;
            if (t - e.LastSeen >= AgeTime.Nanoseconds) return ILookup.Flood;
            (_lastDstKey, _lastDstPort, _lastDstVersion, _lastDstAt) = (key, e.Port, _version, t);
            return e.Port;
        }
        return ILookup.Flood;
    }

    void IMacLookup.Learn(ulong source, int port, long nanoseconds) => Learn(source, port, nanoseconds);
    int IMacLookup.Lookup(ulong destination, long nanoseconds) => Lookup(destination, nanoseconds);

    /// <summary>Appends every live entry (MAC, port) to <paramref name="into"/> (a scan: for the XDP fast path's sync, not the hot path).</summary>
    internal void CopyLive(long t, List<(ulong Mac, int Port)> into)
    {
        foreach (ref readonly var e in _entries.AsSpan())
            if (e.Key != 0 && t - e.LastSeen < AgeTime.Nanoseconds) into.Add((e.Key - 1, e.Port));
    }

    public void ForgetPort(int port)
    {
        foreach (ref var e in _entries.AsSpan()) if (e.Key != 0 && e.Port == port) e = default;
        if (_lastPort == port) _lastPort = -1;
        _version++;
    }
}
