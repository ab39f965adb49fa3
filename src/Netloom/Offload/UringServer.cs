using System.Net;
using System.Net.Sockets;
using Netloom.Interop;
using static Netloom.Interop.IoUring;

namespace Netloom.Offload;

/// <summary>What the io_uring engine may use beyond the basics.</summary>
public sealed record UringServerOptions
{
    /// <summary>A kernel thread polls each submission queue (IORING_SETUP_SQPOLL): fewer system calls, one more busy thread per ring.</summary>
    public bool SqPoll { get; init; }
    /// <summary>Accept into a registered file table (direct descriptors) and use them as fixed files; falls back to plain descriptors when refused.</summary>
    public bool RegisteredFiles { get; init; } = true;
    /// <summary>Responses of at least this many bytes go out with IORING_OP_SEND_ZC (0: never).</summary>
    public int ZeroCopyThreshold { get; init; } = 16 << 10;
    /// <summary>
    /// Before sleeping, each loop spins this many microseconds watching its ring (0: never), as
    /// Onload's EF_POLL_USEC does: under load the thread is never put to sleep, so the clients'
    /// sends no longer pay to wake it. The price is a busy core per thread: use fewer threads than cores.
    /// </summary>
    public int BusyPollMicroseconds { get; init; }
    /// <summary>
    /// Send with bundles (IORING_RECVSEND_BUNDLE, 6.10+): each connection queues its output batches
    /// in a buffer ring of its own, and one send takes all that are queued, in order, as writev
    /// would; the handler writes the next batch meanwhile. Replaces SEND_ZC. Ignored, with the plain
    /// double buffer instead, where the kernel lacks bundles.
    /// </summary>
    public bool SendBundles { get; init; }
}

/// <summary>
/// An event-driven TCP server on io_uring: one ring per thread, each thread with its own
/// listening socket (SO_REUSEPORT, so the kernel spreads connections). Per loop turn it submits
/// everything prepared and waits in one io_uring_enter. Connections are accepted by one
/// multishot accept (into registered file slots when the kernel allows), read by one multishot
/// recv each from a provided buffer ring (an idle connection holds no buffer), and answered by at
/// most one send in flight from a double buffer; large responses go zero-copy (SEND_ZC), and the
/// buffer is reused only after the kernel's notification.
/// </summary>
public sealed unsafe class UringServer : IDisposable
{
    private const int MaxConnections = 4096, RecvBuffers = 2048, RecvBufferSize = 8192;
    // Send bundles: batches a connection may queue, the bytes beyond which output waits in the
    // handler's buffer, and the spare batch buffers a loop keeps (small ones only).
    private const int BundleDepth = 8, MaxQueuedBytes = 4 << 20, SpareBatches = 1024, SpareBatchCapacity = 256 << 10;
    private const ulong KindAccept = 1, KindRecv = 2, KindSend = 3, KindTick = 4, KindClose = 5, KindShutdown = 6, KindWake = 7;

    private readonly IPEndPoint _endpoint;
    private readonly IConnectionHandler _handler;
    private readonly int _threads;
    private readonly List<Thread> _loops = [];
    private readonly List<Socket> _listeners = [];
    private volatile bool _stop;
    private Exception? _failure;

    private readonly UringServerOptions _options;
    private bool _zeroCopy, _bundles;

