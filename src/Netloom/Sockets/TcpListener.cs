using Netloom.Stack;

namespace Netloom.Sockets;

/// <summary>A listening port of a <see cref="SocketStack"/>; <see cref="AcceptAsync"/> hands out connections.</summary>
public sealed class TcpListener : ISocketObserver, IDisposable
{
    private readonly SocketStack _stack;
    private readonly TcpListenSocket _listen;
    private readonly Signal _acceptable;

    internal TcpListener(SocketStack stack, TcpListenSocket listen)
    {
        _stack = stack;
        _listen = listen;
        _acceptable = stack.NewSignal();
        listen.Observer = this;
    }

    public ushort LocalPort => _listen.LocalPort;
    /// <summary>The stack-level listener (SYN queue, cookies, counters): read it under the stack lock.</summary>
    internal TcpListenSocket Socket => _listen;

    public async ValueTask<TcpConnection> AcceptAsync(CancellationToken ct = default)
    {
        while (true)
        {
            ValueTask wait;
            using (_stack.Enter())
            {
                if (!_listen.IsOpen) throw new ObjectDisposedException(nameof(TcpListener), $"listener on port {LocalPort} is closed");
                if (_listen.TryAccept(out var s)) return new TcpConnection(_stack, s);
                wait = _acceptable.Arm(ct);
            }
            await wait.ConfigureAwait(false);
        }
    }

    void ISocketObserver.OnSocketEvents(object socket, SocketEvents events)
    {
        if ((events & (SocketEvents.Acceptable | SocketEvents.Closed)) != 0) _acceptable.Fire();
    }

    public void Dispose()
    {
        using (_stack.EnterToClose())
        {
            _listen.Close();
            _acceptable.Fire();
        }
    }
}
