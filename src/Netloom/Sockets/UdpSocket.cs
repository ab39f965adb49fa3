using System.Net;
using System.Net.Sockets;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Sockets;

/// <summary>
/// A UDP socket of a <see cref="SocketStack"/>, safe to use from any thread. Once connected
/// (<see cref="Connect"/>), an ICMP or ICMPv6 port unreachable about a datagram it sent to its
/// peer makes its next call throw a <see cref="SocketException"/> with
/// <see cref="SocketError.ConnectionRefused"/>, as a connected socket does on Linux.
/// </summary>
public sealed class UdpSocket : ISocketObserver, IDisposable
{
    private readonly SocketStack _stack;
    private readonly UdpBinding _binding;
    private readonly Signal _readable;

    internal UdpSocket(SocketStack stack, UdpBinding binding)
    {
        _stack = stack;
        _binding = binding;
        _readable = stack.NewSignal();
        binding.Observer = this;
    }

    void ISocketObserver.OnSocketEvents(object socket, SocketEvents events) => _readable.Fire();

    public ushort LocalPort => _binding.LocalPort;

    /// <summary>
    /// Fixes the peer, IPv4 or IPv6: <see cref="Send"/> goes there, only its datagrams are
    /// received, and hard ICMP errors about datagrams to it are reported by the next call.
    /// </summary>
    public void Connect(IPEndPoint remote)
    {
        ArgumentNullException.ThrowIfNull(remote);
        var a = Ipv6Address.FromIPAddress(remote.Address);
        if (remote.Port == 0) throw new ArgumentException("connect needs a destination port", nameof(remote));
        if (a.IsUnspecified || a.IsMulticast || (a.IsIpv4Mapped && new Ipv4Address((uint)a.Low) == Ipv4Address.Any))
            throw new ArgumentException($"cannot connect a UDP socket to {remote}", nameof(remote));
        using (_stack.Enter())
        {
            if (!a.IsIpv4Mapped && !_stack.Interface.Options.Ipv6)
                throw new ArgumentException($"cannot connect to {remote}: IPv6 is off on this stack (StackOptions.Ipv6)", nameof(remote));
            if (a.IsIpv4Mapped) _binding.Connect(new Ipv4Address((uint)a.Low), (ushort)remote.Port);
            else _binding.Connect(a, (ushort)remote.Port);
        }
    }

    /// <summary>Sends one datagram to the connected peer; throws a <see cref="SocketException"/> for an error an earlier datagram met.</summary>
    public bool Send(ReadOnlySpan<byte> payload)
    {
        using (_stack.Enter())
        {
            ThrowIfPendingError();
            bool ok = _binding.Send(payload);
            _stack.Interface.FlushOutput();
            return ok;
        }
    }

    /// <summary>Called with the stack lock held: the hard ICMP error the connected socket met, once.</summary>
    private void ThrowIfPendingError()
    {
        var e = _binding.TakePendingError();
        if (e != SocketError.Success) throw new SocketException((int)e);
    }

    /// <summary>Payload bytes one loan buffer carries in one datagram; 0 when the port has no loan buffers.</summary>
    public int LoanCapacity
    {
        get { using (_stack.Enter()) return _binding.LoanCapacity; }
    }

    /// <summary>Rents one of the port's loan buffers (see <see cref="TcpConnection.TryRentLoan"/>); false when there is none free.</summary>
    public bool TryRentLoan(out uint buffer)
    {
        using (_stack.Enter()) return _binding.TryRentLoan(out buffer);
    }

    /// <summary>Where the payload goes in a rented loan buffer (<see cref="LoanCapacity"/> bytes); write it only while the buffer is not being sent.</summary>
    public Span<byte> LoanPayload(uint buffer)
    {
        using (_stack.Enter()) return _binding.LoanPayload(buffer);
    }

    /// <summary>Gives a rented loan buffer back to the port for good (not while a send of it is outstanding).</summary>
    public void ReturnLoan(uint buffer)
    {
        using (_stack.Enter()) _binding.ReturnLoan(buffer);
    }

