using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// The neighbour cache of both IP versions: ARP's (RFC 826) and NDP's (RFC 4861 §7.3; IPv6
/// entries use all five states, ARP's only Incomplete and Reachable) with a fixed number of entries. An unresolved neighbour holds a
/// bounded queue of packets waiting for its address (per neighbour and in total, in one
/// buffer sized at construction). Resolution is retried on a timer and given up after a few
/// attempts; resolved entries expire after a lifetime. When full, the stalest entry is reused.
/// </summary>
internal sealed class NeighborCache
{
    internal enum State : byte { Free, Incomplete, Reachable, Stale, Delay, Probe }

    internal struct Entry
    {
        // Laid out largest first and packed small: 256 entries sit in every stack.
        public IpAddr Address;
        public MacAddress Mac;
        public long Updated;     // nanoseconds
        public int Timer;        // retry (incomplete) or expiry (reachable)
        public int PendingHead;  // first waiting packet, or -1
        public short PendingCount;
        public byte Attempts;
        public bool IsRouter;    // NDP: the neighbour said it is a router (NA's R flag, or an RA)
        public State State;
    }

    private struct Pending
    {
        public int Next;
        public int Length;
    }

    private readonly Entry[] _entries;
    private readonly Pending[] _pending;
    private readonly byte[]?[] _pendingBytes; // per pending slot, made on first use (slots are reused last-in first-out)
    private readonly int _slotSize;
    private readonly Stack<int> _freePending;
    private readonly int _perNeighbor;

    public NeighborCache(int capacity, int pendingPerNeighbor, int pendingTotal, int maxPacket)
    {
        _entries = new Entry[capacity];
        for (int i = 0; i < capacity; i++) _entries[i] = new Entry { Timer = -1, PendingHead = -1 };
        _pending = new Pending[pendingTotal];
        _slotSize = maxPacket;
        _pendingBytes = new byte[]?[pendingTotal];
        _freePending = new Stack<int>(pendingTotal);
        for (int i = pendingTotal - 1; i >= 0; i--) _freePending.Push(i);
        _perNeighbor = pendingPerNeighbor;
    }

    public int Capacity => _entries.Length;
    public ref Entry this[int i] => ref _entries[i];

    private int _lastHit;

    public int Find(Ipv4Address address) => Find(IpAddr.FromIpv4(address));
    public int FindOrAdd(Ipv4Address address, Instant now, out bool created) => FindOrAdd(IpAddr.FromIpv4(address), now, out created);
    public bool TryLookup(Ipv4Address address, out MacAddress mac) => TryLookup(IpAddr.FromIpv4(address), out mac);

    /// <summary>NDP: an address to send to now: any resolved state (Stale, Delay and Probe still send, RFC 4861 §7.3.3).</summary>
    public bool TryLookupUsable(IpAddr address, out int entry)
    {
        entry = Find(address);
        return entry >= 0 && _entries[entry].State >= State.Reachable;
    }

    public int Find(IpAddr address)
    {
        // Most traffic goes to one neighbour: try the last hit before scanning.
        ref var hit = ref _entries[_lastHit];
        if (hit.State != State.Free && hit.Address == address) return _lastHit;
        for (int i = 0; i < _entries.Length; i++)
            if (_entries[i].State != State.Free && _entries[i].Address == address) return _lastHit = i;
        return -1;
    }

    /// <summary>The entry for <paramref name="address"/>, making one (reusing the stalest) if needed. <paramref name="evicted"/> is the entry's previous state.</summary>
    public int FindOrAdd(IpAddr address, Instant now, out bool created)
    {
        int found = Find(address);
        created = found < 0;
        if (found >= 0) return found;
        int victim = 0;
        long oldest = long.MaxValue;
        for (int i = 0; i < _entries.Length; i++)
        {
            if (_entries[i].State == State.Free) { victim = i; break; }
            if (_entries[i].Updated < oldest) { oldest = _entries[i].Updated; victim = i; }
        }
        DropPending(victim);
        ref var e = ref _entries[victim];
        int timer = e.Timer;
        e = new Entry { State = State.Incomplete, Address = address, Updated = now.Nanoseconds, Timer = timer, PendingHead = -1 };
        return victim;
    }

    public bool TryLookup(IpAddr address, out MacAddress mac)
    {
        int i = Find(address);
        if (i >= 0 && _entries[i].State == State.Reachable) { mac = _entries[i].Mac; return true; }
        mac = default;
        return false;
    }

    /// <summary>Queues a copy of an IP packet until the neighbour resolves; false when over the limits.</summary>
    public bool Enqueue(int entry, ReadOnlySpan<byte> packet)
    {
        ref var e = ref _entries[entry];
        if (packet.Length > _slotSize || e.PendingCount >= _perNeighbor || !_freePending.TryPop(out int p)) return false;
        packet.CopyTo(_pendingBytes[p] ??= new byte[_slotSize]);
        _pending[p] = new Pending { Next = -1, Length = packet.Length };
        // Append at the tail to keep order.
        if (e.PendingHead < 0) e.PendingHead = p;
        else
        {
            int t = e.PendingHead;
            while (_pending[t].Next >= 0) t = _pending[t].Next;
            _pending[t].Next = p;
        }
        e.PendingCount++;
        return true;
    }

    /// <summary>Takes the next waiting packet of an entry; the span is valid until the next call.</summary>
    public bool TryDequeue(int entry, out ReadOnlySpan<byte> packet)
    {
        ref var e = ref _entries[entry];
        packet = default;
        if (e.PendingCount == 0 || e.PendingHead < 0) return false;
        int p = e.PendingHead;
        e.PendingHead = _pending[p].Next;
        e.PendingCount--;
        _freePending.Push(p);
        packet = _pendingBytes[p].AsSpan(0, _pending[p].Length);
        return true;
    }

    /// <summary>Discards an entry's waiting packets; returns how many.</summary>
    public int DropPending(int entry)
    {
        int n = 0;
        while (TryDequeue(entry, out _)) n++;
        return n;
    }

    public void Free(int entry)
    {
        DropPending(entry);
        ref var e = ref _entries[entry];
        int timer = e.Timer;
        e = new Entry { Timer = timer, PendingHead = -1 };
    }
}
