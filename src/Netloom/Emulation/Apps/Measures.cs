using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Emulation.Apps;

/// <summary>
/// Latency samples in a log-linear histogram (HdrHistogram's shape): exact count, mean, standard
/// deviation, minimum and maximum; percentiles from buckets 1/128 of their value wide, each reported
/// as the mean of the samples it holds, so a percentile is within 0.8% of the true one and exact
/// when its bucket holds one value (a fixed delay). Memory is bounded however long the run: one
/// bucket array per power of two actually seen, allocated the first time; none per sample after that.
/// </summary>
internal sealed class LatencyStats
{
    private const int SubBuckets = 128; // per power of two from 256 ns up; below 256 ns every nanosecond has a bucket

    private struct Bucket
    {
        public long Count;
        public double Sum;
    }

    private readonly Bucket[]?[] _octaves = new Bucket[]?[56];
    private double _sum, _sumSq;
    private long _min = long.MaxValue, _max = long.MinValue;

    public long Count { get; private set; }

    public void Add(long nanoseconds)
    {
        long v = Math.Max(0, nanoseconds);
        Count++;
        _sum += v;
        _sumSq += (double)v * v;
        _min = Math.Min(_min, v);
        _max = Math.Max(_max, v);
        int octave, bucket;
        if (v < 2 * SubBuckets) { octave = 0; bucket = (int)v; }
        else
        {
            int e = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)v); // 8 and up
            octave = e - 7;
            bucket = (int)(v >> (e - 7)) - SubBuckets;
        }
        ref Bucket b = ref (_octaves[octave] ??= new Bucket[octave == 0 ? 2 * SubBuckets : SubBuckets])[bucket];
        b.Count++;
        b.Sum += v;
    }

    public double Mean => Count == 0 ? 0 : _sum / Count;
    public double StdDev => Count < 2 ? 0 : Math.Sqrt(Math.Max(0, (_sumSq - _sum * _sum / Count) / (Count - 1)));

    /// <summary>The sample of rank ⌊q·Count⌋ in sorted order, as its bucket's mean (nanoseconds).</summary>
    public double Percentile(double q)
    {
        if (Count == 0) return 0;
        long rank = Math.Min(Count - 1, (long)(q * Count)), seen = 0;
        foreach (var octave in _octaves)
        {
            if (octave is null) continue;
            foreach (var b in octave)
            {
                seen += b.Count;
                if (seen > rank) return Math.Clamp(b.Sum / b.Count, _min, _max);
            }
        }
        return _max;
    }

    public LatencySummary? Summary() => Count == 0 ? null
        : new LatencySummary(Count, _min / 1e3, Mean / 1e3, Percentile(0.5) / 1e3, Percentile(0.9) / 1e3, Percentile(0.99) / 1e3, _max / 1e3, StdDev / 1e3);
}

/// <summary>Where a client app sends: an address and port.</summary>
internal readonly record struct Endpoint(IpAddr Address, ushort Port)
{
    public Endpoint(Ipv4Address address, ushort port) : this(IpAddr.FromIpv4(address), port) { }

    /// <summary>A TCP connection from <paramref name="stack"/> to here, over the IP version of the address.</summary>
    public TcpSocket Connect(Interface stack, TcpSocketOptions? options) =>
        Address.IsIpv4 ? stack.Connect(Address.Ipv4, Port, options) : stack.Connect(Address.Ipv6, Port, options);

    /// <summary>A datagram to here from <paramref name="socket"/>.</summary>
    public bool SendTo(UdpBinding socket, ReadOnlySpan<byte> payload) =>
        Address.IsIpv4 ? socket.SendTo(payload, Address.Ipv4, Port) : socket.SendTo(payload, Address.Ipv6, Port);

    public override string ToString() => Address.IsIpv4 ? $"{Address}:{Port}" : $"[{Address}]:{Port}";
}
