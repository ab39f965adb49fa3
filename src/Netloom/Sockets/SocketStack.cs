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
    public ValueTask<TcpConnection> ConnectAsync(Ipv4Address address, ushort port, TcpSocketOptions? options = null, CancellationToken ct = default) =>
        ConnectAsync(Ipv6Address.FromIPAddress(address.ToIPAddress()), port, options, ct);

    /// <summary>
    /// Connects to <paramref name="address"/>:<paramref name="port"/> over IPv6 (the stack needs
    /// <see cref="Stack.StackOptions.Ipv6"/>); an IPv4-mapped address connects over IPv4.
    /// </summary>
    public ValueTask<TcpConnection> ConnectAsync(Ipv6Address address, ushort port, TcpSocketOptions? options = null, CancellationToken ct = default)
    {
        ThrowIfNoIpv6(address, nameof(address));
        return ConnectCoreAsync(address, port, options, ct);
    }

    private void ThrowIfNoIpv6(Ipv6Address address, string paramName)
    {
        if (!address.IsIpv4Mapped && !Interface.Options.Ipv6)
            throw new ArgumentException($"cannot connect to {address}: IPv6 is off on this stack (StackOptions.Ipv6)", paramName);
    }

    private async ValueTask<TcpConnection> ConnectCoreAsync(Ipv6Address address, ushort port, TcpSocketOptions? options, CancellationToken ct)
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

    /// <summary>Connects to <paramref name="address"/>:<paramref name="port"/>, IPv4 or IPv6.</summary>
    public ValueTask<TcpConnection> ConnectAsync(IPAddress address, ushort port, TcpSocketOptions? options = null, CancellationToken ct = default) =>
        ConnectAsync(Ipv6Address.FromIPAddress(address), port, options, ct);

    /// <summary>Connects to <paramref name="remote"/>, IPv4 or IPv6.</summary>
    public ValueTask<TcpConnection> ConnectAsync(IPEndPoint remote, TcpSocketOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(remote);
        var address = Ipv6Address.FromIPAddress(remote.Address);
        ThrowIfNoIpv6(address, nameof(remote));
        return ConnectCoreAsync(address, (ushort)remote.Port, options, ct);
    }

    /// <summary>
    /// Listens on <paramref name="local"/>. A listener takes a port on every address of the stack,
    /// IPv4 and IPv6 alike (dual stack), so the address must be <see cref="IPAddress.Any"/>,
    /// <see cref="IPAddress.IPv6Any"/> or one of the stack's own; port 0 is not allowed.
    /// </summary>
    public TcpListener Listen(IPEndPoint local, int backlog = 128, TcpSocketOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(local);
        var address = Ipv6Address.FromIPAddress(local.Address);
        bool any = address.IsUnspecified || address == Ipv6Address.FromIPAddress(IPAddress.Any);
        bool ours = address == Ipv6Address.FromIPAddress(Address.ToIPAddress());
        if (!any && !ours)
        {
            using (Enter())
            {
                ours = false;
                foreach (var a in Interface.Ipv6Addresses)
                    if (a.State != Interface.AddressState.Free && a.Address == address) ours = true;
            }
        }
        if (!any && !ours)
            throw new ArgumentException($"cannot listen on {local}: it is not an address of this stack ({Address}, and its IPv6 addresses)", nameof(local));
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
