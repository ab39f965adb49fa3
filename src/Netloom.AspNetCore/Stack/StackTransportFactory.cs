using System.Buffers;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.DependencyInjection;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.AspNetCore.Stack;

/// <summary>The user-level stack's settings, checked when the program calls UseNetloomStack (bad input fails there, with a message).</summary>
internal sealed record StackConfig(string PortSpec, StackOptions Stack, bool BusyPoll, TcpSocketOptions Tcp, int Backlog)
{
    public static StackConfig Parse(string portSpec, string address, NetloomStackOptions o)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(portSpec);
        ArgumentException.ThrowIfNullOrWhiteSpace(address);
        if (!Netloom.Rings.PortSpec.TryParse(portSpec, out _, out var specError)) throw new ArgumentException($"port '{portSpec}': {specError}", nameof(portSpec));
        var slash = address.Split('/');
        if (slash.Length != 2 || !Ipv4Address.TryParse(slash[0], out var ip) || !int.TryParse(slash[1], out int prefix) || prefix is < 0 or > 32)
            throw new ArgumentException($"address '{address}': expected ADDRESS/PREFIX such as 10.0.0.2/24", nameof(address));
        Ipv4Address? gateway = null;
        if (o.Gateway is { } g)
        {
            if (!Ipv4Address.TryParse(g, out var gw)) throw new ArgumentException($"gateway '{g}' is not an IPv4 address", nameof(o));
            gateway = gw;
        }
        var b = BitConverter.GetBytes(ip.Value);
        var mac = new MacAddress(0x02, 0x4e, 0x4c, b[2], b[1], b[0]);
        if (o.Mac is { } m && !MacAddress.TryParse(m, out mac)) throw new ArgumentException($"MAC '{m}' is not a MAC address", nameof(o));
        if (o.BufferSize is < 4096 or > (64 << 20)) throw new ArgumentException($"buffer size {o.BufferSize}: expected 4096 to 64 MiB", nameof(o));
        if (o.Backlog is < 1 or > 65535) throw new ArgumentException($"backlog {o.Backlog}: expected 1 to 65535", nameof(o));
        var stack = new StackOptions { Mac = mac, Address = ip, PrefixLength = prefix, Gateway = gateway, Mtu = o.Mtu };
        stack.Validate();
        var tcp = new TcpSocketOptions { SendBufferSize = o.BufferSize, ReceiveBufferSize = o.BufferSize, NoDelay = true };
        return new StackConfig(portSpec, stack, o.BusyPoll, tcp, o.Backlog);
    }
}

/// <summary>
/// Binds Kestrel's IPv4 endpoints on one user-level stack, started on the first bind and stopped
/// with the host. Endpoints for other addresses (localhost, IPv6) go to the sockets transport.
/// </summary>
internal sealed class StackTransportFactory(StackConfig config, IServiceProvider services) : IConnectionListenerFactory, IConnectionListenerFactorySelector, IDisposable
{
    private readonly Lock _gate = new();
    private NetStack? _stack;
    private MemoryPool<byte>? _pool;

    public bool CanBind(EndPoint endpoint) =>
        endpoint is IPEndPoint ip && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
        && (ip.Address.Equals(IPAddress.Any) || ip.Address.Equals(config.Stack.Address.ToIPAddress()));

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (!CanBind(endpoint)) throw new NotSupportedException($"the Netloom stack at {config.Stack.Address} cannot bind {endpoint}: listen on its address or on any address");
        var ip = (IPEndPoint)endpoint;
        if (ip.Port == 0) throw new NotSupportedException("the Netloom stack needs a port number to listen on (port 0 is not supported)");
        NetStack stack;
        MemoryPool<byte> pool;
        lock (_gate)
        {
            _stack ??= NetStack.Open(config.PortSpec, config.Stack, new NetStackOptions
            {
                Wait = config.BusyPoll ? WaitMode.BusyPoll : WaitMode.Block,
                LoggerFactory = services.GetService<ILoggerFactory>(),
            });
            _pool ??= Pools.FromServices(services, "netloom-stack");
            (stack, pool) = (_stack, _pool);
        }
        TcpListener listener;
        try { listener = stack.Listen((ushort)ip.Port, config.Backlog, config.Tcp); }
        catch (InvalidOperationException e) { throw new AddressInUseException($"{endpoint} on the Netloom stack: {e.Message}", e); }
        return ValueTask.FromResult<IConnectionListener>(new StackConnectionListener(listener, new IPEndPoint(stack.Address.ToIPAddress(), ip.Port), pool));
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _stack?.Dispose();
            (_pool as IDisposable)?.Dispose();
            _stack = null;
        }
    }
}

internal sealed class StackConnectionListener(TcpListener listener, IPEndPoint endpoint, MemoryPool<byte> pool) : IConnectionListener
{
    private int _unbound;

    public EndPoint EndPoint => endpoint;

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            var connection = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
            return new StackConnectionContext(connection, pool);
        }
        catch (ObjectDisposedException) { return null; } // unbound, or the stack stopped
    }

    /// <summary>Graceful shutdown, step one: the port closes to new connections; the open ones go on.</summary>
    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _unbound, 1) == 0) listener.Dispose();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => UnbindAsync();
}
