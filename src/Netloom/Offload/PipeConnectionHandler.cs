using System.Buffers;
using System.IO.Pipelines;
using Netloom.Interop;

namespace Netloom.Offload;

/// <summary>
/// Kestrel's shape on the io_uring engine: each connection is an <see cref="IDuplexPipe"/> handed
/// to an async application. Received bytes are written into the input pipe on the ring's thread;
/// what the application flushes to the output pipe from the ring's thread (an inline application)
/// is copied into the connection's send buffer before the ring next waits. A flush from another
/// thread is sent from the thread pool with sendmsg straight from the pipe's memory when the ring
/// has nothing of the connection queued; otherwise it wakes the ring (an eventfd the ring reads),
/// which copies it into the send buffer. Both pipes are bounded: the output pipe pauses the
/// application's writes when the client reads slowly; an input backlog past 64 MiB closes the
/// connection. Completing the output closes the connection once everything has been sent.
/// The Kestrel transport (src/Netloom.AspNetCore) uses the same handler through the internal
/// constructor, which hands each <see cref="PipeConnection"/> to a callback instead of running an application.
/// </summary>
public sealed class PipeConnectionHandler : IConnectionHandler, IDescriptorUser
{
    internal const long InputLimit = 64 << 20;
    private const long OutputHigh = 256 << 10;

    private readonly Action<PipeConnection> _accepted;
    private readonly MemoryPool<byte>? _pool;
    private readonly PipeScheduler? _applicationScheduler;

    /// <summary>Runs <paramref name="application"/> on the thread pool for each connection.</summary>
    public PipeConnectionHandler(Func<IDuplexPipe, Task> application)
    {
        ArgumentNullException.ThrowIfNull(application);
        _accepted = state => _ = Task.Run(async () =>
        {
            try { await application(state).ConfigureAwait(false); }
            catch (Exception) { Interlocked.Increment(ref _faults); }
            finally
            {
                await state.Out.Writer.CompleteAsync().ConfigureAwait(false);
                await state.In.Reader.CompleteAsync().ConfigureAwait(false);
                state.Wake();
            }
        });
    }

    /// <summary>
    /// Hands each new connection to <paramref name="accepted"/> (on the ring's thread: it must not
    /// block). Pipes take memory from <paramref name="pool"/>; the application's continuations run on
    /// <paramref name="applicationScheduler"/> (null: the thread pool; <see cref="PipeScheduler.Inline"/>: the ring's thread).
    /// </summary>
    internal PipeConnectionHandler(Action<PipeConnection> accepted, MemoryPool<byte>? pool, PipeScheduler? applicationScheduler)
    {
        _accepted = accepted;
        _pool = pool;
        _applicationScheduler = applicationScheduler;
    }

    /// <summary>Sends made straight from the output pipe by a thread-pool thread (not through the ring).</summary>
    internal long DirectSends => Volatile.Read(ref _directSends);
    internal long _directSends;

    /// <summary>Applications that threw (they are logged by count; the connection is closed).</summary>
    public long Faults => Volatile.Read(ref _faults);
    private long _faults;

    public void OnConnected(Connection connection)
    {
        var state = new PipeConnection(connection, _pool, _applicationScheduler, this);
        connection.State = state;
        _accepted(state);
    }

    public int OnData(Connection connection, ReadOnlySpan<byte> data)
    {
        var state = (PipeConnection)connection.State!;
        state.In.Writer.Write(data);
        // An inline application answers inside this flush; the Pull below takes its output, so
        // its flushes need not queue a wake-up of this loop.
        state.InData = true;
        ValueTask<FlushResult> flush;
        try { flush = state.In.Writer.FlushAsync(); }
        finally { state.InData = false; }
        if (!flush.IsCompleted) connection.Close(); // the application left 64 MiB unread: stop holding more
        Pull(connection, state);
        return data.Length;
    }

    public void OnWake(Connection connection) => Pull(connection, (PipeConnection)connection.State!);

    /// <summary>The client finished sending: the application reads the end of its input and may go on writing.</summary>
    public bool OnEndOfInput(Connection connection)
    {
        if (connection.State is PipeConnection s) s.In.Writer.Complete();
        return true;
    }

