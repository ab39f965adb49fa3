using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Netloom.Sockets;

namespace Netloom.AspNetCore.Stack;

/// <summary>
/// A Kestrel connection on the user-level stack: a receive loop copies what the stack received
/// into the input pipe, a send loop copies the output pipe into the stack's send buffer (waiting
/// for room as the peer acknowledges), as Kestrel's sockets transport does over a kernel socket.
/// </summary>
internal sealed class StackConnectionContext : NetloomConnectionContext
{
    private const int MinimumSegment = 4096;
    private readonly TcpConnection _connection;
    private readonly Pipe _input, _output;
    private readonly CancellationTokenSource _stopReceiving = new();
    private readonly Task _receiving, _sending;
    private volatile bool _aborted;

    public StackConnectionContext(TcpConnection connection, MemoryPool<byte> pool)
        : base(pool, connection.LocalEndPoint, connection.RemoteEndPoint)
    {
        _connection = connection;
        _input = new Pipe(new PipeOptions(pool, PipeScheduler.ThreadPool, PipeScheduler.Inline, pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 512 << 10, useSynchronizationContext: false));
        _output = new Pipe(new PipeOptions(pool, PipeScheduler.Inline, PipeScheduler.ThreadPool, pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 512 << 10, useSynchronizationContext: false));
        Transport = new DuplexPipe(_input.Reader, _output.Writer);
        _receiving = ReceiveAsync();
        _sending = SendAsync();
    }

    private sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    private async Task ReceiveAsync()
    {
        await Task.Yield(); // start on the thread pool, not on the accepting thread
        Exception? error = null;
        try
        {
            while (true)
            {
                var memory = _input.Writer.GetMemory(MinimumSegment);
                int n = await _connection.ReadAsync(memory, _stopReceiving.Token).ConfigureAwait(false);
                if (n == 0) break; // the peer finished sending
                _input.Writer.Advance(n);
                var flush = await _input.Writer.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled) break; // Kestrel stopped reading
            }
        }
        catch (OperationCanceledException) { }
        catch (TcpException e) { error = _aborted ? null : new ConnectionResetException(e.Message, e); }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException) { }
        finally
        {
            await _input.Writer.CompleteAsync(error).ConfigureAwait(false);
            FireClosed();
        }
    }

    private async Task SendAsync()
    {
        await Task.Yield();
        try
        {
            while (true)
            {
                var r = await _output.Reader.ReadAsync().ConfigureAwait(false);
                if (r.IsCanceled || _aborted) break;
                foreach (var segment in r.Buffer) await _connection.WriteAsync(segment).ConfigureAwait(false);
                _output.Reader.AdvanceTo(r.Buffer.End);
                if (r.IsCompleted) break;
            }
            if (!_aborted) _connection.ShutdownSend(); // FIN after what was written
        }
        catch (Exception e) when (e is TcpException or ObjectDisposedException or InvalidOperationException) { }
        finally
        {
            await _output.Reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    protected override void AbortCore(Exception reason)
    {
        _aborted = true;
        _connection.Abort(); // RST now; the loops see the connection fail
        _output.Reader.CancelPendingRead();
        FireClosed();
    }

    public override async ValueTask DisposeAsync()
    {
        await _output.Writer.CompleteAsync().ConfigureAwait(false);
        await _input.Reader.CompleteAsync().ConfigureAwait(false);
        await _sending.ConfigureAwait(false);
        // The receive loop waits for the peer; Kestrel is done with the input, so stop it.
        _stopReceiving.Cancel();
        await _receiving.ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false); // FIN (or RST if unread data remains)
        _stopReceiving.Dispose();
    }
}
