using System.Net;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Sockets;

/// <summary>A UDP socket of a <see cref="SocketStack"/>, safe to use from any thread.</summary>
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

    /// <summary>Sends one datagram (fragmented above the MTU); false when the stack dropped it (see its counters).</summary>
    public bool SendTo(ReadOnlySpan<byte> payload, Ipv4Address to, ushort port)
    {
        using (_stack.Enter())
        {
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
                if (!_binding.IsOpen) throw new ObjectDisposedException(nameof(UdpSocket), "the socket is closed");
                wait = _readable.Arm(ct);
            }
            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>Takes a waiting datagram, if any; an IPv6 sender shows as 0.0.0.0 (use <see cref="ReceiveAsync"/>).</summary>
    public bool TryReceiveFrom(Span<byte> buffer, out int length, out Ipv4Address from, out ushort fromPort)
    {
        using (_stack.Enter()) return _binding.TryReceive(buffer, out length, out from, out fromPort);
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