    public void OnSendCompleted(Connection connection)
    {
        var s = (PipeConnection)connection.State!;
        // Nothing queued or in flight on the ring any more: another thread may send directly again
        // (cleared before the pull: a flush that saw the flag still set relies on this pull).
        if (connection.Output.Length == 0) s.RingBusy = false;
        Pull(connection, s);
    }

    /// <summary>The loop is about to close the descriptor: no direct send may use it from now on.</summary>
    void IDescriptorUser.ReleaseDescriptor(Connection connection)
    {
        if (connection.State is PipeConnection s) s.ReleaseDescriptor();
    }

    /// <summary>
    /// Moves what the application wrote into the send buffer, up to a high-water mark, and asks to
    /// be woken for more. While another thread is sending directly it leaves the output alone; that
    /// thread wakes the loop when it is done.
    /// </summary>
    private static void Pull(Connection c, PipeConnection s)
    {
        if (!s.TryOwnForRing()) return;
        int before = c.Output.Length;
        try { PullOwned(c, s); }
        finally
        {
            if (c.Output.Length != before) s.RingBusy = true;
            s.ReleaseFromRing();
        }
    }

    private static void PullOwned(Connection c, PipeConnection s)
    {
        if (s.AbortRequested && !s.OutputDone)
        {
            // Abort: what the application flushed before it aborted still goes out (as it would
            // have on a socket it had written to), nothing more is taken, and the connection closes.
            ReadResult flushed = default;
            bool any;
            if (s.PendingRead is { } pending)
            {
                any = pending.IsCompleted; // the flush that completed it may have come just before the abort
                if (any) flushed = pending.Result;
                s.PendingRead = null;
            }
            else any = s.Out.Reader.TryRead(out flushed);
            if (any)
            {
                foreach (var segment in flushed.Buffer) c.Output.Write(segment.Span);
                s.Out.Reader.AdvanceTo(flushed.Buffer.End);
            }
            s.OutputDone = true;
            s.Out.Reader.Complete();
            c.Close();
            return;
        }
        if (s.OutputEnded && !s.OutputDone)
        {
            // A direct send read a cancelled result: what it could not send still goes, then the end.
            if (s.Out.Reader.TryRead(out var rest))
            {
                foreach (var segment in rest.Buffer) c.Output.Write(segment.Span);
                s.Out.Reader.AdvanceTo(rest.Buffer.End);
            }
            s.OutputDone = true;
            s.Out.Reader.Complete();
            c.Close();
            return;
        }
        while (!s.OutputDone && c.Output.Length < OutputHigh)
        {
            ReadResult r;
            if (s.PendingRead is { } pending)
            {
                if (!pending.IsCompleted) return; // still waiting: its completion wakes us
                s.PendingRead = null;
                r = pending.Result;
            }
            else if (!s.Out.Reader.TryRead(out r))
            {
                var next = s.Out.Reader.ReadAsync();
                if (!next.IsCompleted)
                {
                    s.PendingRead = next;
                    next.GetAwaiter().UnsafeOnCompleted(s.OutputReady);
                    return;
                }
                r = next.Result;
            }
            foreach (var segment in r.Buffer) c.Output.Write(segment.Span);
            s.Out.Reader.AdvanceTo(r.Buffer.End);
            if (r.IsCompleted || r.IsCanceled || s.OutputEnded)
            {
                s.OutputDone = true;
                s.Out.Reader.Complete();
                c.Close();
            }
        }
    }

    public void OnClosed(Connection connection)
    {
        if (connection.State is not PipeConnection s) return;
        connection.State = null;
        s.In.Writer.Complete();   // the application reads the end of the stream
        if (!s.OutputDone) s.Out.Reader.Complete(new IOException("the connection closed")); // its further writes see the reader gone
        s.MarkClosed();
    }
}

