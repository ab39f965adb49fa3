using System.Runtime.CompilerServices;

namespace Netloom.Rings;

/// <summary>
/// One end of an in-process pipe (netmap's pipes): what one end transmits, the other receives.
/// Both ends share one pool, and <see cref="TxSync"/> moves packets by swapping buffer indexes
/// into the peer's RX ring, so nothing is copied. The two ends may run on two threads: each
/// index has one writer and is published with release semantics.
/// </summary>
internal sealed unsafe class PipePort : PortBase, IDirectDelivery, IChecksumPort
{
    private readonly Pipe _pipe;
    private readonly bool _master;
    private readonly Ring _tx, _rx, _peerRx;
    private uint _txHwCur;   // first TX slot not yet moved to the peer
    private uint _rxHwCur;   // RX head as of the last sync
    private bool _disposed;

    private PipePort(string name, Pipe pipe, bool master) : base(name)
    {
        _pipe = pipe;
        _master = master;
        _tx = master ? pipe.MasterTx : pipe.SlaveTx;
        _rx = master ? pipe.MasterRx : pipe.SlaveRx;
        _peerRx = master ? pipe.SlaveRx : pipe.MasterRx;
    }

    /// <summary>Opens one end of the pipe named by <paramref name="spec"/>, creating the pipe if needed.</summary>
    public static PipePort Open(PortSpec spec, PortOptions? options = null)
    {
        if (spec.Kind != PortKind.Pipe) throw new ArgumentException($"{spec} is not a pipe spec", nameof(spec));
        var pipe = Pipe.Claim(spec, options ?? new PortOptions());
        return new PipePort(spec.ToString(), pipe, spec.PipeMaster);
    }

    /// <summary>Opens both ends of a new pipe, for tests and benchmarks.</summary>
    public static (PipePort Master, PipePort Slave) OpenPair(string name, PortOptions? options = null) =>
        (Open(new PortSpec(PortKind.Pipe, name, 0, true), options), Open(new PortSpec(PortKind.Pipe, name, 0, false), options));

    public override Ring Tx => _tx;
    public override Ring Rx => _rx;
    public PacketPool Pool => _pipe.Pool;

    /// <summary>Both ends declared <see cref="PortOptions.ChecksumOffload"/> when they opened (and are still open).</summary>
    public bool ChecksumOffload => Volatile.Read(ref _pipe.MasterCsum) && Volatile.Read(ref _pipe.SlaveCsum);
    public bool ChecksumOffloadDeclared => _master ? Volatile.Read(ref _pipe.MasterCsum) : Volatile.Read(ref _pipe.SlaveCsum);

    protected override (nint Word, nint Flag) RxWaitWord => ((nint)(&_rx.Header->Tail), (nint)(&_rx.Header->UserWaiting));
    protected override (nint Word, nint Flag) TxWaitWord => ((nint)(&_peerRx.Header->Head), (nint)(&_peerRx.Header->BackendWaiting));

    public override void TxSync()
    {
        var tx = _tx;
        var prx = _peerRx;
        var pool = _pipe.Pool;
        uint size = (uint)tx.Size;
        uint head = tx.Head;
        uint k = _txHwCur;
        uint rxTail = prx.Header->Tail;                    // we are its only writer
        uint rxHead = Volatile.Read(ref prx.Header->Head); // written by the peer's user
        uint pending = (head - k + size) % size;
        uint free = (rxHead - rxTail - 1 + size) % size;
        uint n = Math.Min(pending, free);
        long bytes = 0, invalid = 0, moved = 0;
        Slot* ts = tx.Slots, rs = prx.Slots;
        // Only the checksum flag crosses, and only while both ends declared the capability.
        var passed = ChecksumOffload ? SlotFlags.ChecksumPartial : SlotFlags.None;
        for (uint i = 0; i < n; i++)
        {
            ref Slot s = ref ts[k];
            if (!pool.IsSendable(s))
            {
                invalid++; // a slot the user filled wrongly is dropped, never passed on
            }
            else
            {
                var flags = s.Flags & passed;
                MoveInto(ref s, ref rs[rxTail]);
                rs[rxTail].Flags = flags;
                bytes += s.Length;
                moved++;
                rxTail = rxTail + 1 == size ? 0 : rxTail + 1;
            }
            s.Flags = SlotFlags.None;
            k = k + 1 == size ? 0 : k + 1;
        }
        PublishToPeer(rxTail, moved, bytes);
        _txHwCur = k;
        tx.SetTail((k + size - 1) % size);
        tx.Counters.Record(moved, bytes, invalid: invalid);
    }

    /// <summary>
    /// <see cref="IDirectDelivery.Deliver"/>: straight into the peer's RX ring, what putting the
    /// frames in this end's TX ring and calling <see cref="TxSync"/> would do, in one pass.
    /// </summary>
    int IDirectDelivery.Deliver(Ring from, uint first, int count, out long bytes)
    {
        bytes = 0;
        var tx = _tx;
        if (from.Pool != _pipe.Pool || from.FixedBufferBase != 0 || tx.Head != _txHwCur || first >= (uint)from.Size) return 0;
        var prx = _peerRx;
        uint size = (uint)prx.Size, fsize = (uint)from.Size;
        uint rxTail = prx.Header->Tail;
        uint rxHead = Volatile.Read(ref prx.Header->Head);
        int n = (int)Math.Min((uint)count, (rxHead - rxTail - 1 + size) % size);
        var pool = _pipe.Pool;
        Slot* fs = from.Slots, rs = prx.Slots;
        uint k = first;
        int moved = 0;
        for (; moved < n; moved++)
        {
            ref Slot s = ref fs[k];
            if (!pool.IsSendable(s)) break;
            MoveInto(ref s, ref rs[rxTail]);
            s.Flags = SlotFlags.BufferChanged;
            bytes += s.Length;
            rxTail = rxTail + 1 == size ? 0 : rxTail + 1;
            k = k + 1 == fsize ? 0 : k + 1;
        }
        PublishToPeer(rxTail, moved, bytes);
        if (moved > 0) tx.Counters.Record(moved, bytes);
        return moved;
    }

