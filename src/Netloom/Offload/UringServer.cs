using System.Net;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
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
    /// <summary>Submission queue entries per ring (the completion queue has four times as many).</summary>
    internal int RingEntries { get; init; } = 4096;
}

/// <summary>
/// An event-driven TCP server on io_uring: one ring per thread, each thread with its own
/// listening socket (SO_REUSEPORT, so the kernel spreads connections). Per loop turn it submits
/// everything prepared and waits in one io_uring_enter. Connections are accepted by one
/// multishot accept (into registered file slots when the kernel allows), read by one multishot
/// recv each from a provided buffer ring (an idle connection holds no buffer), and answered by at
/// most one send in flight from a double buffer; large responses go zero-copy (SEND_ZC), and the
/// buffer is reused only after the kernel's notification. This class is the façade: the loops
/// (<see cref="UringLoop"/>) do the work.
/// </summary>
public sealed class UringServer : IDisposable
{
    private readonly IPEndPoint _endpoint;
    private readonly IConnectionHandler _handler;
    private readonly int _threads;
    private readonly UringServerOptions _options;
    private readonly List<Thread> _threadsRunning = [];
    private readonly List<Socket> _listeners = [];
    private readonly LoopCounters[] _counters;
    private readonly UringLoop?[] _loops;
    private readonly CancellationTokenSource _stop = new();
    private readonly NativeAllocator _memory = new();
    private ExceptionDispatchInfo? _failure;
    private SendMode _mode;
    private int _started, _fixedFileLoops;
    private bool _disposed;

    public UringServer(IPEndPoint endpoint, IConnectionHandler handler, int threads, UringServerOptions? options = null)
    {
        _endpoint = endpoint;
        _handler = handler;
        _threads = Math.Max(1, threads);
        _options = options ?? new UringServerOptions();
        _counters = new LoopCounters[_threads];
        for (int t = 0; t < _threads; t++) _counters[t] = new LoopCounters();
        _loops = new UringLoop?[_threads];
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_listeners[0].LocalEndPoint!;

    /// <summary>What the loops have done so far, summed: a snapshot, cheap to take (it reads one set of fields per loop).</summary>
    public OffloadCounters Counters => LoopCounters.Sum(_counters);

    /// <summary>What the engine ended up using (registered files, SEND_ZC, SQPOLL), for logs.</summary>
    public string Features { get; private set; } = "";

    /// <summary>Why a loop stopped, if one failed (with the stack trace of the loop's thread).</summary>
    public Exception? Failure => _failure?.SourceException;

    /// <summary>Native bytes the engine holds now (rings' buffers, connections' output); zero once it has stopped.</summary>
    internal long NativeBytes => _memory.LiveBytes;

    /// <summary>Binds every thread's listener and starts the loops; throws if io_uring cannot be used.</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_threadsRunning.Count > 0) throw new InvalidOperationException("this server has already been started; make a new one to start again");
        _mode = Probe();
        try
        {
            var endpoint = _endpoint;
            for (int t = 0; t < _threads; t++)
            {
                var listener = Listen(endpoint);
                endpoint = (IPEndPoint)listener.LocalEndPoint!; // the first bind picks the port when asked for 0
                int index = t, fd = (int)listener.SafeHandle.DangerousGetHandle();
                var thread = new Thread(() => RunLoop(index, fd)) { Name = $"uring loop {t}", IsBackground = true };
                _threadsRunning.Add(thread);
                thread.Start();
            }
            SpinWait.SpinUntil(() => Volatile.Read(ref _started) == _threads || Volatile.Read(ref _failure) is not null, 5000);
            // The loop's own exception, with the stack trace of the thread it came from.
            Volatile.Read(ref _failure)?.Throw();
        }
        catch
        {
            Stop();
            throw;
        }
        Features = string.Join(", ",
            Volatile.Read(ref _fixedFileLoops) == _threads ? "registered files" : "plain descriptors",
            _mode == SendMode.PairedZeroCopy ? $"SEND_ZC from {_options.ZeroCopyThreshold} B" : "no SEND_ZC",
            _mode == SendMode.Bundles ? "send bundles" : _options.SendBundles ? "no send bundles (the kernel lacks them)" : "no send bundles",
            _options.SqPoll ? "SQPOLL" : "no SQPOLL",
            _options.BusyPollMicroseconds > 0 && !_options.SqPoll ? $"busy poll {_options.BusyPollMicroseconds} µs" : "sleeps when idle");
        // The "Netloom" meter reads the counters on demand; the registration holds the server weakly.
        _metrics = Netloom.Diagnostics.OffloadMetrics.Register(this, LocalEndPoint.ToString(), static s => ((UringServer)s).Reading());
    }

