using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Netloom.Offload;

namespace Netloom.AspNetCore.Uring;

/// <summary>Binds Kestrel's IP endpoints on the io_uring engine.</summary>
internal sealed class UringTransportFactory(NetloomIoUringOptions options, IServiceProvider services) : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not IPEndPoint ip) throw new NotSupportedException($"the io_uring transport binds IP endpoints, not {endpoint.GetType().Name}");
        var engine = new UringServerOptions
        {
            RegisteredFiles = options.RegisteredFiles,
            BusyPollMicroseconds = options.BusyPollMicroseconds,
            SqPoll = options.SqPoll,
        };
        var listener = new UringConnectionListener(ip, Math.Max(1, options.Threads), engine, Pools.FromServices(services, "netloom-io_uring"),
            options.ApplicationInline ? PipeScheduler.Inline : PipeScheduler.ThreadPool);
        try { listener.Start(); }
        catch (Exception e) when (e is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.AddressAlreadyInUse })
        {
            listener.Dispose();
            throw new AddressInUseException(e.Message, e);
        }
        return ValueTask.FromResult<IConnectionListener>(listener);
    }
}

/// <summary>
/// One Kestrel endpoint on a <see cref="UringServer"/>: the loops accept and hand each
/// connection (a <see cref="PipeConnection"/>) to a queue that Kestrel's accept loop reads.
/// </summary>
internal sealed class UringConnectionListener : IConnectionListener, IDisposable
{
    private readonly Channel<UringConnectionContext> _accepted = Channel.CreateUnbounded<UringConnectionContext>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });
    private readonly UringServer _server;
    private readonly MemoryPool<byte> _pool;
    private int _disposed;

    public UringConnectionListener(IPEndPoint endpoint, int threads, UringServerOptions engine, MemoryPool<byte> pool, PipeScheduler scheduler)
    {
        _pool = pool;
        var handler = new PipeConnectionHandler(c =>
        {
            var context = new UringConnectionContext(c, pool);
            if (!_accepted.Writer.TryWrite(context)) c.Abort(); // unbound meanwhile: refuse
        }, pool, scheduler);
        _server = new UringServer(endpoint, handler, threads, engine);
        EndPoint = endpoint;
    }

    public EndPoint EndPoint { get; private set; }

    public void Start()
    {
        _server.Start();
        EndPoint = _server.LocalEndPoint;
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try { return await _accepted.Reader.ReadAsync(cancellationToken).ConfigureAwait(false); }
        catch (ChannelClosedException) { return null; }
    }

    /// <summary>Graceful shutdown, step one: no new connections; the open ones go on.</summary>
    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _server.StopAccepting();
        _accepted.Writer.TryComplete();
        while (_accepted.Reader.TryRead(out var late)) late.Abort(); // accepted by the kernel, never seen by Kestrel
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _accepted.Writer.TryComplete();
        _server.Dispose(); // stops the loops: every connection still open closes, and its application reads the end
        (_pool as IDisposable)?.Dispose();
    }
}

/// <summary>A Kestrel connection on the io_uring engine: the pipes the ring fills and drains.</summary>
internal sealed class UringConnectionContext : NetloomConnectionContext
{
    private readonly PipeConnection _connection;

    public UringConnectionContext(PipeConnection connection, MemoryPool<byte> pool)
        : base(pool, connection.LocalEndPoint, connection.RemoteEndPoint)
    {
        _connection = connection;
        Transport = connection;
        connection.Closed.ContinueWith(static (_, s) => ((UringConnectionContext)s!).FireClosed(), this,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    protected override void AbortCore(Exception reason) => _connection.Abort();

    public override async ValueTask DisposeAsync()
    {
        // Kestrel has finished with the connection: the output's end closes it once everything is sent.
        await _connection.Output.CompleteAsync().ConfigureAwait(false);
        await _connection.Input.CompleteAsync().ConfigureAwait(false);
        _connection.Wake();
        if (await Task.WhenAny(_connection.Closed, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false) != _connection.Closed)
            _connection.Abort(); // the peer does not take the rest: stop waiting for it
    }
}
