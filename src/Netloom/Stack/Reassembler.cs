using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// IPv4 and IPv6 reassembly (RFC 791 §3.2, RFC 815; RFC 8200 §4.5) with bounded memory: a fixed number of datagrams
/// under way, fixed byte budgets in total and per source, and a timeout. Overlapping fragments
/// drop the whole datagram (RFC 5722's rule, applied to IPv4 as Linux does). Each datagram
/// keeps its fragments as ranges in its slot's buffer, made the first time the slot is used (a
/// stack that never reassembles carries none) and kept for the next datagram.
/// </summary>
internal sealed class Reassembler
{
    private const int MaxRanges = 64;

    private struct Slot
    {
        // Largest first (IpAddr is 16-byte aligned), so 64 slots stay small.
        public IpAddr Source, Destination;
        public long Created;     // nanoseconds: the oldest is evicted when every slot is in use
        public uint Id;
        public int Total;        // payload length once the last fragment arrived, else -1
        public int Received;     // payload bytes held
        public int Timer;
        public int RangeCount;
        public byte Protocol;
        public byte HeaderLength;
        public bool Used;
    }

    private readonly Slot[] _slots;
    private readonly (int Start, int End)[]?[] _ranges; // per slot, made with its buffer
    private readonly byte[]?[] _buffers; // per slot, made on first use
    private readonly byte[] _headers;   // the first fragment's IPv4 header per slot (up to 60 bytes)
    private readonly int _maxDatagram;
    private readonly int _totalBudget, _perSource;
    private int _held;

    public Reassembler(int slots, int totalBytes, int perSourceBytes)
    {
        _maxDatagram = 65535;
        _slots = new Slot[slots];
        for (int i = 0; i < slots; i++) _slots[i].Timer = -1;
        _ranges = new (int, int)[]?[slots];
        // A slot's buffer holds a full-size datagram; the byte budgets bound what is held.
        _buffers = new byte[]?[slots];
        _headers = new byte[slots * 60];
        _totalBudget = totalBytes;
        _perSource = perSourceBytes;
    }

    public int SlotCount => _slots.Length;
    public int HeldBytes => _held;
    public int InProgress => _slots.Count(s => s.Used);
    public int TimerOf(int slot) => _slots[slot].Timer;
    public void SetTimer(int slot, int timer) => _slots[slot].Timer = timer;

    public enum Result { Incomplete, Complete, Overlap, Duplicate, NoMemory }

    /// <summary>
    /// Adds a fragment. On <see cref="Result.Complete"/>, <paramref name="datagram"/> holds the whole
    /// payload and <paramref name="header"/> the first fragment's header; the slot is freed when the
    /// caller calls <see cref="Free"/>.
    /// </summary>
    public Result Add(in Ipv4Packet fragment, Instant now, out int slot, out bool created, out bool evicted) =>
        Add(IpAddr.FromIpv4(fragment.Source), IpAddr.FromIpv4(fragment.Destination), fragment.Identification, fragment.Protocol,
            fragment.FragmentOffset * 8, fragment.MoreFragments, fragment.Payload, fragment.Header, now, out slot, out created, out evicted);

    /// <summary>
    /// Adds an IPv6 fragment (RFC 8200 §4.5): <paramref name="data"/> is the fragment's part of the
    /// fragmentable part; <paramref name="unfragmentable"/> is the length of the IPv6 payload before
    /// the fragment header, which counts against the 65535-byte payload limit. The key is source,
    /// destination and identification (and the fragment header's next header).
    /// </summary>
    public Result Add(Ipv6Address source, Ipv6Address destination, in Ipv6FragmentRepr fragment, int unfragmentable, ReadOnlySpan<byte> data,
        Instant now, out int slot, out bool created, out bool evicted) =>
        Add(new IpAddr(source.Value), new IpAddr(destination.Value), fragment.Identification, fragment.NextHeader,
            fragment.FragmentOffset * 8, fragment.MoreFragments, data, default, now, out slot, out created, out evicted, unfragmentable + Ipv6Field.HeaderLength);

