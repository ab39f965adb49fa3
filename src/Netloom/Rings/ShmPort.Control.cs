using System.Net.Sockets;

namespace Netloom.Rings;

internal sealed unsafe partial class ShmPort
{
    /// <summary>
    /// Server side: accepts one peer at a time (others get BUSY), starts a clean session for it,
    /// and notices when it goes away.
    /// </summary>
    private void ServeControl()
    {
        var readable = new List<Socket>(2);
        var scratch = new byte[256];
        while (!_disposed)
        {
            readable.Clear();
            readable.Add(_listener!);
            if (_peer is { } p) readable.Add(p);
            try
            {
                Socket.Select(readable, null, null, 200_000);
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException)
            {
                if (_disposed) return;
                continue;
            }
            foreach (var s in readable)
            {
                if (s == _listener) AcceptOne();
                else PeerReadable(s, scratch);
            }
        }
    }

    private void AcceptOne()
    {
        Socket c;
        try { c = _listener!.Accept(); }
        catch (Exception e) when (e is ObjectDisposedException or SocketException) { return; }
        if (_peer is not null)
        {
            TrySend(c, $"BUSY pid={Environment.ProcessId} and pid={PeerPid}\n");
            c.Dispose();
            return;
        }
        try
        {
            c.ReceiveTimeout = 5000;
            lock (_syncLock)
            {
                _region.Reset();
                ResetPrivate();
            }
            Send(c, $"{Protocol} ring={_region.RingSize} buf={_region.BufferSize} loan={_region.LoanBuffers}{(_csumLocal ? " csum=1" : "")} pid={Environment.ProcessId} path={_region.Path}\n");
            string? ok = ReadLine(c);
            if (!TryParseOk(ok, out int pid, out bool csum))
            {
                c.Dispose();
                return;
            }
            c.ReceiveTimeout = 0;
            _csumBoth = _csumLocal && csum; // before the session counts as connected
            PeerPid = pid;
            _peer = c;
            _failure = null;
            _connected = true;
        }
        catch (Exception e) when (e is SocketException or InvalidDataException or ObjectDisposedException)
        {
            c.Dispose(); // a client that cannot finish the handshake is simply dropped
        }
    }

    /// <summary>"OK pid=N", optionally followed by " csum=1" (the client accepts partial checksums too).</summary>
    private static bool TryParseOk(string? ok, out int pid, out bool csum)
    {
        pid = 0;
        csum = false;
        if (ok is null || !ok.StartsWith("OK pid=", StringComparison.Ordinal)) return false;
        var rest = ok.AsSpan(7);
        int space = rest.IndexOf(' ');
        if (space >= 0)
        {
            if (!rest[(space + 1)..].SequenceEqual("csum=1")) return false;
            csum = true;
            rest = rest[..space];
        }
        return int.TryParse(rest, out pid) && pid > 0;
    }

    private void PeerReadable(Socket s, byte[] scratch)
    {
        int n;
        try { n = s.Receive(scratch); }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { n = 0; }
        if (n > 0) return; // nothing is expected after the handshake; ignore it
        PeerLost("its control socket closed");
    }

    private void PeerLost(string how)
    {
        _connected = false;
        _failure ??= $"peer pid {PeerPid} is gone ({how})";
        var p = _peer;
        _peer = null;
        p?.Dispose();
    }

    /// <summary>Client side: the server is alive while the control socket stays open.</summary>
    private void WatchServer()
    {
        var scratch = new byte[256];
        while (!_disposed)
        {
            int n;
            try { n = _peer!.Receive(scratch); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { n = 0; }
            if (n > 0) continue;
            if (!_disposed)
            {
                _connected = false;
                _failure ??= $"server pid {PeerPid} is gone (its control socket closed)";
            }
            return;
        }
    }

    private static void TrySend(Socket s, string line)
    {
        try { Send(s, line); } catch (SocketException) { }
    }

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _listener?.Dispose();
        _peer?.Dispose();
        _control.Join(1000);
        lock (_syncLock)
        {
            _region.Dispose();
            _txMemory.Dispose();
            _rxMemory.Dispose();
        }
        if (_server)
        {
            try { File.Delete(_region.Path); } catch (IOException) { }
        }
    }
}
