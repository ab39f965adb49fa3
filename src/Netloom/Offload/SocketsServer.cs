using System.Net;
using System.Net.Sockets;

namespace Netloom.Offload;

/// <summary>
/// The same server on .NET's own sockets (epoll underneath): an accept loop and one async
/// receive/send loop per connection. It runs the same <see cref="IConnectionHandler"/>, for
/// comparison with <see cref="UringServer"/> and as the fallback where io_uring is unavailable.
/// </summary>
internal sealed class SocketsServer : IDisposable
{
    private readonly IPEndPoint _endpoint;
    private readonly IConnectionHandler _handler;
    private readonly CancellationTokenSource _stop = new();
    private Socket? _listener;
    private int _nextId;

    public SocketsServer(IPEndPoint endpoint, IConnectionHandler handler)
    {
        _endpoint = endpoint;
        _handler = handler;
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener!.LocalEndPoint!;
    public long Accepted;

    public void Start()
    {
        _listener = new Socket(_endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Bind(_endpoint);
        _listener.Listen(1024);
        _ = AcceptLoop();
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket s;
            try { s = await _listener!.AcceptAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            Interlocked.Increment(ref Accepted);
            s.NoDelay = true;
            _ = Serve(s);
        }
    }

    private async Task Serve(Socket s)
    {
        var c = new Connection(Interlocked.Increment(ref _nextId));
        var input = new InputBuffer();
        var receive = new byte[16384];
        var send = new byte[16384];
        _handler.OnConnected(c);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                int n = await s.ReceiveAsync(receive, SocketFlags.None, _stop.Token);
                if (n == 0) break;
                if (!input.Feed(_handler, c, receive.AsSpan(0, n)) || c.Output.Overflowed) break;
                while (c.Output.Length > 0)
                {
                    int len = Math.Min(c.Output.Length, send.Length);
                    CopyOut(c.Output, send, len);
                    await s.SendAsync(send.AsMemory(0, len), SocketFlags.None, _stop.Token);
                    c.Output.Consume(len);
                }
                if (c.CloseRequested) break;
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
        finally
        {
            _handler.OnClosed(c);
            s.Dispose();
        }
    }

    private static unsafe void CopyOut(OutputBuffer o, byte[] to, int len) => new ReadOnlySpan<byte>(o.Pointer, len).CopyTo(to);

    public void Dispose()
    {
        _stop.Cancel();
        _listener?.Dispose();
    }
}