    /// <summary>
    /// Sends the first <paramref name="length"/> payload bytes of loan buffer
    /// <paramref name="buffer"/> as one datagram whose frame is the buffer itself. Returns the
    /// send's number, and whether it was copied instead (a short datagram, an unresolved next
    /// hop); the buffer is the application's again at that number's completion
    /// (<see cref="TryReadZeroCopyCompletion"/>), when the port has handed it back. Null when the
    /// stack dropped the datagram (no route, device full): then nothing references the buffer.
    /// </summary>
    public ZeroCopySend? SendLoanTo(uint buffer, int length, Ipv4Address to, ushort port)
    {
        using (_stack.Enter())
        {
            ThrowIfPendingError();
            bool ok = _binding.SendLoanTo(buffer, length, to, port, out uint id, out bool copied);
            _stack.Interface.FlushOutput();
            return ok ? new ZeroCopySend(id, copied) : null;
        }
    }

    /// <summary>
    /// The next completion of loan sends, if one is waiting: a range of send numbers, in send
    /// order, coalesced. The stack makes completions as it polls the port; poll this.
    /// </summary>
    public bool TryReadZeroCopyCompletion(out ZeroCopyCompletion completion)
    {
        using (_stack.Enter()) return _binding.TryTakeZeroCopyCompletion(out completion);
    }

    /// <summary>Sends one datagram (fragmented above the MTU); false when the stack dropped it (see its counters).</summary>
    public bool SendTo(ReadOnlySpan<byte> payload, Ipv4Address to, ushort port)
    {
        using (_stack.Enter())
        {
            ThrowIfPendingError();
            bool ok = _binding.SendTo(payload, to, port);
            _stack.Interface.FlushOutput();
            return ok;
        }
    }

    /// <summary>Sends one datagram to <paramref name="to"/>, IPv4 or IPv6 (IPv6 needs <see cref="Stack.StackOptions.Ipv6"/>).</summary>
    public bool SendTo(ReadOnlySpan<byte> payload, IPEndPoint to)
    {
        ArgumentNullException.ThrowIfNull(to);
        using (_stack.Enter())
        {
            ThrowIfPendingError();
            bool ok = _binding.SendTo(payload, Ipv6Address.FromIPAddress(to.Address), (ushort)to.Port);
            _stack.Interface.FlushOutput();
            return ok;
        }
    }

    /// <summary>Waits for a datagram from either IP version and copies it into <paramref name="buffer"/> (cut to fit).</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<(int Length, IPEndPoint From)> ReceiveAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        while (true)
        {
            ValueTask wait;
            using (_stack.Enter())
            {
                if (_binding.TryReceiveAny(buffer.Span, out int n, out var from, out ushort port)) return (n, new IPEndPoint(from.ToIPAddress(), port));
                ThrowIfPendingError(); // as Linux's recv: queued datagrams first, then the error
                if (!_binding.IsOpen) throw new ObjectDisposedException(nameof(UdpSocket), "the socket is closed");
                wait = _readable.Arm(ct);
            }
            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>Takes a waiting datagram, if any; an IPv6 sender shows as 0.0.0.0 (use <see cref="ReceiveAsync"/>).</summary>
    public bool TryReceiveFrom(Span<byte> buffer, out int length, out Ipv4Address from, out ushort fromPort)
    {
        using (_stack.Enter())
        {
            if (_binding.TryReceive(buffer, out length, out from, out fromPort)) return true;
            ThrowIfPendingError();
            return false;
        }
    }

    /// <summary>Waits for a datagram and copies it into <paramref name="buffer"/> (cut to fit).</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<(int Length, Ipv4Address From, ushort Port)> ReceiveFromAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        while (true)
        {
            ValueTask wait;
            using (_stack.Enter())
            {
                if (_binding.TryReceive(buffer.Span, out int n, out var from, out ushort port)) return (n, from, port);
                ThrowIfPendingError();
                if (!_binding.IsOpen) throw new ObjectDisposedException(nameof(UdpSocket), "the socket is closed");
                wait = _readable.Arm(ct);
            }
            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>Closes the socket; safe to call again, and after the stack has stopped.</summary>
    public void Dispose()
    {
        using (_stack.EnterToClose())
        {
            _binding.Close();
            _readable.Fire();
        }
    }
}
