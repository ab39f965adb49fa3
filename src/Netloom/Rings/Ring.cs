using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Netloom.Rings;

/// <summary>One ring slot, 8 bytes: which buffer, how many bytes of it, and flags.</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
public struct Slot
{
    /// <summary>Index of the buffer in the ring's pool. Swapping indexes between rings moves packets without copying.</summary>
    public uint BufferIndex;
    public ushort Length;
    public SlotFlags Flags;
}

[Flags]
public enum SlotFlags : ushort
{
    None = 0,
    /// <summary>Set by the user after changing <see cref="Slot.BufferIndex"/> (netmap's NS_BUF_CHANGED).</summary>
    BufferChanged = 1,
    /// <summary>
    /// The frame's TCP or UDP checksum was not computed: its field holds only the folded
    /// pseudo-header sum (virtio-net's NEEDS_CSUM, the kernel's CHECKSUM_PARTIAL). A port passes
    /// it between two ends that both declared <see cref="PortOptions.ChecksumOffload"/>, and
    /// clears it everywhere else.
    /// </summary>
    ChecksumPartial = 2,
}

public enum RingDirection : byte { Tx, Rx }

/// <summary>
/// The part of a ring that may live in memory shared with another thread or process. Each group
/// has its own cache line, and each line has exactly one writer.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal struct RingHeader
{
    // Written by the user side of the ring (the thread that calls the port's TxSync/RxSync).
    [FieldOffset(0)] public uint Head;
    [FieldOffset(4)] public uint Cur;
    /// <summary>Non-zero while the user sleeps on <see cref="Tail"/>; the backend wakes it after publishing.</summary>
    [FieldOffset(8)] public uint UserWaiting;

    // Written by the backend side (the producer that fills an RX ring, or the TX sync itself).
    [FieldOffset(64)] public uint Tail;
    /// <summary>Non-zero while the backend sleeps on <see cref="Head"/> waiting for space.</summary>
    [FieldOffset(68)] public uint BackendWaiting;

    // Constant after set-up.
    [FieldOffset(128)] public uint NumSlots;
    [FieldOffset(132)] public uint BufferSize;
}

/// <summary>
/// A netmap ring: slots of {buffer index, length, flags} with three indexes.
/// <code>
///              user owns                    backend owns
///   ... ─┬──────────────────────┬─────────────────────────────┬─ ...
///        head (= cur)           tail                          head - 1
///
///   TX: [head, tail) are free slots the user may fill; after filling it moves head on and calls
///       TxSync, which sends [old head, head) and moves tail on as slots come free.
///   RX: [head, tail) hold received packets; the user reads them, moves head on and calls
///       RxSync, which hands back the slots it read and moves tail on over new packets.
/// </code>
/// One slot always stays empty, so head == tail means "the user owns nothing", never "all".
/// The user writes <see cref="Head"/> and <see cref="Cur"/>; only a sync changes <see cref="Tail"/>.
/// </summary>
public sealed unsafe class Ring
{
    internal readonly RingHeader* Header;
    internal readonly Slot* Slots;
    private readonly uint _size;
    private readonly uint _fixedBufferBase; // non-zero: slot i always uses buffer base + i (shared-memory rings)
    private uint _tail;                     // the user's view of tail, refreshed by sync

    internal Ring(RingHeader* header, Slot* slots, uint size, PacketPool pool, RingDirection direction, uint fixedBufferBase = 0)
    {
        // A power of two lets SlotBatch keep any index inside the ring with a mask, no check per slot.
        if (size < 2 || !BitOperations.IsPow2(size)) throw new ArgumentOutOfRangeException(nameof(size), size, "a ring's size must be a power of two");
        if (fixedBufferBase != 0 && (ulong)fixedBufferBase + size > (ulong)pool.Count)
            throw new ArgumentOutOfRangeException(nameof(fixedBufferBase), fixedBufferBase, $"buffers {fixedBufferBase}..{fixedBufferBase + size - 1} are not all in a pool of {pool.Count}");
        Header = header;
        Slots = slots;
        _size = size;
        Pool = pool;
        Direction = direction;
        _fixedBufferBase = fixedBufferBase;
    }

    public PacketPool Pool { get; }
    public RingDirection Direction { get; }

    /// <summary>Non-zero when slot i always uses buffer <c>FixedBufferBase + i</c> (shared-memory rings): no buffer swaps.</summary>
    internal uint FixedBufferBase => _fixedBufferBase;
    public int Size => (int)_size;

