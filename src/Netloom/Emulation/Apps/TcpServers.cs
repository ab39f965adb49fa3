using Netloom.Stack;
using Netloom.Time;

namespace Netloom.Emulation.Apps;

/// <summary>
/// A TCP server on a host: listens on a port, accepts every connection and serves each through
/// <see cref="Serve"/> until it is done. After a host crash and restart it listens again.
/// </summary>
internal abstract class TcpServerApp : App
{
    private readonly List<TcpSocket> _connections = [];
    private TcpListenSocket? _listener;

    protected TcpServerApp(string name, HostNode host, ushort port) : base(name, host) => Port = port;

    public ushort Port { get; }
    public long Accepted { get; private set; }
    public int Open => _connections.Count;

    protected override void OnStart(Instant now) => _listener = Host.Stack.Listen(Port, backlog: 128);

    internal override bool Poll(Instant now)
    {
        bool busy = false;
        while (_listener is not null && _listener.TryAccept(out var s))
        {
            _connections.Add(s);
            Accepted++;
            s.UserState = NewState();
            s.NoDelay = NoDelay;
            busy = true;
        }
        for (int i = _connections.Count - 1; i >= 0; i--)
        {
            var s = _connections[i];
            busy |= Serve(s, now);
            if (s.State is TcpState.Closed or TcpState.TimeWait or TcpState.LastAck or TcpState.Closing or TcpState.FinWait2)
                _connections.RemoveAt(i);
        }
        return busy;
    }

    /// <summary>Whether accepted connections send small segments at once (request/response servers do, as netperf's TCP_RR).</summary>
    protected virtual bool NoDelay => false;

    /// <summary>Per-connection state for <see cref="Serve"/> (kept in <see cref="TcpSocket.UserState"/>).</summary>
    protected virtual object? NewState() => null;

    /// <summary>Serves one connection; true when something moved. Call <see cref="TcpSocket.Close"/> when done.</summary>
    protected abstract bool Serve(TcpSocket s, Instant now);

    internal override void HostCrashed()
    {
        _connections.Clear();
        _listener = null;
    }

    internal override bool Restartable => true;

    protected override void OnStop()
    {
        _listener?.Close();
        _listener = null;
        foreach (var c in _connections) c.Abort();
        _connections.Clear();
    }

    internal override void HostRestarted(Instant now)
    {
        if (Running) _listener = Host.Stack.Listen(Port, backlog: 128);
    }

    /// <summary>Reads and throws away everything available; returns the byte count.</summary>
    protected static int Drain(TcpSocket s)
    {
        s.PeekReceived(out var a, out var b);
        int n = a.Length + b.Length;
        if (n > 0) s.Consume(n);
        return n;
    }
}

/// <summary>Discards what it receives and measures it: the far end of a bulk transfer.</summary>
internal sealed class TcpSinkApp(string name, HostNode host, ushort port) : TcpServerApp(name, host, port)
{
    private long _bytes, _first = -1, _last;

    public override string Kind => "sink";
    public long BytesReceived => _bytes;

    protected override bool Serve(TcpSocket s, Instant now)
    {
        int n = Drain(s);
        if (n > 0)
        {
            if (_first < 0) _first = now.Nanoseconds;
            _last = now.Nanoseconds;
            _bytes += n;
        }
        if (s.ReceiveFinished && s.State != TcpState.Closed) { s.Close(); return true; }
        return n > 0;
    }

    public override AppReport Report(Instant now) => new()
    {
        Name = Name, Kind = Kind, Host = Host.Name, Bytes = _bytes, Connections = Accepted,
        ThroughputBitsPerSecond = _last > _first && _first >= 0 ? _bytes * 8e9 / (_last - _first) : null,
        Completed = true, Error = Error,
    };
}

/// <summary>TCP echo: sends back what it receives, and closes after the client does.</summary>
internal sealed class TcpEchoApp(string name, HostNode host, ushort port) : TcpServerApp(name, host, port)
{
    private readonly byte[] _buffer = new byte[16 << 10];
    private long _bytes;

    public override string Kind => "echo";
    protected override bool NoDelay => true;

    protected override bool Serve(TcpSocket s, Instant now)
    {
        bool moved = false;
        while (s.SendSpace > 0 && s.Available > 0)
        {
            int n = s.Receive(_buffer.AsSpan(0, Math.Min(_buffer.Length, s.SendSpace)));
            s.Send(_buffer.AsSpan(0, n));
            _bytes += n;
            moved = true;
        }
        if (s.ReceiveFinished && s.SendQueued == 0 && s.State != TcpState.Closed) { s.Close(); moved = true; }
        return moved;
    }

    public override AppReport Report(Instant now) => new()
    {
        Name = Name, Kind = Kind, Host = Host.Name, Bytes = _bytes, Connections = Accepted, Completed = true, Error = Error,
    };
}

/// <summary>
/// The server side of request/response: each request starts with its own length and the length of
/// the response it wants (two big-endian 32-bit words); the server reads the whole request, then
/// sends that many bytes back.
/// </summary>
internal sealed class RrServerApp(string name, HostNode host, ushort port) : TcpServerApp(name, host, port)
{
    private enum Phase { Header, Body, Respond }

    private sealed class State
    {
        public readonly byte[] Header = new byte[8];
        public Phase Phase;
        public int HeaderHave;
        public long RequestLeft, ResponseSize, ResponseLeft;
    }

    public const int MaxMessage = 64 << 20;
    private long _requests;

    public override string Kind => "rr-server";
    protected override bool NoDelay => true;
    protected override object? NewState() => new State();

    protected override bool Serve(TcpSocket s, Instant now)
    {
        var st = (State)s.UserState!;
        bool moved = false;
        while (true)
        {
            if (st.Phase == Phase.Header)
            {
                int n = s.Receive(st.Header.AsSpan(st.HeaderHave));
                if (n == 0) break;
                moved = true;
                if ((st.HeaderHave += n) < 8) continue;
                long req = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(st.Header);
                long resp = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(st.Header.AsSpan(4));
                if (req < 8 || req > MaxMessage || resp > MaxMessage) { s.Abort(); return true; } // not our protocol
                (st.RequestLeft, st.ResponseSize, st.Phase) = (req - 8, resp, Phase.Body);
            }
            else if (st.Phase == Phase.Body)
            {
                s.PeekReceived(out var a, out var b);
                int n = (int)Math.Min(st.RequestLeft, a.Length + b.Length);
                s.Consume(n);
                moved |= n > 0;
                if ((st.RequestLeft -= n) > 0) break;
                _requests++;
                (st.ResponseLeft, st.Phase) = (st.ResponseSize, Phase.Respond);
            }
            else
            {
                long n = Payload.Send(s, st.ResponseLeft, st.ResponseSize - st.ResponseLeft);
                moved |= n > 0;
                if ((st.ResponseLeft -= n) > 0) break;
                (st.HeaderHave, st.Phase) = (0, Phase.Header);
            }
        }
        if (s.ReceiveFinished && st.Phase == Phase.Header && s.SendQueued == 0 && s.State != TcpState.Closed) { s.Close(); moved = true; }
        return moved;
    }

    public override AppReport Report(Instant now) => new()
    {
        Name = Name, Kind = Kind, Host = Host.Name, Received = _requests, Connections = Accepted, Completed = true, Error = Error,
    };
}
