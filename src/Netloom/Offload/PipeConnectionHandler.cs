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
/// </summary>
public sealed class PipeConnectionHandler(Func<IDuplexPipe, Task> application) : IConnectionHandler
{
    private const long InputLimit = 64 << 20, OutputHigh = 256 << 10;

    private sealed class State : IDuplexPipe
    {
        public readonly Pipe In = new(new PipeOptions(pauseWriterThreshold: InputLimit, resumeWriterThreshold: InputLimit / 2, useSynchronizationContext: false));
        public readonly Pipe Out = new(new PipeOptions(pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 512 << 10, useSynchronizationContext: false));
        public readonly Action Wake;
        public ValueTask<ReadResult>? PendingRead;
        public bool OutputDone;

        public State(Connection c) => Wake = c.Wake;
        public PipeReader Input => In.Reader;
        public PipeWriter Output => Out.Writer;
    }

    /// <summary>Applications that threw (they are logged by count; the connection is closed).</summary>
    public long Faults => Volatile.Read(ref _faults);
    private long _faults;

    public void OnConnected(Connection connection)
    {
        var state = new State(connection);
        connection.State = state;
        _ = Task.Run(async () =>
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

    public int OnData(Connection connection, ReadOnlySpan<byte> data)
    {
        var state = (State)connection.State!;
        state.In.Writer.Write(data);
        var flush = state.In.Writer.FlushAsync();
        if (!flush.IsCompleted) connection.Close(); // the application left 64 MiB unread: stop holding more
        Pull(connection, state);
        return data.Length;
    }

    public void OnWake(Connection connection) => Pull(connection, (State)connection.State!);

    /// <summary>The client finished sending: the application reads the end of its input and may go on writing.</summary>
    public bool OnEndOfInput(Connection connection)
    {
        if (connection.State is State s) s.In.Writer.Complete();
        return true;
    }

    public void OnSendCompleted(Connection connection) => Pull(connection, (State)connection.State!);

    /// <summary>Moves what the application wrote into the send buffer, up to a high-water mark, and asks to be woken for more.</summary>
    private static void Pull(Connection c, State s)
    {
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
        if (connection.State is not State s) return;
        connection.State = null;
        s.In.Writer.Complete();   // the application reads the end of the stream
        if (!s.OutputDone) s.Out.Reader.Complete(new IOException("the connection closed")); // its further writes see the reader gone
    }
}
