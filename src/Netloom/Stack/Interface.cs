using System.Buffers.Binary;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// A user-level IPv4 host on one Ethernet device (smoltcp's Interface): ARP, IPv4 with
/// fragmentation and bounded reassembly, ICMP and UDP. Single-threaded and clock-free: the owner
/// calls <see cref="Poll"/> with the current time and asks <see cref="PollAt"/> when to come back.
/// Everything it stores is sized at construction from <see cref="StackOptions"/>.
/// </summary>
internal sealed partial class Interface
{
    private const byte TimerNeighbor = 1, TimerReassembly = 2;

    private readonly StackOptions _o;
    private readonly IFrameDevice _device;
    private readonly NeighborCache _neighbors;
    private readonly Reassembler _reassembly;
    private readonly TimerWheel _timers;
    private byte[] _transport;       // a transport message being built (see Transport)
    private readonly byte[] _packet; // an IPv4 packet or fragment being built: at most the MTU
    private readonly Random _random;
    private Instant _now;
    private bool _started;
    private ushort _ipId;
    private double _icmpTokens;
    private long _icmpRefilled;

    public Interface(StackOptions options, IFrameDevice device, int seed = 0)
    {
        options.Validate();
        if (options.Mtu + 14 > device.MaxFrameSize)
            throw new ArgumentException($"MTU {options.Mtu} needs {options.Mtu + 14}-byte frames but the device carries at most {device.MaxFrameSize} (use a smaller MTU or a port with larger buffers)");
        _o = options;
        _device = device;
        _csum = device as IChecksumOffloadDevice;
        _transport = new byte[options.Mtu];
        _packet = new byte[options.Mtu];
        _random = seed == 0 ? new Random() : new Random(seed);
        _neighbors = new NeighborCache(options.NeighborCapacity, options.PendingPerNeighbor, options.PendingTotal, options.Mtu);
        _reassembly = new Reassembler(options.ReassemblySlots, options.ReassemblyBytes, options.ReassemblyBytesPerSource);
        _timers = new TimerWheel(options.NeighborCapacity + options.ReassemblySlots + options.TcpConnections + options.TcpListeners + 2); // + the IPv6 and MLD timers
        for (int i = 0; i < options.NeighborCapacity; i++) _neighbors[i].Timer = _timers.Create(TimerNeighbor, i);
        for (int i = 0; i < options.ReassemblySlots; i++) _reassembly.SetTimer(i, _timers.Create(TimerReassembly, i));
        if (options.Ipv6)
        {
            _ipv6Timer = _timers.Create(TimerIpv6, 0);
            InitIpv6();
        }
        _udp = new UdpBinding?[options.UdpSockets];
        _tcp = new TcpTable(options, this, Counters, _timers, _random, seed);
        _ipId = (ushort)_random.Next(65536);
        _icmpTokens = options.IcmpErrorsPerSecond;
    }

    public StackOptions Options => _o;
    internal StackCounters Counters { get; } = new();
    /// <summary>A copy of the counters; the owner's thread, or a caller holding the owner's lock, reads a consistent set.</summary>
    public StackCountersSnapshot GetCounters() => Counters.Snapshot();
    public MacAddress Mac => _o.Mac;
    public Ipv4Address Address => _o.Address;
    internal int ReassemblyBytesHeld => _reassembly.HeldBytes;
    internal int ReassembliesInProgress => _reassembly.InProgress;

