using System.Buffers.Binary;
using Netloom.Stack;
using Netloom.Time;

namespace Netloom.Emulation.Apps;

/// <summary>
/// Bulk TCP transfer: connects, sends <see cref="Bytes"/> (or sends for <see cref="For"/>), then
/// closes. Throughput is what the peer acknowledged over the time from the handshake to the last
/// acknowledgement.
/// </summary>
internal sealed class BulkSendApp : App
{
    private readonly TcpSocketOptions? _options;
    private TcpSocket? _s;
    private long _written, _established = -1, _done = -1;
    private bool _shut;

    public BulkSendApp(string name, HostNode host, Endpoint target, long bytes, Duration forTime, TcpSocketOptions? options = null) : base(name, host)
    {
        if (bytes <= 0 && forTime <= Duration.Zero) throw new ArgumentException($"app {name}: a bulk transfer needs a size or a duration");
        Target = target;
        Bytes = bytes;
        For = forTime;
        _options = options;
    }

    public override string Kind => "bulk";
    public Endpoint Target { get; }
    public long Bytes { get; }
    public Duration For { get; }
    public TcpSocket? Socket => _s;
    public bool Done => _done >= 0;

    protected override void OnStart(Instant now) => _s = Target.Connect(Host.Stack, _options);

    protected override void OnStop() => _s?.Abort();

    private long Acked => _s is null ? 0 : _written - _s.SendQueued;

    internal override bool Poll(Instant now)
    {
        var s = _s!;
        if (s.State == TcpState.Closed && _done < 0) { Finish(Describe(s.Error)); return false; }
        if (!s.IsConnected && s.State is TcpState.SynSent or TcpState.SynReceived) return false;
        if (_established < 0) _established = now.Nanoseconds;
        bool moved = false;
        bool timeUp = For > Duration.Zero && now.Nanoseconds - _established >= For.Nanoseconds;
        if (!_shut)
        {
            long want = Bytes > 0 ? Bytes - _written : long.MaxValue;
            if (!timeUp && want > 0)
            {
                long n = Payload.Send(s, want, _written);
                _written += n;
                moved = n > 0;
            }
            if (timeUp || Bytes > 0 && _written >= Bytes)
            {
                s.Shutdown();
                _shut = true;
                moved = true;
            }
        }
        if (_shut && _done < 0 && s.SendQueued == 0 && s.State is TcpState.FinWait2 or TcpState.TimeWait or TcpState.Closed or TcpState.Closing or TcpState.LastAck)
        {
            _done = now.Nanoseconds;
            s.Close();
            Finish();
        }
        WakeAt = For > Duration.Zero && !_shut ? _established + For.Nanoseconds : long.MaxValue;
        return moved;
    }

    public override AppReport Report(Instant now)
    {
        long end = _done >= 0 ? _done : now.Nanoseconds;
        long acked = Acked;
        return new AppReport
        {
            Name = Name, Kind = Kind, Host = Host.Name, Target = Target.ToString(), Bytes = acked,
            ThroughputBitsPerSecond = _established >= 0 && end > _established ? acked * 8e9 / (end - _established) : null,
            Retransmissions = _s?.Retransmits, Timeouts = _s?.Timeouts,
            Latency = _s is { } s && s.SmoothedRtt > Duration.Zero ? Srtt(s) : null,
            Completed = _done >= 0, Error = Error,
        };
    }

    private static LatencySummary Srtt(TcpSocket s)
    {
        double us = s.SmoothedRtt.Nanoseconds / 1e3;
        return new LatencySummary(1, us, us, us, us, us, us, 0);
    }
}

/// <summary>
/// Request/response over one TCP connection: a request of <see cref="RequestSize"/> bytes, then
/// wait for <see cref="ResponseSize"/> bytes back (the <see cref="RrServerApp"/> protocol),
/// <see cref="Count"/> times, <see cref="Interval"/> apart (0: back to back). Latency is from
/// sending a request to the last byte of its response.
/// </summary>
internal sealed class RrClientApp : App
{
    private readonly byte[] _request;
    private readonly TcpSocketOptions? _options;
    private TcpSocket? _s;
    private long _done, _sentAt = -1, _requestLeft, _responseLeft, _next;
    private bool _closed;

    public RrClientApp(string name, HostNode host, Endpoint target, int requestSize, int responseSize, int count, Duration interval, TcpSocketOptions? options = null) : base(name, host)
    {
        if (requestSize < 8 || requestSize > RrServerApp.MaxMessage) throw new ArgumentException($"app {name}: request size must be 8 bytes to 64 MiB");
        if (responseSize < 0 || responseSize > RrServerApp.MaxMessage) throw new ArgumentException($"app {name}: response size must be 0 to 64 MiB");
        Target = target;
        RequestSize = requestSize;
        ResponseSize = responseSize;
        Count = count;
        Interval = interval;
        _options = (options ?? new TcpSocketOptions()) with { NoDelay = true };
        _request = new byte[requestSize];
        BinaryPrimitives.WriteUInt32BigEndian(_request, (uint)requestSize);
        BinaryPrimitives.WriteUInt32BigEndian(_request.AsSpan(4), (uint)responseSize);
    }

    public override string Kind => "rr";
    public Endpoint Target { get; }
    public int RequestSize { get; }
    public int ResponseSize { get; }
    public int Count { get; }
    public Duration Interval { get; }
    public LatencyStats Latency { get; } = new();

    protected override void OnStart(Instant now) => _s = Target.Connect(Host.Stack, _options);

    protected override void OnStop() => _s?.Abort();

    internal override bool Poll(Instant now)
    {
        var s = _s!;
        if (s.State == TcpState.Closed && !_closed) { Finish(Describe(s.Error)); return false; }
        if (!s.IsConnected) return false;
        bool moved = false;
        if (_sentAt >= 0 && _requestLeft > 0)
        {
            int w = s.Send(_request.AsSpan(RequestSize - (int)_requestLeft));
            _requestLeft -= w;
            moved = w > 0;
        }
        if (_sentAt >= 0 && _requestLeft == 0)
        {
            s.PeekReceived(out var a, out var b);
            int n = (int)Math.Min(_responseLeft, a.Length + b.Length);
            s.Consume(n);
            _responseLeft -= n;
            moved |= n > 0;
            if (_responseLeft > 0) return moved;
            Latency.Add(now.Nanoseconds - _sentAt);
            _done++;
            _sentAt = -1;
            _next = now.Nanoseconds + Interval.Nanoseconds;
        }
        if (Count > 0 && _done >= Count)
        {
            if (!_closed) { s.Close(); _closed = true; Finish(); }
            return moved;
        }
        if (_requestLeft == 0)
        {
            if (now.Nanoseconds < _next) { WakeAt = _next; return moved; }
            _requestLeft = RequestSize;
            _sentAt = now.Nanoseconds;
            _responseLeft = ResponseSize;
            WakeAt = long.MaxValue;
        }
        int sent = s.Send(_request.AsSpan(RequestSize - (int)_requestLeft));
        _requestLeft -= sent;
        if (_requestLeft == 0 && _responseLeft == 0) return Poll(now); // nothing to wait for
        return moved | sent > 0;
    }

    public override AppReport Report(Instant now) => new()
    {
        Name = Name, Kind = Kind, Host = Host.Name, Target = Target.ToString(), Sent = _done + (_sentAt >= 0 ? 1 : 0), Received = _done,
        Retransmissions = _s?.Retransmits, Timeouts = _s?.Timeouts,
        Latency = Latency.Summary(), Completed = Count > 0 && _done >= Count, Error = Error,
    };
}