    private Result Add(IpAddr source, IpAddr destination, uint id, byte protocol, int start, bool more, ReadOnlySpan<byte> data,
        ReadOnlySpan<byte> header, Instant now, out int slot, out bool created, out bool evicted, int headerLength = -1)
    {
        created = evicted = false;
        if (headerLength < 0) headerLength = header.Length;
        slot = Find(source, destination, id, protocol);
        int end = start + data.Length;
        // A fragment that cannot belong to a valid datagram ends it (a middle fragment must carry a multiple of 8 bytes).
        // The whole datagram, with this header, must fit the 16-bit length (as Linux checks end + ihl; IPv6: RFC 8200 §4.5).
        if (end + headerLength > _maxDatagram + (header.IsEmpty ? Ipv6Field.HeaderLength : 0) || (more && data.Length % 8 != 0)) return Result.Overlap;
        if (slot < 0)
        {
            if (SourceBytes(source) + data.Length > _perSource) return Result.NoMemory;
            slot = FreeSlot();
            if (slot < 0)
            {
                // Every slot busy: the oldest incomplete datagram goes. Real datagrams complete in
                // microseconds, so a flood of never-finished ones evicts only its own kind.
                slot = Oldest();
                Free(slot);
                evicted = true;
            }
            if (_held + data.Length > _totalBudget) return Result.NoMemory;
            created = true;
            ref var n = ref _slots[slot];
            n = new Slot { Used = true, Source = source, Destination = destination, Id = id,
                Protocol = protocol, Total = -1, Timer = n.Timer, Created = now.Nanoseconds };
        }
        ref var s = ref _slots[slot];
        // RFC 5722: overlapping fragments end the datagram. An exact duplicate (the network
        // delivered a fragment twice) is only dropped itself, as Linux does.
        var ranges = _ranges[slot].AsSpan(0, s.RangeCount);
        foreach (var (a, b) in ranges)
        {
            if (a == start && b == end) return Result.Duplicate;
            if (start < b && a < end) return Result.Overlap;
        }
        if (s.RangeCount == MaxRanges) return Result.NoMemory;
        if (!more)
        {
            if (s.Total >= 0 && s.Total != end) return Result.Overlap;
            s.Total = end;
        }
        if (s.Total >= 0 && end > s.Total) return Result.Overlap;
        if (SourceBytes(source) + data.Length > _perSource || _held + data.Length > _totalBudget) return Result.NoMemory;
        data.CopyTo((_buffers[slot] ??= new byte[_maxDatagram]).AsSpan(start));
        (_ranges[slot] ??= new (int, int)[MaxRanges])[s.RangeCount++] = (start, end);
        s.Received += data.Length;
        _held += data.Length;
        if (start == 0)
        {
            header.CopyTo(_headers.AsSpan(slot * 60));
            s.HeaderLength = (byte)header.Length;
        }
        return s.Total >= 0 && s.Received == s.Total ? Result.Complete : Result.Incomplete;
    }

    public ReadOnlySpan<byte> Payload(int slot) => _buffers[slot].AsSpan(0, _slots[slot].Total);
    public ReadOnlySpan<byte> FirstHeader(int slot) => _headers.AsSpan(slot * 60, _slots[slot].HeaderLength);

    public void Free(int slot)
    {
        ref var s = ref _slots[slot];
        if (!s.Used) return;
        _held -= s.Received;
        int timer = s.Timer;
        s = new Slot { Timer = timer };
    }

    /// <summary>The key's protocol: IPv4's protocol, or the IPv6 fragment header's next header.</summary>
    public byte ProtocolOf(int slot) => _slots[slot].Protocol;

    private int Find(IpAddr src, IpAddr dst, uint id, byte protocol)
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            ref var s = ref _slots[i];
            if (s.Used && s.Id == id && s.Source == src && s.Destination == dst && s.Protocol == protocol) return i;
        }
        return -1;
    }

    private int FreeSlot()
    {
        for (int i = 0; i < _slots.Length; i++) if (!_slots[i].Used) return i;
        return -1;
    }

    private int Oldest()
    {
        int oldest = 0;
        for (int i = 1; i < _slots.Length; i++) if (_slots[i].Created < _slots[oldest].Created) oldest = i;
        return oldest;
    }

    private int SourceBytes(IpAddr src)
    {
        int n = 0;
        foreach (ref readonly var s in _slots.AsSpan()) if (s.Used && s.Source == src) n += s.Received;
        return n;
    }
}