    /// <summary>Counters for this ring; each has one writer (the side that moves packets), which adds to them in place.</summary>
    internal RingCounters Counters { get; } = new();

    /// <summary>A copy of this ring's counters: packets, bytes, drops, invalid slots and syncs so far.</summary>
    public RingCountersSnapshot GetCounters() => Counters.Snapshot();

    /// <summary>First slot owned by the user. Setting it hands [old head, value) to the backend at the next sync.</summary>
    public uint Head
    {
        get => Header->Head;
        set => Volatile.Write(ref Header->Head, value);
    }

    /// <summary>Wake-up point: a blocking wait returns once tail moves past cur (netmap semantics).</summary>
    public uint Cur
    {
        get => Header->Cur;
        set => Volatile.Write(ref Header->Cur, value);
    }

    /// <summary>First slot not owned by the user, as of the last sync.</summary>
    public uint Tail => _tail;

    internal void SetTail(uint tail) => _tail = tail;

    /// <summary>How many slots the user owns: packets to read (RX) or free slots to fill (TX).</summary>
    public int Space => (int)((_tail - Header->Head + _size) % _size);

    public bool IsEmpty => _tail == Header->Head;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Next(uint i) => i + 1 == _size ? 0 : i + 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Advance(uint i, int count) => (uint)((i + (uint)count) % _size);

    /// <summary>The slot at <paramref name="index"/> (0 .. Size-1).</summary>
    public ref Slot this[uint index]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if (index >= _size) ThrowIndex(index);
            return ref Slots[index];
        }
    }

    /// <summary>The whole buffer behind a slot.</summary>
    public Span<byte> Buffer(uint index) => new(BufferPointer(index), Pool.BufferSize);

    /// <summary>The packet in a slot: its buffer cut to the slot's length.</summary>
    public Span<byte> Packet(uint index)
    {
        ref Slot s = ref this[index];
        return new Span<byte>(BufferPointer(index), Math.Min(s.Length, Pool.BufferSize));
    }

    internal byte* BufferPointer(uint index)
    {
        if (index >= _size) ThrowIndex(index);
        if (_fixedBufferBase != 0) return Pool.BufferPointer(_fixedBufferBase + index);
        uint b = Slots[index].BufferIndex;
        if (!Pool.IsValid(b)) ThrowBuffer(index, b);
        return Pool.BufferPointer(b);
    }

    /// <summary>Moves head and cur on by <paramref name="count"/> slots: the user is done with them.</summary>
    public void Release(int count)
    {
        uint h = Advance(Header->Head, count);
        Cur = h;
        Head = h;
    }

    private void ThrowIndex(uint index) => throw new ArgumentOutOfRangeException(nameof(index), index, $"slot index must be below {_size}");
    private void ThrowBuffer(uint slot, uint buffer) =>
        throw new InvalidOperationException($"slot {slot} holds buffer index {buffer}, not a buffer of this pool (1..{Pool.Count - 1})");
}

/// <summary>Packets, bytes and drops of one ring, incremented in place by the ring's one writer.</summary>
internal sealed class RingCounters
{
    public long Packets;
    public long Bytes;
    public long Drops;
    /// <summary>Slots rejected because shared memory held an impossible value (length, index).</summary>
    public long Invalid;
    public long Syncs;

    /// <summary>Adds one sync's worth of traffic: what moved, what was dropped, what was invalid.</summary>
    public void Record(long packets, long bytes, long drops = 0, long invalid = 0)
    {
        Packets += packets;
        Bytes += bytes;
        Drops += drops;
        Invalid += invalid;
        Syncs++;
    }

    public RingCountersSnapshot Snapshot() => new(Packets, Bytes, Drops, Invalid, Syncs);
}

/// <summary>One ring's counters at one moment (<see cref="Ring.GetCounters"/>).</summary>
/// <param name="Packets">Packets moved through the ring (sent on TX, received on RX).</param>
/// <param name="Bytes">Their bytes.</param>
/// <param name="Drops">Packets lost: the backend or the kernel had no room.</param>
/// <param name="Invalid">Slots rejected because shared memory held an impossible value (length, index).</param>
/// <param name="Syncs">TX or RX syncs that moved or looked for packets.</param>
public readonly record struct RingCountersSnapshot(long Packets, long Bytes, long Drops, long Invalid, long Syncs);
