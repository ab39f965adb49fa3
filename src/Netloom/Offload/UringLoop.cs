using Netloom.Interop;
using static Netloom.Interop.IoUring;

namespace Netloom.Offload;

/// <summary>
/// One thread's io_uring engine: a ring, its connections, and the loop that submits everything
/// prepared, waits once, and dispatches the completions. It knows nothing of the protocol: it
/// hands bytes to an <see cref="IConnectionHandler"/> and sends what the handler wrote.
/// Everything here runs on the loop's own thread except <see cref="Interrupt"/> and the
/// connections' <see cref="Connection.Wake"/>. The loop is made on the thread that runs it (a
/// SINGLE_ISSUER ring belongs to the thread that created it) and frees everything it owns when
/// <see cref="Run"/> returns, however it returns.
/// </summary>
internal sealed unsafe partial class UringLoop
{
    public const int MaxConnections = 4096, RecvBuffers = 2048, RecvBufferSize = 8192;
    /// <summary>Group id of the receive buffers; send bundles use 2 + slot.</summary>
    private const ushort RecvGroup = 1;
    /// <summary>The timeout that lets a sleeping loop notice a stop even if its wake-up is lost.</summary>
    private const long TickNanoseconds = 100_000_000;

    private readonly IConnectionHandler _handler;
    private readonly int _listenFd;
    private readonly CancellationToken _stop;
    private readonly LoopCounters _counters;
    private readonly NativeAllocator _memory;
    private readonly UringRing _ring = null!;
    private readonly ProvidedBuffers _buffers = null!;
    private readonly ConnectionTable _table = null!;
    private readonly ISendPath _send = null!;
    private readonly bool _fixed;  // connections live in the ring's registered file table
    private readonly KernelTimespec* _tick;
    private readonly long _pollTicks;  // busy-poll budget per wait, in Stopwatch ticks

    /// <summary>
    /// Sets up a ring for <paramref name="handler"/>'s connections. <paramref name="listenFd"/> is a
    /// listening socket the loop accepts from with one multishot accept (-1: none).
    /// </summary>
    public UringLoop(IConnectionHandler handler, int listenFd, UringServerOptions options, SendMode mode,
        LoopCounters counters, NativeAllocator memory, CancellationToken stop)
    {
        _handler = handler;
        _listenFd = listenFd;
        _stop = stop;
        _counters = counters;
        _memory = memory;
        try
        {
            _ring = CreateRing(options);
            if (!options.SqPoll) _pollTicks = options.BusyPollMicroseconds * System.Diagnostics.Stopwatch.Frequency / 1_000_000;
            _fixed = options.RegisteredFiles && _ring.Supports(OpShutdown) && _ring.RegisterSparseFiles(MaxConnections);
            _buffers = new ProvidedBuffers(_ring, RecvGroup, RecvBuffers, RecvBufferSize, memory);
            _table = new ConnectionTable(MaxConnections, memory);
            var target = new SendTarget(_ring, _fixed, counters);
            _send = mode == SendMode.Bundles ? new BundleSends(target, _ring, _table) : new PairedSends(target, mode == SendMode.PairedZeroCopy ? options.ZeroCopyThreshold : 0);
            _tick = (KernelTimespec*)memory.Alloc((nuint)sizeof(KernelTimespec));
            *_tick = new KernelTimespec { Nanoseconds = TickNanoseconds };
            CreateWake();
            for (int i = 0; i < MaxConnections; i++) _table[i].Connection.WakeHook = _wakeHook;
        }
        catch
        {
            Free();
            throw;
        }
    }

    /// <summary>Set (from any thread) before the listener is shut down: the accept that fails then is not re-armed.</summary>
    internal volatile bool AcceptStopped;

    /// <summary>The connections live in a registered file table (direct descriptors).</summary>
    public bool FixedFiles => _fixed;

    private static UringRing CreateRing(UringServerOptions options)
    {
        uint entries = (uint)options.RingEntries;
        if (options.SqPoll) return new UringRing(entries, SetupSqPoll, entries * 4, sqThreadIdleMs: 100);
        // One thread submits, and completions run when it enters: the cheapest mode (6.1+); older kernels get the plain ring.
        // TASKRUN_FLAG makes the kernel say in the SQ flags that completions wait to be run, which busy polling reads.
        try { return new UringRing(entries, SetupSingleIssuer | SetupDeferTaskrun | SetupTaskrunFlag, entries * 4); }
        catch (UringUnavailableException e) when (e.Errno == Errno.EINVAL) { return new UringRing(entries, 0, entries * 4); }
    }

