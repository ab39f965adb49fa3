using System.Net;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Sockets;

/// <summary>
/// The socket API over one user-level stack, whoever drives the stack: a <see cref="NetStack"/>
/// (its own owner thread and the wall clock) or an emulated host (the emulator's thread and
/// virtual time, see <c>HostNode.Sockets</c>). Code written against it runs unchanged on either,
/// so the code a service ships can be tested on an emulated network.
/// Socket calls take <see cref="Lock"/>, bring the stack's clock up to <see cref="Now"/>, do their
/// work and leave.
/// </summary>
public abstract class SocketStack
{
    private protected SocketStack() { }

    /// <summary>The stack itself, for counters and owner-thread use: hold <see cref="Lock"/> while touching it.</summary>
    internal abstract Interface Interface { get; }
    internal Lock Lock { get; } = new();
    public Ipv4Address Address => Interface.Address;
    /// <summary>A copy of the stack's counters, taken under the lock (works after the stack stopped, too).</summary>
    public StackCountersSnapshot GetCounters()
    {
        using (Lock.EnterScope()) return Interface.Counters.Snapshot();
    }
    /// <summary>The time as the stack sees it: monotonic wall-clock time, or the emulator's virtual time.</summary>
    public abstract Instant Now { get; }

    public TcpListener Listen(ushort port, int backlog = 128, TcpSocketOptions? options = null)
    {
        using (Enter()) return new TcpListener(this, Interface.Listen(port, backlog, options));
    }

    /// <summary>Connects to <paramref name="address"/>:<paramref name="port"/>; throws <see cref="TcpException"/> when refused or timed out.</summary>
    public async ValueTask<TcpConnection> ConnectAsync(Ipv4Address address, ushort port, TcpSocketOptions? options = null, CancellationToken ct = default)
    {
        TcpConnection c;
        ValueTask connected;
        using (Enter())
        {
            var s = Interface.Connect(address, port, options);
            c = new TcpConnection(this, s);
            connected = c.ArmConnected(ct);
        }
        try { await connected.ConfigureAwait(false); }
        catch (OperationCanceledException) { c.Abort(); throw; }
        using (Enter())
        {
            if (c.Socket.Error != TcpError.None) throw TcpException.From(c.Socket);
        }
        return c;
    }

    /// <summary>Connects to <paramref name="address"/>:<paramref name="port"/>; an IPv6 address throws <see cref="ArgumentException"/> (not supported yet).</summary>
    public ValueTask<TcpConnection> ConnectAsync(IPAddress address, ushort port, TcpSocketOptions? options = null, CancellationToken ct = default) =>
        ConnectAsync(Ipv4Address.FromIPAddress(address), port, options, ct);

    /// <summary>Connects to <paramref name="remote"/>; an IPv6 endpoint throws <see cref="ArgumentException"/> (not supported yet).</summary>
    public ValueTask<TcpConnection> ConnectAsync(IPEndPoint remote, TcpSocketOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(remote);
        return ConnectAsync(Ipv4Address.FromIPAddress(remote.Address, nameof(remote)), (ushort)remote.Port, options, ct);
    }

    /// <summary>
    /// Listens on <paramref name="local"/>: its address must be <see cref="IPAddress.Any"/> or this
    /// stack's <see cref="Address"/> (the stack has one address); port 0 is not allowed.
    /// </summary>
    public TcpListener Listen(IPEndPoint local, int backlog = 128, TcpSocketOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(local);
        var address = Ipv4Address.FromIPAddress(local.Address, nameof(local));
        if (!address.IsUnspecified && address != Address)
            throw new ArgumentException($"cannot listen on {local}: this stack's address is {Address}", nameof(local));
        return Listen((ushort)local.Port, backlog, options);
    }

    public UdpSocket OpenUdp(ushort port = 0)
    {
        using (Enter()) return new UdpSocket(this, Interface.OpenUdp(port));
    }

    /// <summary>Takes the lock and brings the stack's clock up to now: for socket calls.</summary>
    internal Scope Enter()
    {
        var scope = Lock.EnterScope();
        try { ThrowIfStopped(); }
        catch { scope.Dispose(); throw; }
        Interface.Advance(Now);
        return new Scope(this, scope);
    }

    /// <summary>Takes the lock even when the stack is stopped: for closing and aborting.</summary>
    internal Scope EnterToClose() => new(this, Lock.EnterScope());

    /// <summary>A socket call in progress: leaving it lets the driver react (an emulated host polls its stack).</summary>
    internal ref struct Scope(SocketStack owner, Lock.Scope scope)
    {
        private Lock.Scope _scope = scope;

        public void Dispose()
        {
            owner.AfterCall();
            _scope.Dispose();
        }
    }

    /// <summary>Throws when the stack can no longer serve calls (disposed, failed, its host crashed).</summary>
    private protected abstract void ThrowIfStopped();

    /// <summary>Called after each socket call, with the lock held.</summary>
    private protected virtual void AfterCall() { }

    /// <summary>An event for one waiter of a socket, completed the way this driver runs code.</summary>
    internal virtual Signal NewSignal() => new(Lock, null);

    /// <summary>False where a blocking call would stop the world (the emulator's single thread).</summary>
    internal virtual bool CanBlock => true;

    /// <summary>A token cancelled after <paramref name="delay"/> on this stack's clock.</summary>
    internal virtual CancellationTokenSource CancelAfter(TimeSpan delay) => new(delay);
}