    /// <summary>
    /// The scratch buffer for a transport message of <paramref name="length"/> bytes. It starts at the
    /// MTU (every TCP segment fits) and grows, once per size class, only for large UDP datagrams and
    /// pings, so a stack that never sends one does not carry 64 KiB for it.
    /// </summary>
    private byte[] Transport(int length)
    {
        if (_transport.Length < length) _transport = new byte[Math.Min(65536, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)length))];
        return _transport;
    }

    /// <summary>When the interface next needs <see cref="Poll"/> for its timers; null when only new frames matter.</summary>
    public Instant? PollAt() => _started && !_tcp.HasBlocked ? _timers.NextDeadline() : _now;

    /// <summary>Runs timers, processes up to <paramref name="budget"/> received frames, and flushes what was sent. Returns the frames processed.</summary>
    public int Poll(Instant now, int budget = 256)
    {
        _now = now;
        _tcp.Now = now;
        if (!_started)
        {
            _started = true;
            _icmpRefilled = now.Nanoseconds;
            _tcp.Start(now);
            SendArp(ArpOperation.Request, MacAddress.Broadcast, _o.Address, MacAddress.Zero); // gratuitous ARP (RFC 5227 announcement)
            if (_o.Ipv6) StartIpv6();
        }
        _timers.Expire(now, this, static (me, kind, owner) => me.OnTimer(kind, owner));
        int n = 0;
        while (n < budget && _device.TryReceive(out var frame))
        {
            _rxPartial = _csum is { ReceivedPartial: true };
            Process(frame);
            _rxPartial = false;
            n++;
        }
        _device.ReleaseReceived();
        _device.Flush();
        if (_tcp.HasBlocked)
        {
            _tcp.RetryBlocked();
            _device.Flush();
        }
        return n;
    }

    private void OnTimer(byte kind, int owner)
    {
        switch (kind)
        {
            case TimerNeighbor: NeighborTimer(owner); break;
            case TimerReassembly: ReassemblyTimer(owner); break;
            case TimerIpv6: Ipv6Tick(); break;
            case TimerMld: MldTick(); break;
            case TcpTable.TimerConnection or TcpTable.TimerListener: _tcp.OnTimer(kind, owner); break;
        }
    }

    private void Process(ReadOnlySpan<byte> frame)
    {
        Counters.FramesIn++;
        if (!EthernetFrame.TryParse(frame, out var eth, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        var dst = eth.Destination;
        if (dst != _o.Mac && !dst.IsBroadcast && !IsOurMulticastMac(dst)) { Counters.Drop(StackDrop.NotForUs); return; }
        switch ((EtherType)eth.EtherType)
        {
            case EtherType.Arp: ProcessArp(eth.Payload); break;
            case EtherType.Ipv4: ProcessIpv4(eth.Payload); break;
            case EtherType.Ipv6: ProcessIpv6(eth.Payload); break;
            default: Counters.Drop(StackDrop.UnknownProtocol); break;
        }
    }

    /// <summary>A frame of <paramref name="length"/> bytes to fill, or empty (counted) when the device is full.</summary>
    private Span<byte> Transmit(int length)
    {
        var buf = _device.TryAllocateTransmit(length);
        if (buf.IsEmpty) Counters.Drop(StackDrop.DeviceFull);
        return buf;
    }

    private void Commit(int length)
    {
        if (_markNext)
        {
            _markNext = false;
            MarkPartial();
        }
        _device.CommitTransmit(length);
        Counters.FramesOut++;
    }

    /// <summary>True if ICMP errors may be sent now (token bucket).</summary>
    private bool TakeIcmpToken()
    {
        double elapsed = (_now.Nanoseconds - _icmpRefilled) / 1e9;
        _icmpRefilled = _now.Nanoseconds;
        _icmpTokens = Math.Min(_o.IcmpErrorsPerSecond, _icmpTokens + elapsed * _o.IcmpErrorsPerSecond);
        if (_icmpTokens < 1) { Counters.Drop(StackDrop.IcmpRateLimited); return false; }
        _icmpTokens -= 1;
        return true;
    }

    private bool IsOurs(Ipv4Address a) => a == _o.Address;

    private bool IsBroadcastFor(Ipv4Address a) =>
        a.IsBroadcast || (_o.PrefixLength < 31 && a.SameSubnet(_o.Address, _o.PrefixLength) && (a.Value | (_o.PrefixLength == 0 ? 0 : uint.MaxValue << (32 - _o.PrefixLength))) == uint.MaxValue);

    private static ushort ReadU16(ReadOnlySpan<byte> b) => BinaryPrimitives.ReadUInt16BigEndian(b);
}