    /// <summary>Runs until the stop token is cancelled; then closes every connection and frees the ring and every buffer.</summary>
    public void Run()
    {
        try
        {
            _loopThread = Environment.CurrentManagedThreadId;
            if (_listenFd >= 0) ArmAccept();
            ArmTick();
            ArmWake();
            while (!_stop.IsCancellationRequested)
            {
                if (!_woken.IsEmpty) Woken(); // wakes from this thread itself (no eventfd)
                Wait();
                _counters.Enters++;
                while (_ring.TryPeek(out var cqe))
                {
                    _ring.Advance();
                    Dispatch(cqe);
                }
            }
        }
        finally
        {
            try { CloseAll(); }
            finally { Free(); }
        }
    }

    private void Dispatch(in Cqe cqe)
    {
        byte kind = UringTag.Kind(cqe.UserData);
        bool more = (cqe.Flags & CqeFMore) != 0;
        switch (kind)
        {
            case UringTag.Tick: ArmTick(); return;
            case UringTag.Close: return;
            case UringTag.Wake: ArmWake(); Woken(); return;
            case UringTag.Accept:
                if (cqe.Res >= 0) Accepted(cqe.Res);
                if (!more && !AcceptStopped) ArmAccept();
                return;
        }
        var slot = _table[UringTag.Slot(cqe.UserData)];
        if (slot.Generation != UringTag.Generation(cqe.UserData) || slot.Fd < 0)
        {
            // A late completion for a connection already gone: give back its buffer.
            if ((cqe.Flags & CqeFBuffer) != 0)
            {
                ushort id = (ushort)(cqe.Flags >> CqeBufferShift);
                _buffers.Took(id);
                _buffers.Recycle(id);
            }
            return;
        }
        switch (kind)
        {
            case UringTag.Recv: Received(slot, cqe, more); break;
            case UringTag.Shutdown: slot.ShutdownPending = false; Close(slot); break;
            case UringTag.Send: SendCompleted(slot, cqe); break;
        }
    }

    private void ArmAccept()
    {
        var s = _ring.NextSqe();
        if (_fixed) UringRing.PrepMultishotAcceptDirect(s, _listenFd); // res is the registered slot
        else UringRing.PrepMultishotAccept(s, _listenFd, SocketCalls.SOCK_CLOEXEC);
        s->UserData = UringTag.Make(UringTag.Accept, 0, 0);
    }

    private void ArmTick()
    {
        var s = _ring.NextSqe();
        UringRing.PrepTimeout(s, _tick, 0, 0);
        s->UserData = UringTag.Make(UringTag.Tick, 0, 0);
    }

    private void ArmRecv(ConnectionSlot slot)
    {
        var s = _ring.NextSqe();
        UringRing.PrepRecvMultishot(s, slot.Fd, _buffers.GroupId);
        if (_fixed) UringRing.FixedFile(s);
        s->UserData = UringTag.Make(UringTag.Recv, slot.Index, slot.Generation);
        slot.RecvArmed = true;
    }

    /// <summary>The loop is stopping: every open connection's descriptor closes (registered files close with the ring) and its handler hears of it.</summary>
    private void CloseAll()
    {
        if (_table is null) return;
        for (int i = 0; i < _table.Capacity; i++)
        {
            var slot = _table[i];
            if (slot.Fd < 0) continue;
            (_handler as IDescriptorUser)?.ReleaseDescriptor(slot.Connection);
            if (!_fixed) Libc.Close(slot.Fd);
            slot.Fd = -1;
            _handler.OnClosed(slot.Connection);
        }
    }

    /// <summary>
    /// Frees what the loop owns, in the order the kernel needs: buffer rings are unregistered while
    /// the ring is open, the ring closes (ending every operation), and only then is the memory the
    /// kernel could read freed. Tolerates a constructor that failed half-way.
    /// </summary>
    private void Free()
    {
        _table?.DisposeBufferRings();
        _buffers?.Dispose();
        _ring?.Dispose();
        _table?.Dispose();
        _memory.Free(_tick, (nuint)sizeof(KernelTimespec));
        FreeWake();
    }
}

/// <summary>How a loop sends: paired sends without or with SEND_ZC, or send bundles.</summary>
internal enum SendMode { Paired, PairedZeroCopy, Bundles }
