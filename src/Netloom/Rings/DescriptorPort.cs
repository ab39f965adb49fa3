namespace Netloom.Rings;

/// <summary>
/// What TAP and AF_PACKET ports share: a pool of their own, a TX ring whose slots all start
/// free and an RX ring that starts empty, each slot holding a buffer for good.
/// </summary>
internal abstract unsafe class DescriptorPort : PortBase
{
    private readonly RingMemory _txMemory, _rxMemory;
    protected readonly Ring TxRing, RxRing;
    protected uint TxHwCur;   // first TX slot not yet handed to the kernel

    /// <summary>Its waits sleep in poll(2) on the descriptor, which <see cref="PortBase.InterruptRxWait"/> cannot end.</summary>
    internal override bool RxWaitInterruptible => false;

    protected DescriptorPort(string name, PortOptions options) : base(name)
    {
        options.Validate();
        int n = options.RingSize;
        Pool = new PacketPool(2 * n + 1, options.BufferSize);
        _txMemory = new RingMemory(n);
        _rxMemory = new RingMemory(n);
        TxRing = new Ring(_txMemory.Header, _txMemory.Slots, (uint)n, Pool, RingDirection.Tx);
        RxRing = new Ring(_rxMemory.Header, _rxMemory.Slots, (uint)n, Pool, RingDirection.Rx);
        Span<uint> one = stackalloc uint[1];
        for (uint s = 0; s < n; s++)
        {
            Pool.Allocate(one);
            _txMemory.Slots[s].BufferIndex = one[0];
            Pool.Allocate(one);
            _rxMemory.Slots[s].BufferIndex = one[0];
        }
        TxRing.SetTail((uint)n - 1);
    }

    public PacketPool Pool { get; }
    public override Ring Tx => TxRing;
    public override Ring Rx => RxRing;

    /// <summary>Ends a TX sync: slots before <paramref name="k"/> are done and free for the user again.</summary>
    protected void FinishTxSync(uint k, long sent, long bytes, long drops, long invalid)
    {
        uint n = (uint)TxRing.Size;
        TxHwCur = k;
        TxRing.SetTail((k + n - 1) % n);
        TxRing.Counters.Record(sent, bytes, drops, invalid);
    }

    protected void FreeRings()
    {
        _txMemory.Dispose();
        _rxMemory.Dispose();
        Pool.Dispose();
    }
}