/// <summary>
/// One connection of a <see cref="PipeConnectionHandler"/>: the application's duplex pipe, plus
/// what a transport needs around it (the kernel's endpoints, abort, a closed notification).
/// Everything but the pipes' application ends, <see cref="Abort"/> and <see cref="Closed"/> belongs to the ring's thread.
/// </summary>
internal sealed unsafe class PipeConnection : IDuplexPipe, IThreadPoolWorkItem
{
    public readonly Pipe In, Out;
    public readonly Action Wake;
    /// <summary>The output read the loop waits on; its completion runs <see cref="OutputReady"/> on the flushing thread.</summary>
    public readonly Action OutputReady;
    public ValueTask<ReadResult>? PendingRead;
    public bool OutputDone;
    /// <summary>The loop is in OnData's flush of the input (on its own thread): it pulls the output right after.</summary>
    public bool InData;
    /// <summary>The ring holds output of this connection (in its send buffer, or in flight): no direct send may overtake it.</summary>
    public volatile bool RingBusy;
    /// <summary>A direct send read a cancelled result: the loop treats the output as ended.</summary>
    public volatile bool OutputEnded;
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _abort, _isClosed, _descriptorReleased;
    private readonly int _fd, _ringThread;
    // Who may read the output pipe now: nobody (0), the loop (1) or a thread sending directly (2).
    private int _owner, _ringWanted;
    private const int Ring = 1, Direct = 2, MaxGather = 16;
    private MemoryHandle[]? _pins;
    private readonly PipeConnectionHandler? _handler;

    public PipeConnection(Connection c, MemoryPool<byte>? pool, PipeScheduler? applicationScheduler, PipeConnectionHandler? handler = null)
    {
        _handler = handler;
        // The ring's thread writes the input and reads the output: its side runs inline.
        In = new(new PipeOptions(pool, readerScheduler: applicationScheduler, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: PipeConnectionHandler.InputLimit, resumeWriterThreshold: PipeConnectionHandler.InputLimit / 2, useSynchronizationContext: false));
        Out = new(new PipeOptions(pool, readerScheduler: PipeScheduler.Inline, writerScheduler: applicationScheduler,
            pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 512 << 10, useSynchronizationContext: false));
        (LocalEndPoint, RemoteEndPoint) = c.KernelFd >= 0 ? (Interop.SocketCalls.LocalEndPoint(c.KernelFd), Interop.SocketCalls.RemoteEndPoint(c.KernelFd)) : (null, null);
        // A connection object is reused after it closes: a late wake must not reach its next user.
        Wake = () => { if (!_isClosed) c.Wake(); };
        OutputReady = SendOrWake;
        _fd = c.KernelFd;
        _ringThread = Environment.CurrentManagedThreadId; // connections are made on the loop's thread
    }

    /// <summary>On the loop's thread: false while another thread sends directly (it wakes the loop when done).</summary>
    public bool TryOwnForRing()
    {
        Volatile.Write(ref _ringWanted, 1);
        if (Interlocked.CompareExchange(ref _owner, Ring, 0) != 0) return false;
        _ringWanted = 0;
        return true;
    }

    public void ReleaseFromRing() => Volatile.Write(ref _owner, 0);

    /// <summary>On the loop's thread, before the descriptor closes: waits out a direct send in progress; none starts after.</summary>
    public void ReleaseDescriptor()
    {
        _descriptorReleased = true;
        var spin = new SpinWait();
        while (Interlocked.CompareExchange(ref _owner, Ring, 0) != 0) spin.SpinOnce();
        Volatile.Write(ref _owner, 0);
    }

