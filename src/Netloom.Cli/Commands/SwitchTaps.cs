using System.Net.Sockets;
using System.Text;
using Netloom.Cli.Emulate;
using Netloom.Switching;

namespace Netloom.Cli.Commands;

/// <summary>
/// Live captures of a running `netloom switch`'s ports for `netloom extcap`: a Unix socket in the
/// runtime directory (registered beside the emulations) takes one request per connection,
/// "capture N\n", and answers with a pcapng stream of port N, both directions, until the client
/// hangs up. The forwarding thread writes into a <see cref="LiveCapture"/> (bounded: a slow reader
/// loses whole chunks, counted), and this connection's thread sends what it hands over.
/// </summary>
internal sealed class SwitchTaps : IDisposable
{
    private const int MaxClients = 16;
    private readonly Switch _switch;
    private readonly Socket _listener;
    private readonly string _socketPath, _registryFile;
    private readonly Thread _accepting;
    private int _clients;
    private volatile bool _disposed;

    private SwitchTaps(Switch sw, Socket listener, string socketPath, string registryFile)
    {
        _switch = sw;
        _listener = listener;
        _socketPath = socketPath;
        _registryFile = registryFile;
        _accepting = new Thread(Accept) { Name = "switch captures", IsBackground = true };
        _accepting.Start();
    }

    /// <summary>Listens and registers; null (with the reason on stderr) when the runtime directory is not usable.</summary>
    public static SwitchTaps? Start(Switch sw)
    {
        string path = Path.Combine(ServeRegistry.Directory, $"switch-{Environment.ProcessId}.sock");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            Directory.CreateDirectory(ServeRegistry.Directory);
            File.Delete(path);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(MaxClients);
            var names = Enumerable.Range(0, sw.PortCount).Select(sw.PortName).ToArray();
            return new SwitchTaps(sw, listener, path, ServeRegistry.RegisterSwitch(path, names));
        }
        catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException)
        {
            listener.Dispose();
            Console.Error.WriteLine($"netloom: live captures (netloom extcap) are off: {e.Message}");
            return null;
        }
    }

    private void Accept()
    {
        while (!_disposed)
        {
            Socket client;
            try { client = _listener.Accept(); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
            if (Interlocked.Increment(ref _clients) > MaxClients)
            {
                Answer(client, $"error: {MaxClients} captures are running already\n");
                Interlocked.Decrement(ref _clients);
                continue;
            }
            new Thread(() => { try { Serve(client); } finally { Interlocked.Decrement(ref _clients); } }) { Name = "switch capture", IsBackground = true }.Start();
        }
    }

    private static void Answer(Socket client, string text)
    {
        try { client.Send(Encoding.ASCII.GetBytes(text)); } catch (SocketException) { }
        client.Dispose();
    }

    private void Serve(Socket client)
    {
        client.ReceiveTimeout = 5000;
        var request = new byte[64];
        int n = 0;
        try
        {
            while (n < request.Length && Array.IndexOf(request, (byte)'\n', 0, n) < 0)
            {
                int got = client.Receive(request, n, request.Length - n, SocketFlags.None);
                if (got == 0) break;
                n += got;
            }
        }
        catch (SocketException) { client.Dispose(); return; }
        string line = Encoding.ASCII.GetString(request, 0, n).Trim();
        if (!line.StartsWith("capture ", StringComparison.Ordinal) || !int.TryParse(line.AsSpan(8), out int port) || port < 0 || port >= _switch.PortCount)
        {
            Answer(client, $"error: expected \"capture N\" with N from 0 to {_switch.PortCount - 1}\n");
            return;
        }
        using var capture = new LiveCapture(frameLimit: 0);
        var tap = new SwitchMonitor(capture);
        tap.Watch(port, _switch.PortName(port));
        capture.Flush(); // the section and interface blocks go out before any frame
        _switch.AddTap(tap);
        try
        {
            var reader = capture.Reader;
            while (!_disposed)
            {
                // Wake every half second to notice a client that hung up while nothing was captured.
                var wait = reader.WaitToReadAsync().AsTask();
                if (!wait.Wait(500))
                {
                    if (client.Poll(0, SelectMode.SelectRead) && client.Available == 0) break;
                    continue;
                }
                if (!wait.Result) break;
                while (reader.TryRead(out var chunk))
                {
                    client.Send(chunk);
                    capture.Taken(chunk);
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { } // the client hung up
        finally
        {
            _switch.RemoveTap(tap);
            client.Dispose();
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _listener.Dispose();
        try { File.Delete(_socketPath); } catch (IOException) { }
        try { File.Delete(_registryFile); } catch (IOException) { }
    }
}
