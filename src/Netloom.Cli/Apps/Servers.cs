using Netloom.Sockets;

namespace Netloom.Cli.Apps;

/// <summary>What `netloom host --serve` can run: each app serves until the token is cancelled.</summary>
internal static class Servers
{
    /// <summary>Parses "udp-echo:7", "tcp-echo:7", "discard:9" or "http:80:DIR".</summary>
    public static bool TryParse(string text, out Func<SocketStack, CancellationToken, Task>? app, out string description, out string? error)
    {
        app = null;
        description = text;
        error = null;
        var parts = text.Split(':', 3);
        if (parts.Length < 2 || !ushort.TryParse(parts[1], out ushort port) || port == 0)
        {
            error = $"--serve '{text}': expected udp-echo:PORT, tcp-echo:PORT, discard:PORT or http:PORT:DIR";
            return false;
        }
        switch (parts[0])
        {
            case "udp-echo" when parts.Length == 2: app = (s, ct) => UdpEcho(s, port, ct); return true;
            case "tcp-echo" when parts.Length == 2: app = (s, ct) => Serve(s, port, Echo, ct); return true;
            case "discard" when parts.Length == 2: app = (s, ct) => Serve(s, port, Discard, ct); return true;
            case "http" when parts.Length == 3:
                if (!Directory.Exists(parts[2])) { error = $"--serve '{text}': directory '{parts[2]}' does not exist"; return false; }
                var server = new HttpFileServer(parts[2]);
                app = (s, ct) => Serve(s, port, server.Serve, ct);
                return true;
            default:
                error = $"--serve '{text}': expected udp-echo:PORT, tcp-echo:PORT, discard:PORT or http:PORT:DIR";
                return false;
        }
    }

    public static long UdpEchoed, TcpEchoedBytes, DiscardedBytes;

    private static async Task UdpEcho(SocketStack stack, ushort port, CancellationToken ct)
    {
        using var socket = stack.OpenUdp(port);
        var buf = new byte[65536];
        try
        {
            while (true)
            {
                var (n, from) = await socket.ReceiveAsync(buf, ct); // either IP version
                if (socket.SendTo(buf.AsSpan(0, n), from)) Interlocked.Increment(ref UdpEchoed);
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Accepts connections and runs <paramref name="handle"/> on each, until cancelled.</summary>
    private static async Task Serve(SocketStack stack, ushort port, Func<TcpConnection, CancellationToken, Task> handle, CancellationToken ct)
    {
        using var listener = stack.Listen(port, backlog: 256);
        try
        {
            while (true)
            {
                var c = await listener.AcceptAsync(ct);
                _ = Task.Run(async () =>
                {
                    await using (c)
                    {
                        try { await handle(c, ct); }
                        catch (Exception e) when (e is TcpException or OperationCanceledException or InvalidOperationException or IOException) { }
                    }
                }, CancellationToken.None);
            }
        }
        catch (OperationCanceledException) { }
    }

    private static async Task Echo(TcpConnection c, CancellationToken ct)
    {
        var buf = new byte[65536];
        int n;
        while ((n = await c.ReadAsync(buf, ct)) > 0)
        {
            await c.WriteAsync(buf.AsMemory(0, n), ct);
            Interlocked.Add(ref TcpEchoedBytes, n);
        }
        c.ShutdownSend();
        await c.FlushAsync(ct);
    }

    private static async Task Discard(TcpConnection c, CancellationToken ct)
    {
        var buf = new byte[65536];
        int n;
        while ((n = await c.ReadAsync(buf, ct)) > 0) Interlocked.Add(ref DiscardedBytes, n);
    }
}
