using System.Buffers;
using System.IO.Pipelines;

namespace Netloom.Offload;

/// <summary>
/// Kestrel's shape on the io_uring engine: each connection is an <see cref="IDuplexPipe"/> handed
/// to an async application. Received bytes are written into the input pipe on the ring's thread;
/// what the application writes to the output pipe wakes the ring (an eventfd the ring reads), which
/// copies it into the connection's send buffer. Both pipes are bounded: the output pipe pauses the
/// application's writes when the client reads slowly; an input backlog past 64 MiB closes the
/// connection. Completing the output closes the connection once everything has been sent.
/// The Kestrel transport (src/Netloom.AspNetCore) uses the same handler through the internal
/// constructor, which hands each <see cref="PipeConnection"/> to a callback instead of running an application.
/// </summary>
public sealed class PipeConnectionHandler : IConnectionHandler
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

    /// <summary>Applications that threw (they are logged by count; the connection is closed).</summary>
    public long Faults => Volatile.Read(ref _faults);
    private long _faults;

    public void OnConnected(Connection connection)
    {
        var state = new PipeConnection(connection, _pool, _applicationScheduler);
        connection.State = state;
        _accepted(state);
    }

    public int OnData(Connection connection, ReadOnlySpan<byte> data)
    {
        var state = (PipeConnection)connection.State!;
        state.In.Writer.Write(data);
        var flush = state.In.Writer.FlushAsync();
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

    public void OnSendCompleted(Connection connection) => Pull(connection, (PipeConnection)connection.State!);

    /// <summary>Moves what the application wrote into the send buffer, up to a high-water mark, and asks to be woken for more.</summary>
    private static void Pull(Connection c, PipeConnection s)
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
                    next.GetAwaiter().UnsafeOnCompleted(s.Wake);
                    return;
                }
                r = next.Result;
            }
            foreach (var segment in r.Buffer) c.Output.Write(segment.Span);
            s.Out.Reader.AdvanceTo(r.Buffer.End);
            if (r.IsCompleted || r.IsCanceled)
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
internal sealed class PipeConnection : IDuplexPipe
{
    public readonly Pipe In, Out;
    public readonly Action Wake;
    public ValueTask<ReadResult>? PendingRead;
    public bool OutputDone;
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _abort, _isClosed;

    public PipeConnection(Connection c, MemoryPool<byte>? pool, PipeScheduler? applicationScheduler)
    {
        // The ring's thread writes the input and reads the output: its side runs inline.
        In = new(new PipeOptions(pool, readerScheduler: applicationScheduler, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: PipeConnectionHandler.InputLimit, resumeWriterThreshold: PipeConnectionHandler.InputLimit / 2, useSynchronizationContext: false));
        Out = new(new PipeOptions(pool, readerScheduler: PipeScheduler.Inline, writerScheduler: applicationScheduler,
            pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 512 << 10, useSynchronizationContext: false));
        (LocalEndPoint, RemoteEndPoint) = c.KernelFd >= 0 ? (Interop.SocketCalls.LocalEndPoint(c.KernelFd), Interop.SocketCalls.RemoteEndPoint(c.KernelFd)) : (null, null);
        // A connection object is reused after it closes: a late wake must not reach its next user.
        Wake = () => { if (!_isClosed) c.Wake(); };
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