    /// <summary>Puts slot <paramref name="s"/>'s frame in the peer's RX slot <paramref name="d"/>, and d's spare buffer in s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MoveInto(ref Slot s, ref Slot d)
    {
        (s.BufferIndex, d.BufferIndex) = (d.BufferIndex, s.BufferIndex);
        d.Length = s.Length;
        d.Flags = SlotFlags.None;
    }

    /// <summary>Publishes the peer's RX tail after <paramref name="moved"/> frames and wakes the peer if it sleeps.</summary>
    private void PublishToPeer(uint rxTail, long moved, long bytes)
    {
        if (moved == 0) return;
        var prx = _peerRx;
        Volatile.Write(ref prx.Header->Tail, rxTail); // we are its only writer
        WakeIfWaiting(&prx.Header->UserWaiting);
        prx.Counters.Packets += moved;
        prx.Counters.Bytes += bytes;
    }

    public override void RxSync()
    {
        var rx = _rx;
        uint head = rx.Head;
        if (head != _rxHwCur)
        {
            // The user gave slots back: a producer waiting for space may go on.
            _rxHwCur = head;
            WakeIfWaiting(&rx.Header->BackendWaiting);
        }
        rx.SetTail(Volatile.Read(ref rx.Header->Tail));
        rx.Counters.Syncs++;
    }

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _pipe.Release(_master);
    }

    /// <summary>The shared state of one pipe: its pool and four rings, alive while an end is open.</summary>
    private sealed class Pipe
    {
        private static readonly Dictionary<(string, int), Pipe> s_pipes = [];
        private static readonly Lock s_lock = new();

        private readonly (string, int) _key;
        private readonly RingMemory[] _memory;
        private readonly bool _ownsPool;
        private bool _masterOpen, _slaveOpen;
        public bool MasterCsum, SlaveCsum; // each end's checksum declaration, while it is open

        public PacketPool Pool { get; }
        public Ring MasterTx { get; }
        public Ring MasterRx { get; }
        public Ring SlaveTx { get; }
        public Ring SlaveRx { get; }

        private Pipe((string, int) key, PortOptions o)
        {
            o.Validate();
            _key = key;
            int n = o.RingSize;
            _ownsPool = o.SharedPool is null;
            Pool = o.SharedPool ?? new PacketPool(4 * n + 1, o.BufferSize);
            if (Pool.FreeCount < 4 * n)
                throw new InvalidOperationException($"the shared pool has {Pool.FreeCount} free buffers; a pipe with rings of {n} needs {4 * n}");
            _memory = [new(n), new(n), new(n), new(n)];
            MasterTx = Make(0, RingDirection.Tx);
            MasterRx = Make(1, RingDirection.Rx);
            SlaveTx = Make(2, RingDirection.Tx);
            SlaveRx = Make(3, RingDirection.Rx);

            Ring Make(int i, RingDirection dir)
            {
                var m = _memory[i];
                var r = new Ring(m.Header, m.Slots, (uint)n, Pool, dir);
                Span<uint> bufs = stackalloc uint[1];
                for (uint s = 0; s < n; s++)
                {
                    Pool.Allocate(bufs);
                    m.Slots[s].BufferIndex = bufs[0];
                }
                // TX: the user owns every slot but one. RX: nothing received yet.
                if (dir == RingDirection.Tx) r.SetTail((uint)n - 1);
                m.Header->Tail = dir == RingDirection.Tx ? (uint)n - 1 : 0;
                return r;
            }
        }

        public static Pipe Claim(PortSpec spec, PortOptions options)
        {
            lock (s_lock)
            {
                var key = (spec.Name, spec.PipeId);
                if (!s_pipes.TryGetValue(key, out var pipe)) s_pipes[key] = pipe = new Pipe(key, options);
                ref bool open = ref spec.PipeMaster ? ref pipe._masterOpen : ref pipe._slaveOpen;
                if (open) throw new InvalidOperationException($"{spec} is already open in this process; each pipe end has one owner");
                open = true;
                if (spec.PipeMaster) Volatile.Write(ref pipe.MasterCsum, options.ChecksumOffload);
                else Volatile.Write(ref pipe.SlaveCsum, options.ChecksumOffload);
                return pipe;
            }
        }

        public void Release(bool master)
        {
            lock (s_lock)
            {
                if (master) { _masterOpen = false; MasterCsum = false; } else { _slaveOpen = false; SlaveCsum = false; }
                if (_masterOpen || _slaveOpen) return;
                s_pipes.Remove(_key);
                if (!_ownsPool)
                {
                    // Give the buffers back to the shared pool; the slots hold exactly the ones taken.
                    var indexes = new uint[_memory.Length * MasterTx.Size];
                    int k = 0;
                    foreach (var m in _memory)
                        for (int s = 0; s < MasterTx.Size; s++) indexes[k++] = m.Slots[s].BufferIndex;
                    Pool.Release(indexes);
                }
                foreach (var m in _memory) m.Dispose();
                if (_ownsPool) Pool.Dispose();
            }
        }
    }
}