    private IDisposable? _metrics;

    private Netloom.Diagnostics.OffloadReading Reading()
    {
        var c = Counters;
        return new(c.Accepted, c.Requests, c.Enters, c.ZeroCopySends, c.BundleSends, c.BundleBatches, c.BundleFaults);
    }

    /// <summary>Fails early, with a clear message, when io_uring or what the engine needs is unavailable; picks the send path.</summary>
    private SendMode Probe()
    {
        using var probe = new UringRing(4);
        foreach (var (op, name) in new[] { (OpAccept, "ACCEPT"), (OpRecv, "RECV"), (OpSend, "SEND"), (OpTimeout, "TIMEOUT") })
            if (!probe.Supports(op)) throw new UringUnavailableException($"this kernel's io_uring lacks IORING_OP_{name}", Errno.EOPNOTSUPP);
        using (new ProvidedBuffers(probe, 1, 2, 64, _memory)) { } // multishot recv needs provided buffer rings (5.19+)
        if (_options.SendBundles && (probe.Features & FeatRecvSendBundle) != 0) return SendMode.Bundles;
        return _options.ZeroCopyThreshold > 0 && probe.Supports(OpSendZc) ? SendMode.PairedZeroCopy : SendMode.Paired;
    }

    private Socket Listen(IPEndPoint endpoint)
    {
        var l = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listeners.Add(l);
        l.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        l.SetRawSocketOption(SocketCalls.SOL_SOCKET, SocketCalls.SO_REUSEPORT, BitConverter.GetBytes(1));
        l.Bind(endpoint);
        l.Listen(1024);
        return l;
    }

    private void RunLoop(int index, int listenFd)
    {
        try
        {
            var loop = new UringLoop(_handler, listenFd, _options, _mode, _counters[index], _memory, _stop.Token);
            Volatile.Write(ref _loops[index], loop);
            if (loop.FixedFiles) Interlocked.Increment(ref _fixedFileLoops);
            Interlocked.Increment(ref _started);
            loop.Run();
        }
        catch (Exception e) { Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(e), null); }
    }

    /// <summary>
    /// Stops taking new connections (a graceful shutdown's first step) while the open ones go on:
    /// shutting a listening socket down fails its pending multishot accept, and the loops, told
    /// first, do not arm another. New connection attempts are refused by the kernel from then on.
    /// </summary>
    internal void StopAccepting()
    {
        for (int t = 0; t < _loops.Length; t++)
            if (Volatile.Read(ref _loops[t]) is { } loop) loop.AcceptStopped = true;
        foreach (var l in _listeners) SocketCalls.Shutdown((int)l.SafeHandle.DangerousGetHandle(), 0 /* SHUT_RD */);
    }

    /// <summary>Asks every loop to stop, wakes the sleeping ones, waits for them, and closes the listeners.</summary>
    private void Stop()
    {
        _stop.Cancel();
        for (int t = 0; t < _loops.Length; t++) Volatile.Read(ref _loops[t])?.Interrupt();
        foreach (var t in _threadsRunning) t.Join(2000);
        foreach (var l in _listeners) l.Dispose();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _metrics?.Dispose();
        Stop();
    }
}