    public UringServer(IPEndPoint endpoint, IConnectionHandler handler, int threads, UringServerOptions? options = null)
    {
        _endpoint = endpoint;
        _handler = handler;
        _threads = Math.Max(1, threads);
        _options = options ?? new UringServerOptions();
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_listeners[0].LocalEndPoint!;
    public long Accepted, Requests, Enters;  // Requests counts receive completions handed to the handler
    public long ZeroCopySends, FixedFileLoops;
    /// <summary>Bundle sends issued, the batches they carried, and connections closed because a bundle's count did not match its batches.</summary>
    public long BundleSends, BundleBatches, BundleFaults;
    /// <summary>What the engine ended up using (registered files, SEND_ZC, SQPOLL), for logs.</summary>
    public string Features { get; private set; } = "";

    /// <summary>Binds every thread's listener and starts the loops; throws if io_uring cannot be used.</summary>
    public void Start()
    {
        // Fail early, with a clear message, when io_uring or what the engine needs is unavailable.
        using (var probe = new UringRing(4))
        {
            foreach (var (op, name) in new[] { (OpAccept, "ACCEPT"), (OpRecv, "RECV"), (OpSend, "SEND"), (OpTimeout, "TIMEOUT") })
                if (!probe.Supports(op)) throw new UringUnavailableException($"this kernel's io_uring lacks IORING_OP_{name}", 95);
            using var buffers = new ProvidedBuffers(probe, 1, 2, 64); // multishot recv needs provided buffer rings (5.19+)
            _bundles = _options.SendBundles && (probe.Features & FeatRecvSendBundle) != 0;
            _zeroCopy = !_bundles && _options.ZeroCopyThreshold > 0 && probe.Supports(OpSendZc);
        }
        var endpoint = _endpoint;
        for (int t = 0; t < _threads; t++)
        {
            var l = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            l.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            l.SetRawSocketOption(1 /* SOL_SOCKET */, 15 /* SO_REUSEPORT */, BitConverter.GetBytes(1));
            l.Bind(endpoint);
            l.Listen(1024);
            endpoint = (IPEndPoint)l.LocalEndPoint!; // the first bind picks the port when asked for 0
            _listeners.Add(l);
            var listener = l;
            var thread = new Thread(() =>
            {
                try { new Loop(this, (int)listener.SafeHandle.DangerousGetHandle()).Run(); }
                catch (Exception e) { _failure ??= e; }
            }) { Name = $"uring loop {t}", IsBackground = true };
            _loops.Add(thread);
            thread.Start();
        }
        SpinWait.SpinUntil(() => Volatile.Read(ref _started) == _threads || _failure is not null, 5000);
        if (_failure is not null) throw _failure;
        Features = string.Join(", ", new[]
        {
            Interlocked.Read(ref FixedFileLoops) == _threads ? "registered files" : "plain descriptors",
            _zeroCopy ? $"SEND_ZC from {_options.ZeroCopyThreshold} B" : "no SEND_ZC",
            _bundles ? "send bundles" : _options.SendBundles ? "no send bundles (the kernel lacks them)" : "no send bundles",
            _options.SqPoll ? "SQPOLL" : "no SQPOLL",
            _options.BusyPollMicroseconds > 0 && !_options.SqPoll ? $"busy poll {_options.BusyPollMicroseconds} µs" : "sleeps when idle",
        });
    }

    private int _started;

    /// <summary>Why a loop stopped, if one failed.</summary>
    public Exception? Failure => _failure;

    public void Dispose()
    {
        _stop = true;
        foreach (var t in _loops) t.Join(2000);
        foreach (var l in _listeners) l.Dispose();
    }

    private sealed class Slot
    {
        public int Fd = -1;           // a descriptor, or a registered file slot when the loop uses them
        public uint Generation;
        public bool RecvArmed, Sending, Closing, ZcPending, ShutdownPending;
        public readonly Connection Connection;
        public readonly OutputBuffer InFlight = new();
        public readonly InputBuffer Input = new();
        // With send bundles: output batches queued in the slot's own buffer ring, oldest at QueueHead
        // (a batch's buffer id is its index here).
        public BufferRing? SendRing;
        public readonly OutputBuffer?[] Queued = new OutputBuffer?[BundleDepth];
        public int QueueHead, QueueCount;
        public long QueuedBytes;
        public Slot(int id) => Connection = new Connection(id);
        public bool OutputPending => Sending || ZcPending || InFlight.Length > 0 || QueueCount > 0 || Connection.Output.Length > 0;
    }

    /// <summary>One thread's ring and connections.</summary>
    private sealed class Loop
    {
        private readonly UringServer _server;
        private readonly int _listenFd;
        private readonly UringRing _ring;
        private readonly ProvidedBuffers _buffers;
        private readonly Slot[] _slots = new Slot[MaxConnections];
        private readonly Stack<int> _free = new(Enumerable.Range(0, MaxConnections).Reverse());
        private readonly KernelTimespec* _tick;
        private readonly bool _fixed;  // connections live in the ring's registered file table
        private readonly int _wakeFd;  // an eventfd other threads bump; the ring reads it
        private readonly ulong* _wakeBuffer;
        private readonly System.Collections.Concurrent.ConcurrentQueue<long> _woken = new();
        private readonly Action<Connection> _wakeHook;
        private readonly long _pollTicks;  // busy-poll budget per wait, in Stopwatch ticks
        private readonly Stack<OutputBuffer> _spareBatches = new();

        public Loop(UringServer server, int listenFd)
        {
            _server = server;
            _listenFd = listenFd;
            _ring = CreateRing(server._options.SqPoll);
            if (!server._options.SqPoll) _pollTicks = server._options.BusyPollMicroseconds * System.Diagnostics.Stopwatch.Frequency / 1_000_000;
            _fixed = server._options.RegisteredFiles && _ring.Supports(OpShutdown) && _ring.RegisterSparseFiles(MaxConnections);
            if (_fixed) Interlocked.Increment(ref server.FixedFileLoops);
            _buffers = new ProvidedBuffers(_ring, 1, RecvBuffers, RecvBufferSize);
            for (int i = 0; i < MaxConnections; i++) _slots[i] = new Slot(i);
            _wakeFd = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
            if (_wakeFd < 0) throw new IOException($"eventfd: {Libc.Describe(Libc.Errno)}");
            _wakeBuffer = (ulong*)System.Runtime.InteropServices.NativeMemory.Alloc(8);
            _wakeHook = c =>
            {
                _woken.Enqueue((long)c.Id << 32 | (uint)c.Generation);
                ulong one = 1;
                Libc.Write(_wakeFd, &one, 8);
            };
            for (int i = 0; i < MaxConnections; i++) _slots[i].Connection.WakeHook = _wakeHook;
            _tick = (KernelTimespec*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)sizeof(KernelTimespec));
            *_tick = new KernelTimespec { Nanoseconds = 100_000_000 };
        }

        private static UringRing CreateRing(bool sqPoll)
        {
            if (sqPoll) return new UringRing(4096, SetupSqPoll, 16384, sqThreadIdleMs: 100);
            // One thread submits, and completions run when it enters: the cheapest mode (6.1+); older kernels get the plain ring.
            // TASKRUN_FLAG makes the kernel say in the SQ flags that completions wait to be run, which busy polling reads.
            try { return new UringRing(4096, SetupSingleIssuer | SetupDeferTaskrun | SetupTaskrunFlag, 16384); }
            catch (UringUnavailableException e) when (e.Errno == 22) { return new UringRing(4096, 0, 16384); }
        }

        /// <summary>Targets an SQE at a connection: its registered slot, or its descriptor.</summary>
        private void Target(Sqe* s, Slot slot)
        {
            s->Fd = slot.Fd;
            if (_fixed) s->Flags |= SqeFixedFile;
        }

        private static ulong Tag(ulong kind, int slot, uint generation) => kind << 56 | (ulong)(uint)slot << 32 | generation;

        private Sqe* Next()
        {
            Sqe* sqe;
            while (!_ring.TryGetSqe(out sqe)) _ring.Submit();
            return sqe;
        }

        private void ArmAccept()
        {
            var s = Next();
            s->Opcode = OpAccept; s->Fd = _listenFd; s->IoPrio = AcceptMultishot;
            // A direct descriptor has no descriptor-table entry, so SOCK_CLOEXEC would be refused (EINVAL).
            if (_fixed) s->FileIndex = FileIndexAlloc; // the new socket goes into a free registered slot; res is its index
            else s->OpFlags = 0x80000 /* SOCK_CLOEXEC */;
            s->UserData = Tag(KindAccept, 0, 0);
        }

        private void ArmWake()
        {
            var s = Next();
            s->Opcode = OpRead; s->Fd = _wakeFd; s->Addr = (ulong)_wakeBuffer; s->Len = 8; s->UserData = Tag(KindWake, 0, 0);
        }

        /// <summary>Other threads asked for connections to be served: the handler produces their output here.</summary>
        private void Woken()
        {
            while (_woken.TryDequeue(out long item))
            {
                int i = (int)(item >> 32);
                var slot = _slots[i];
                if (slot.Fd < 0 || slot.Generation != (uint)item || slot.Closing) continue;
                Volatile.Write(ref slot.Connection.WakePending, 0);
                _server._handler.OnWake(slot.Connection);
                AfterHandler(i);
            }
        }

        /// <summary>After the handler ran: send what it produced, or close when it asked and all went.</summary>
        private void AfterHandler(int i)
        {
            var slot = _slots[i];
            var c = slot.Connection;
            if (c.Output.Overflowed) { Close(i); return; }
            Send(i);
            if (c.CloseRequested && !slot.OutputPending) Close(i);
        }

        private void ArmTick()
        {
            var s = Next();
            s->Opcode = OpTimeout; s->Addr = (ulong)_tick; s->Len = 1; s->UserData = Tag(KindTick, 0, 0);
        }

        private void ArmRecv(int i)
        {
            var slot = _slots[i];
            var s = Next();
            s->Opcode = OpRecv; s->IoPrio = RecvMultishot; s->Flags = SqeBufferSelect; s->BufIndex = _buffers.GroupId;
            Target(s, slot);
            s->UserData = Tag(KindRecv, i, slot.Generation);
            slot.RecvArmed = true;
        }

        private void Send(int i)
        {
            if (_server._bundles) { SendBundled(i); return; }
            var slot = _slots[i];
            if (slot.Sending || slot.ZcPending) return; // one send at a time; a zero-copy buffer stays ours only after its notification
            if (slot.InFlight.Length == 0)
            {
                if (slot.Connection.Output.Length == 0) return;
                slot.InFlight.Swap(slot.Connection.Output);
            }
            var s = Next();
            bool zc = _server._zeroCopy && slot.InFlight.Length >= _server._options.ZeroCopyThreshold;
            s->Opcode = zc ? OpSendZc : OpSend; s->Addr = (ulong)slot.InFlight.Pointer; s->Len = (uint)slot.InFlight.Length;
            Target(s, slot);
            if (zc) Interlocked.Increment(ref _server.ZeroCopySends);
            s->OpFlags = SocketCalls.MSG_NOSIGNAL;
            s->UserData = Tag(KindSend, i, slot.Generation);
            slot.Sending = true;
        }

        public void Run()
        {
            Interlocked.Increment(ref _server._started);
            ArmAccept();
            ArmTick();
            ArmWake();
            while (!_server._stop)
            {
                Wait();
                Interlocked.Increment(ref _server.Enters);
                while (_ring.TryPeek(out var cqe))
                {
                    _ring.Advance();
                    Dispatch(cqe);
                }
            }
            for (int i = 0; i < MaxConnections; i++)
                if (_slots[i].Fd >= 0)
                {
                    if (!_fixed) Libc.Close(_slots[i].Fd); // registered files close with the ring
                    _server._handler.OnClosed(_slots[i].Connection);
                }
            foreach (var slot in _slots) slot.SendRing?.Dispose();
            _buffers.Dispose();
            _ring.Dispose();
            Libc.Close(_wakeFd);
            System.Runtime.InteropServices.NativeMemory.Free(_wakeBuffer);
        }

        /// <summary>
        /// Send bundles: the handler's output becomes one more batch in the connection's buffer ring
        /// (the handler gets an empty buffer to write on), and unless a send is in flight one
        /// bundle send takes every queued batch, in order.
        /// </summary>
        private void SendBundled(int i)
        {
            var slot = _slots[i];
            var output = slot.Connection.Output;
            if (output.Length > 0 && slot.QueueCount < BundleDepth && slot.QueuedBytes < MaxQueuedBytes)
            {
                slot.SendRing ??= new BufferRing(_ring, (ushort)(2 + i), BundleDepth); // group 1 is the receive buffers
                int id = (slot.QueueHead + slot.QueueCount) & (BundleDepth - 1);
                var batch = _spareBatches.Count > 0 ? _spareBatches.Pop() : new OutputBuffer();
                batch.Swap(output); // the batch takes the bytes; the handler keeps writing on the spare's memory
                slot.Queued[id] = batch;
                slot.QueueCount++;
                slot.QueuedBytes += batch.Length;
                slot.SendRing.Add(batch.Pointer, batch.Length, (ushort)id);
                slot.SendRing.Publish();
            }
            if (slot.Sending || slot.QueueCount == 0) return;
            var s = Next();
            s->Opcode = OpSend;
            Target(s, slot);
            s->Flags |= SqeBufferSelect;
            s->BufIndex = slot.SendRing!.GroupId;
            s->IoPrio = RecvSendBundle;
            s->OpFlags = SocketCalls.MSG_NOSIGNAL;
            s->UserData = Tag(KindSend, i, slot.Generation);
            slot.Sending = true;
            Interlocked.Increment(ref _server.BundleSends);
        }

        /// <summary>
        /// A bundle send reported bytes: the batches they cover leave the queue. The kernel names
        /// the first batch it took (the oldest queued) and sends the batches it took whole, waiting
        /// for room in the socket as it goes; a count that ends inside a batch would leave bytes
        /// that no later send could put back in order, so the connection is closed and counted.
        /// </summary>
        private void BundleSent(int i, in Cqe cqe)
        {
            var slot = _slots[i];
            if ((cqe.Flags & CqeFMore) == 0) slot.Sending = false;
            if (cqe.Res < 0) { slot.Sending = false; Close(i); return; }
            int sent = cqe.Res;
            if (sent > 0 && (cqe.Flags >> CqeBufferShift) != (uint)slot.QueueHead) { Interlocked.Increment(ref _server.BundleFaults); Close(i); return; }
            while (sent > 0)
            {
                int length = slot.Queued[slot.QueueHead]!.Length;
                if (sent < length) { Interlocked.Increment(ref _server.BundleFaults); Close(i); return; }
                sent -= length;
                DropOldestBatch(slot);
                Interlocked.Increment(ref _server.BundleBatches);
            }
            if (slot.Sending) return; // the bundle goes on: it completes again
            if (slot.Closing) { Close(i); return; }
            if (slot.QueueCount == 0) _server._handler.OnSendCompleted(slot.Connection);
            AfterHandler(i);
        }

        private void DropOldestBatch(Slot slot)
        {
            var batch = slot.Queued[slot.QueueHead]!;
            slot.Queued[slot.QueueHead] = null;
            slot.QueueHead = (slot.QueueHead + 1) & (BundleDepth - 1);
            slot.QueueCount--;
            slot.QueuedBytes -= batch.Length;
            batch.Reset();
            if (_spareBatches.Count < SpareBatches && batch.Capacity <= SpareBatchCapacity) _spareBatches.Push(batch);
            else batch.Free();
        }

        /// <summary>A closed connection's queued batches go back, and its ring forgets them: the next connection starts empty.</summary>
        private void ClearBatches(Slot slot)
        {
            if (slot.QueueCount == 0) return;
            while (slot.QueueCount > 0) DropOldestBatch(slot);
            slot.SendRing!.Reset();
        }

        /// <summary>
        /// Submits what the turn prepared and waits for completions: asleep in the kernel, or first
        /// spinning on the ring (its CQ, and with deferred task work the IORING_SQ_TASKRUN flag) for
        /// up to the busy-poll budget, entering only once there is something to reap.
        /// </summary>
        private void Wait()
        {
            if (_pollTicks == 0) { _ring.Submit(waitFor: 1); return; }
            if (_ring.Unsubmitted == 0)
            {
                long deadline = System.Diagnostics.Stopwatch.GetTimestamp() + _pollTicks;
                while (!_ring.TaskWorkPending && _ring.CqReady == 0)
                {
                    if (System.Diagnostics.Stopwatch.GetTimestamp() >= deadline || _server._stop) { _ring.Submit(waitFor: 1); return; }
                    Thread.SpinWait(4);
                }
            }
            _ring.Submit(getEvents: true); // submit, run the completions' task work, do not sleep
        }

        private void Dispatch(in Cqe cqe)
        {
            ulong kind = cqe.UserData >> 56;
            int i = (int)(cqe.UserData >> 32 & 0xFFFFFF);
            uint generation = (uint)cqe.UserData;
            bool more = (cqe.Flags & CqeFMore) != 0;
            switch (kind)
            {
                case KindTick:
                    ArmTick();
                    return;
                case KindClose:
                    return;
                case KindWake:
                    ArmWake();
                    Woken();
                    return;
                case KindAccept:
                    if (cqe.Res >= 0) Accepted(cqe.Res);
                    if (!more) ArmAccept();
                    return;
            }
            var slot = _slots[i];
            if (slot.Generation != generation || slot.Fd < 0)
            {
                // A late completion for a connection already gone: give back its buffer.
                if ((cqe.Flags & CqeFBuffer) != 0) _buffers.Recycle((ushort)(cqe.Flags >> CqeBufferShift));
                return;
            }
            if (kind == KindRecv) Received(i, cqe, more);
            else if (kind == KindShutdown) { slot.ShutdownPending = false; Close(i); }
            else if (_server._bundles) BundleSent(i, cqe);
            else SendDone(i, cqe);
        }

        private void Accepted(int fd)
        {
            Interlocked.Increment(ref _server.Accepted);
            if (!_free.TryPop(out int i)) { CloseDescriptor(fd); return; } // at the connection limit: refuse
            var slot = _slots[i];
            slot.Fd = fd;
            slot.Generation++;
            slot.Sending = slot.Closing = slot.ZcPending = slot.ShutdownPending = false;
            slot.Input.Reset();
            slot.InFlight.Reset();
            slot.Connection.Output.Reset();
            slot.Connection.CloseRequested = false;
            slot.Connection.WakePending = 0;
            slot.Connection.Generation = slot.Generation;
            _server._handler.OnConnected(slot.Connection);
            ArmRecv(i);
        }

        private void Received(int i, in Cqe cqe, bool more)
        {
            var slot = _slots[i];
            if (!more) slot.RecvArmed = false;
            if (cqe.Res <= 0)
            {
                // End of stream or an error (-ENOBUFS re-arms: the buffer ring ran dry for a moment).
                if (cqe.Res == -105 && !slot.Closing) { ArmRecv(i); return; }
                if (cqe.Res == 0 && !slot.Closing && !more && _server._handler.OnEndOfInput(slot.Connection))
                {
                    AfterHandler(i); // half-closed: output goes on until the handler closes
                    return;
                }
                Close(i);
                return;
            }
            ushort id = (ushort)(cqe.Flags >> CqeBufferShift);
            var data = _buffers.Data(id, cqe.Res);
            if (!slot.Closing) Consume(i, data);
            _buffers.Recycle(id);
            if (!slot.RecvArmed && !slot.Closing) ArmRecv(i);
        }

        private void Consume(int i, ReadOnlySpan<byte> data)
        {
            var slot = _slots[i];
            var c = slot.Connection;
            Interlocked.Increment(ref _server.Requests);
            if (!slot.Input.Feed(_server._handler, c, data)) { Close(i); return; }
            AfterHandler(i);
        }

        /// <summary>
        /// A send finished, or a zero-copy send's notification came: SEND_ZC completes twice, first
        /// with the byte count (F_MORE when a notification follows), then with F_NOTIF once the
        /// kernel no longer reads the buffer.
        /// </summary>
        private void SendDone(int i, in Cqe cqe)
        {
            var slot = _slots[i];
            if ((cqe.Flags & CqeFNotif) != 0) slot.ZcPending = false;
            else
            {
                slot.Sending = false;
                if ((cqe.Flags & CqeFMore) != 0) slot.ZcPending = true;
                if (cqe.Res < 0) { Close(i); return; }
                slot.InFlight.Consume(cqe.Res);
            }
            if (slot.ZcPending) return;
            if (slot.Closing) { Close(i); return; }
            if (slot.InFlight.Length == 0) _server._handler.OnSendCompleted(slot.Connection);
            AfterHandler(i);
        }

        /// <summary>Closes a connection's descriptor, or empties its registered slot with IORING_OP_CLOSE.</summary>
        private void CloseDescriptor(int fd)
        {
            if (!_fixed) { Libc.Close(fd); return; }
            var s = Next();
            s->Opcode = OpClose; s->FileIndex = (uint)fd + 1; s->UserData = Tag(KindClose, 0, 0);
        }

        private void Close(int i)
        {
            var slot = _slots[i];
            if (!slot.Closing)
            {
                slot.Closing = true;
                // Shutting the socket down ends the multishot recv. IORING_OP_SHUTDOWN always runs
                // in io-wq, later than an inline close: the slot is closed only after its completion,
                // or a new connection given the same registered slot would be shut down instead.
                if (_fixed)
                {
                    var s = Next();
                    s->Opcode = OpShutdown; s->Len = (uint)SocketCalls.SHUT_RDWR; s->UserData = Tag(KindShutdown, i, slot.Generation);
                    Target(s, slot);
                    slot.ShutdownPending = true;
                }
                else SocketCalls.Shutdown(slot.Fd, SocketCalls.SHUT_RDWR);
            }
            if (slot.RecvArmed || slot.Sending || slot.ZcPending || slot.ShutdownPending) return; // wait for the last completions
            CloseDescriptor(slot.Fd);
            slot.Fd = -1;
            ClearBatches(slot);
            _server._handler.OnClosed(slot.Connection);
            _free.Push(i);
        }
    }
}
