using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Emulation.Apps;

/// <summary>ping: echo requests at an interval; round-trip times of the replies; loss.</summary>
internal sealed class PingApp : App
{
    private const int Window = 65536;
    private readonly long[] _sentAt = new long[Window]; // by sequence number; 0 = answered or never sent
    private readonly byte[] _payload;
    private readonly long _interval;
    private long _sent, _received, _duplicates;
    private long _next;

    public PingApp(string name, HostNode host, IpAddr target, Duration interval, int count, int size, ushort identifier) : base(name, host)
    {
        Target = target;
        _interval = Math.Max(1000, interval.Nanoseconds);
        Count = count;
        Identifier = identifier;
        _payload = new byte[size];
        for (int i = 0; i < size; i++) _payload[i] = (byte)(0x10 + i);
    }

    public PingApp(string name, HostNode host, Ipv4Address target, Duration interval, int count, int size, ushort identifier)
        : this(name, host, IpAddr.FromIpv4(target), interval, count, size, identifier) { }

    public override string Kind => "ping";
    public IpAddr Target { get; }
    public int Count { get; }
    public ushort Identifier { get; }
    public LatencyStats Rtt { get; } = new();

    protected override void OnStart(Instant now) => _next = now.Nanoseconds;

    internal override bool Poll(Instant now)
    {
        bool sent = false;
        while (_next <= now.Nanoseconds && (Count == 0 || _sent < Count))
        {
            ushort seq = (ushort)_sent;
            if (Target.IsIpv4) Host.Stack.SendPing(Target.Ipv4, Identifier, seq, _payload);
            else Host.Stack.SendPing6(Target.Ipv6, Identifier, seq, _payload);
            _sentAt[seq] = now.Nanoseconds;
            _sent++;
            _next += _interval;
            sent = true;
        }
        WakeAt = Count != 0 && _sent >= Count ? long.MaxValue : _next;
        return sent;
    }

    internal override void OnPingReply(in PingReply reply)
    {
        if (Target.IsIpv4) Answered(reply.Identifier, reply.Sequence, reply.Received);
    }

    internal override void OnPingReply6(in PingReply6 reply)
    {
        if (!Target.IsIpv4) Answered(reply.Identifier, reply.Sequence, reply.Received);
    }

    private void Answered(ushort identifier, ushort sequence, Instant received)
    {
        if (identifier != Identifier) return; // another ping app's
        long at = _sentAt[sequence];
        if (at == 0) { _duplicates++; return; }
        _sentAt[sequence] = 0;
        _received++;
        Rtt.Add(received.Nanoseconds - at);
    }

    public override AppReport Report(Instant now) => new()
    {
        Name = Name, Kind = Kind, Host = Host.Name, Target = Target.ToString(),
        Sent = _sent, Received = _received, Duplicates = _duplicates,
        Loss = _sent == 0 ? null : 1.0 - (double)_received / _sent,
        Latency = Rtt.Summary(), Completed = Count != 0 && _sent >= Count, Error = Error,
    };
}
