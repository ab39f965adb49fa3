using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Netloom.AspNetCore;

/// <summary>
/// What both transports hand Kestrel: a connection id, the duplex pipe, endpoints, items, the
/// memory pool, abort and a token cancelled when the connection closes. The features Kestrel
/// looks up are this object itself.
/// </summary>
internal abstract class NetloomConnectionContext : ConnectionContext,
    IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature, IMemoryPoolFeature, IConnectionEndPointFeature, IConnectionLifetimeFeature
{
    private static long s_next;
    private readonly CancellationTokenSource _closed = new();
    private readonly FeatureCollection _features = new();
    private IDictionary<object, object?>? _items;
    private int _closedFired;

    protected NetloomConnectionContext(MemoryPool<byte> pool, EndPoint? local, EndPoint? remote)
    {
        MemoryPool = pool;
        LocalEndPoint = local;
        RemoteEndPoint = remote;
        ConnectionId = $"netloom-{Interlocked.Increment(ref s_next):x}";
        _features.Set<IConnectionIdFeature>(this);
        _features.Set<IConnectionTransportFeature>(this);
        _features.Set<IConnectionItemsFeature>(this);
        _features.Set<IMemoryPoolFeature>(this);
        _features.Set<IConnectionEndPointFeature>(this);
        _features.Set<IConnectionLifetimeFeature>(this);
    }

    public override string ConnectionId { get; set; }
    public override IFeatureCollection Features => _features;
    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }
    public override IDuplexPipe Transport { get; set; } = null!;
    public MemoryPool<byte> MemoryPool { get; }
    public override EndPoint? LocalEndPoint { get; set; }
    public override EndPoint? RemoteEndPoint { get; set; }
    public override CancellationToken ConnectionClosed
    {
        get => _closed.Token;
        set => throw new NotSupportedException("the transport owns the connection-closed token");
    }

    /// <summary>The connection is gone (the peer closed, or it was aborted): tell Kestrel once, off the transport's thread.</summary>
    protected void FireClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) != 0) return;
        ThreadPool.UnsafeQueueUserWorkItem(static s => ((CancellationTokenSource)s!).Cancel(), _closed);
    }

    public override void Abort(ConnectionAbortedException abortReason) => AbortCore(abortReason);

    protected abstract void AbortCore(Exception reason);
}