    /// <summary>
    /// The application flushed output the loop was waiting for (this runs inside its FlushAsync).
    /// On the loop's own thread (an inline application) the loop takes it before it next waits.
    /// On any other thread, when the ring holds nothing of this connection, a thread-pool work item
    /// sends it with one non-blocking sendmsg gathered from the pipe's segments (no copy, no wake-up
    /// of the loop), as Kestrel's sockets transport sends: flushes that come before the item runs
    /// go out in the same call (HTTP/2 flushes every few frames). A plain sendmsg does not touch the
    /// ring, so the ring keeps its single issuer. What the socket does not take, an end of output,
    /// or an error is left in the pipe, and the loop is woken to deal with it as before.
    /// Measured (docs/BENCHMARKS.md): sending at once inside the flush made one system call per
    /// flush and was slower than waking the loop; the deferred send made the fewest calls.
    /// </summary>
    private void SendOrWake()
    {
        if (Environment.CurrentManagedThreadId == _ringThread)
        {
            if (!InData) Wake();
        }
        else if (_fd < 0 || _abort) Wake();
        else
        {
            // The ring still sends this connection's earlier output: its completion pulls this too
            // (the loop clears RingBusy before that pull; the fence orders the pipe's completion before the read).
            Interlocked.MemoryBarrier();
            if (!RingBusy) ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    void IThreadPoolWorkItem.Execute() => SendNow();

    private void SendNow()
    {
        if (Interlocked.CompareExchange(ref _owner, Direct, 0) != 0)
        {
            Wake();
            return;
        }
        bool handBack = false;
        try
        {
            if (PendingRead is { IsCompleted: true } pending)
            {
                if (_descriptorReleased || _abort) handBack = true;
                else if (RingBusy) { } // the ring's send completion pulls it (see SendOrWake)
                else
                {
                    PendingRead = null;
                    handBack = !SendDirect(pending.Result);
                }
            }
            // else: the loop took the output meanwhile, and waits for more with a read of its own.
        }
        finally
        {
            Interlocked.Exchange(ref _owner, 0);
            if (handBack || Volatile.Read(ref _ringWanted) != 0) Wake();
        }
    }

    /// <summary>Sends what a read returned; true when all of it went and the next read waits for the application again.</summary>
    private bool SendDirect(ReadResult r)
    {
        var buffer = r.Buffer;
        long sent = buffer.IsEmpty ? 0 : Send(buffer);
        if (sent > 0 && _handler is { } h) Interlocked.Increment(ref h._directSends);
        Out.Reader.AdvanceTo(buffer.GetPosition(sent));
        if (r.IsCanceled) OutputEnded = true;
        if (sent != buffer.Length || r.IsCompleted || r.IsCanceled) return false;
        var next = Out.Reader.ReadAsync();
        PendingRead = next;
        if (next.IsCompleted) return false; // more came meanwhile: the loop takes it
        next.GetAwaiter().UnsafeOnCompleted(OutputReady);
        return true;
    }

    /// <summary>One sendmsg (MSG_DONTWAIT) of up to 16 segments; the bytes the kernel took (0 on EAGAIN or an error, which the loop then meets).</summary>
    private long Send(in ReadOnlySequence<byte> buffer)
    {
        var msg = default(Libc.MsgHdr);
        var iov = stackalloc Libc.IoVec[MaxGather];
        msg.Iov = iov;
        nint n;
        if (buffer.IsSingleSegment)
        {
            fixed (byte* p = buffer.FirstSpan)
            {
                iov[0] = new Libc.IoVec { Base = p, Length = (nuint)buffer.FirstSpan.Length };
                msg.IovLength = 1;
                n = SocketCalls.SendMsg(_fd, &msg, SocketCalls.MSG_DONTWAIT | SocketCalls.MSG_NOSIGNAL);
            }
        }
        else
        {
            var pins = _pins ??= new MemoryHandle[MaxGather];
            int count = 0;
            try
            {
                foreach (var segment in buffer)
                {
                    if (segment.IsEmpty) continue;
                    if (count == MaxGather) break;
                    pins[count] = segment.Pin();
                    iov[count] = new Libc.IoVec { Base = pins[count].Pointer, Length = (nuint)segment.Length };
                    count++;
                }
                msg.IovLength = (nuint)count;
                n = SocketCalls.SendMsg(_fd, &msg, SocketCalls.MSG_DONTWAIT | SocketCalls.MSG_NOSIGNAL);
            }
            finally
            {
                for (int i = 0; i < count; i++) pins[i].Dispose();
            }
        }
        return n > 0 ? n : 0;
    }

    public PipeReader Input => In.Reader;
    public PipeWriter Output => Out.Writer;
    /// <summary>The kernel's endpoints (null where the socket lives in a registered file table, which has no descriptor to ask).</summary>
    public System.Net.IPEndPoint? LocalEndPoint { get; }
    public System.Net.IPEndPoint? RemoteEndPoint { get; }
    /// <summary>Completes once the engine has closed the connection (after an abort, the peer's end, or the output's completion).</summary>
    public Task Closed => _closed.Task;
    public bool AbortRequested => _abort;

    /// <summary>From any thread: drops unsent output and closes the connection.</summary>
    public void Abort()
    {
        _abort = true;
        Wake();
    }

    internal void MarkClosed()
    {
        _isClosed = true;
        _closed.TrySetResult();
    }
}
