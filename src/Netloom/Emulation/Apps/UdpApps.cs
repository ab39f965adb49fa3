using System.Buffers.Binary;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Emulation.Apps;

/// <summary>
/// A UDP stream at a constant rate (of payload bits, as iperf3 counts): datagrams of
/// <see cref="Size"/> bytes carrying a sequence number and the send time, for
/// <see cref="For"/> or <see cref="Count"/> datagrams. Its <see cref="UdpSinkApp"/> measures loss,
/// duplication, reordering and one-way delay.
/// </summary>
internal sealed class UdpStreamApp : App
{
    public const int HeaderSize = 16;
    private readonly byte[] _payload;
    private readonly long _gap;
    private UdpBinding? _socket;
    private long _next, _sent, _refused, _end;

    public UdpStreamApp(string name, HostNode host, Endpoint target, long rateBitsPerSecond, int size, Duration forTime, long count) : base(name, host)
    {
        if (size < HeaderSize || size > 65507) throw new ArgumentException($"app {name}: datagram size must be {HeaderSize} to 65507 bytes");
        if (rateBitsPerSecond <= 0) throw new ArgumentException($"app {name}: a UDP stream needs a rate");
        if (forTime <= Duration.Zero && count <= 0) throw new ArgumentException($"app {name}: a UDP stream needs a duration or a count");
        Target = target;
        Rate = rateBitsPerSecond;
        Size = size;
        For = forTime;
        Count = count;
        _payload = new byte[size];
        _gap = Math.Max(1, (long)(size * 8e9 / rateBitsPerSecond));
    }

    public override string Kind => "udp";
    public Endpoint Target { get; }
    public long Rate { get; }
    public int Size { get; }
    public Duration For { get; }
    public long Count { get; }
    public long Sent => _sent;
    /// <summary>The sink measuring this stream, when it runs in the same network.</summary>
    public UdpSinkApp? Sink { get; set; }

    protected override void OnStart(Instant now)
    {
        _socket = Host.Stack.OpenUdp();
        _next = now.Nanoseconds;
        _end = For > Duration.Zero ? now.Nanoseconds + For.Nanoseconds : long.MaxValue;
    }

    internal override bool Poll(Instant now)
    {
        bool moved = false;
        while (_next <= now.Nanoseconds && _next < _end && (Count <= 0 || _sent < Count))
        {
            BinaryPrimitives.WriteInt64BigEndian(_payload, _sent);
            BinaryPrimitives.WriteInt64BigEndian(_payload.AsSpan(8), _next);
            if (Target.SendTo(_socket!, _payload)) _sent++;
            else { _refused++; _sent++; }
            _next += _gap;
            moved = true;
        }
        if (_next >= _end || Count > 0 && _sent >= Count) Finish();
        else WakeAt = _next;
        return moved;
    }

    protected override void OnStop()
    {
        _socket?.Close();
        _socket = null;
    }

    internal override void HostCrashed()
    {
        _socket = null;
        base.HostCrashed();
    }

    public override AppReport Report(Instant now)
    {
        var sink = Sink;
        return new AppReport
        {
            Name = Name, Kind = Kind, Host = Host.Name, Target = Target.ToString(), Sent = _sent,
            Received = sink?.Unique, Duplicates = sink?.Duplicates, Reordered = sink?.Reordered,
            Loss = sink is null || _sent == 0 ? null : 1.0 - (double)sink.Unique / _sent,
            Bytes = sink?.Bytes, ThroughputBitsPerSecond = sink?.Throughput,
            Latency = sink?.OneWay.Summary(), Completed = !Running, Error = Error,
        };
    }
}

/// <summary>Receives a <see cref="UdpStreamApp"/>'s datagrams on a port and measures them.</summary>
internal sealed class UdpSinkApp(string name, HostNode host, ushort port) : App(name, host)
{
    private const int Window = 1 << 16;
    private readonly ulong[] _seen = new ulong[Window / 64];
    private readonly byte[] _buffer = new byte[65536];
    private UdpBinding? _socket;
    private long _highest = -1, _first = -1, _last;

    public override string Kind => "udp-sink";
    public ushort Port { get; } = port;
    public long Unique { get; private set; }
    public long Duplicates { get; private set; }
    public long Reordered { get; private set; }
    public long Bytes { get; private set; }
    /// <summary>One-way delay from the stream's send time to arrival.</summary>
    public LatencyStats OneWay { get; } = new();
    public double? Throughput => _last > _first && _first >= 0 ? Bytes * 8e9 / (_last - _first) : null;

    protected override void OnStart(Instant now) => _socket = Host.Stack.OpenUdp(Port, receiveBytes: 1 << 20, receiveCount: 1024);

    internal override bool Poll(Instant now)
    {
        bool moved = false;
        while (_socket is not null && _socket.TryReceive(_buffer, out int n, out _, out _))
        {
            moved = true;
            if (n < UdpStreamApp.HeaderSize) continue;
            long seq = BinaryPrimitives.ReadInt64BigEndian(_buffer);
            long sentAt = BinaryPrimitives.ReadInt64BigEndian(_buffer.AsSpan(8));
            if (seq < 0) continue;
            if (!Mark(seq)) { Duplicates++; continue; }
            Unique++;
            Bytes += n;
            if (_first < 0) _first = now.Nanoseconds;
            _last = now.Nanoseconds;
            OneWay.Add(now.Nanoseconds - sentAt);
        }
        return moved;
    }

    /// <summary>Records <paramref name="seq"/>; false when it was seen already (within the last 65,536).</summary>
    private bool Mark(long seq)
    {
        if (seq > _highest)
        {
            // Clear the bits of the sequence numbers skipped over, so the window can be reused.
            for (long s = Math.Max(_highest + 1, seq - Window + 1); s < seq; s++) _seen[(s % Window) >> 6] &= ~(1UL << (int)(s & 63));
            _highest = seq;
            _seen[(seq % Window) >> 6] |= 1UL << (int)(seq & 63);
            return true;
        }
        if (seq <= _highest - Window) { Reordered++; return true; } // too old to tell: counted late, not as a duplicate
        ref ulong word = ref _seen[(seq % Window) >> 6];
        ulong bit = 1UL << (int)(seq & 63);
        if ((word & bit) != 0) return false;
        word |= bit;
        Reordered++;
        return true;
    }

    internal override void HostCrashed() => _socket = null;

    internal override bool Restartable => true;

    protected override void OnStop()
    {
        _socket?.Close();
        _socket = null;
    }
    internal override void HostRestarted(Instant now)
    {
        if (Running) _socket = Host.Stack.OpenUdp(Port, receiveBytes: 1 << 20, receiveCount: 1024);
    }

    public override AppReport Report(Instant now) => new()
    {
        Name = Name, Kind = Kind, Host = Host.Name, Received = Unique, Duplicates = Duplicates, Reordered = Reordered, Bytes = Bytes,
        ThroughputBitsPerSecond = Throughput, Latency = OneWay.Summary(), Completed = true, Error = Error,
    };
}
