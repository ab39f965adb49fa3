using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Netloom.AspNetCore.Stack;
using Netloom.AspNetCore.Uring;

namespace Netloom.AspNetCore;

/// <summary>
/// The two lines an ASP.NET Core program adds to run Kestrel on Netloom. Each registers an
/// <see cref="IConnectionListenerFactory"/> that is also an <see cref="IConnectionListenerFactorySelector"/>:
/// Kestrel binds with it the endpoints it can serve and leaves the others (named pipes, Unix
/// sockets, IPv6 on the user-level stack) to the sockets transport.
/// </summary>
public static class NetloomWebHostExtensions
{
    /// <summary>Kestrel's TCP endpoints run on Netloom's io_uring engine (one ring per thread).</summary>
    public static IWebHostBuilder UseNetloomIoUring(this IWebHostBuilder builder, Action<NetloomIoUringOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new NetloomIoUringOptions();
        configure?.Invoke(options);
        return builder.ConfigureServices(services =>
            services.AddSingleton<IConnectionListenerFactory>(sp => new UringTransportFactory(options, sp)));
    }

    /// <summary>
    /// Kestrel's endpoints on <paramref name="address"/> (ADDRESS/PREFIX, such as 10.0.0.2/24) run on
    /// a user-level TCP/IP stack over the port <paramref name="portSpec"/> (tap:NAME, shm:NAME, afpacket:IFACE, ...).
    /// Listen on that address or on any address (http://*:80, http://0.0.0.0:80).
    /// </summary>
    public static IWebHostBuilder UseNetloomStack(this IWebHostBuilder builder, string portSpec, string address, Action<NetloomStackOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new NetloomStackOptions();
        configure?.Invoke(options);
        var config = StackConfig.Parse(portSpec, address, options); // bad input fails here, before the host starts
        return builder.ConfigureServices(services =>
            services.AddSingleton<IConnectionListenerFactory>(sp => new StackTransportFactory(config, sp)));
    }
}

/// <summary>How <see cref="NetloomWebHostExtensions.UseNetloomIoUring"/> runs.</summary>
public sealed class NetloomIoUringOptions
{
    /// <summary>Loops (threads, each with its own ring and SO_REUSEPORT listener) per endpoint. Default: one per core.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// Accept into the ring's registered file table (fewer file-table lookups per operation). The
    /// sockets then have no descriptor to ask for addresses, so Kestrel sees no local or remote
    /// endpoint (HttpContext.Connection.RemoteIpAddress is null). Default off.
    /// </summary>
    public bool RegisteredFiles { get; set; }

    /// <summary>Each loop spins this many microseconds before it sleeps (0: never). Costs a busy core per loop.</summary>
    public int BusyPollMicroseconds { get; set; }

    /// <summary>A kernel thread polls each submission queue (IORING_SETUP_SQPOLL).</summary>
    public bool SqPoll { get; set; }

    /// <summary>
    /// Run Kestrel's code for a connection on the ring's own thread when bytes arrive (true), or
    /// on the thread pool (false). Default on: it cost less CPU per request in `netloom bench kestrel` (see
    /// docs/BENCHMARKS.md). Turn it off for applications that block a thread inside a request
    /// (synchronous I/O, locks, long computations): inline, that stalls every connection of the ring.
    /// </summary>
    public bool ApplicationInline { get; set; } = true;
}

/// <summary>How <see cref="NetloomWebHostExtensions.UseNetloomStack"/> runs.</summary>
public sealed class NetloomStackOptions
{
    /// <summary>Default gateway (dotted quad), for peers outside the prefix.</summary>
    public string? Gateway { get; set; }
    /// <summary>MTU of the port (576 to 65522).</summary>
    public int Mtu { get; set; } = 1500;
    /// <summary>MAC address (default 02:4e:4c plus the address's last three bytes).</summary>
    public string? Mac { get; set; }
    /// <summary>Spin on the port instead of sleeping (lowest latency, a whole core).</summary>
    public bool BusyPoll { get; set; }
    /// <summary>Per-connection send and receive buffer size in bytes.</summary>
    public int BufferSize { get; set; } = 1 << 20;
    /// <summary>Connections waiting to be accepted per endpoint.</summary>
    public int Backlog { get; set; } = 512;
}
