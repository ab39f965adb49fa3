using System.Buffers.Binary;
using Netloom.Wire;

namespace Netloom.Emulation;

/// <summary>An address on one of a router's ports.</summary>
public readonly record struct RouterAddress(Ipv4Address Address, int PrefixLength)
{
    /// <summary>From a System.Net address; IPv6 throws <see cref="ArgumentException"/> (not supported yet).</summary>
    public RouterAddress(System.Net.IPAddress address, int prefixLength) : this(Ipv4Address.FromIPAddress(address), prefixLength) { }

    public uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);
    public bool Contains(Ipv4Address a) => (a.Value & Mask) == (Address.Value & Mask);
    public override string ToString() => $"{Address}/{PrefixLength}";
}

/// <summary>A static route: packets to <see cref="Prefix"/> leave through <see cref="Port"/>, to <see cref="Via"/> or (when null) straight to their destination.</summary>
public readonly record struct Route(Ipv4Address Prefix, int PrefixLength, int Port, Ipv4Address? Via)
{
    /// <summary>From System.Net addresses; IPv6 throws <see cref="ArgumentException"/> (not supported yet).</summary>
    public Route(System.Net.IPAddress prefix, int prefixLength, int port, System.Net.IPAddress? via)
        : this(Ipv4Address.FromIPAddress(prefix), prefixLength, port, via is null ? null : Ipv4Address.FromIPAddress(via)) { }

    public uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);
    public bool Matches(Ipv4Address a) => (a.Value & Mask) == (Prefix.Value & Mask);
    public override string ToString() => $"{Prefix}/{PrefixLength} port {Port}" + (Via is { } v ? $" via {v}" : "");
}

/// <summary>Router counters.</summary>
/// <summary>A router's counters: read by users, written only by the router.</summary>
public sealed class RouterCounters
{
    public long Received { get; internal set; }
    public long Forwarded { get; internal set; }
    public long Local { get; internal set; }
    public long ArpIn { get; internal set; }
    public long ArpOut { get; internal set; }
    public long TtlExceeded { get; internal set; }
    public long NoRoute { get; internal set; }
    public long HostUnreachable { get; internal set; }
    public long FragmentationNeeded { get; internal set; }
    public long Malformed { get; internal set; }
    public long NotForUs { get; internal set; }
    public long PendingDropped { get; internal set; }
    /// <summary>Forwarded packets the access list dropped.</summary>
    public long AccessDenied { get; internal set; }
    /// <summary>ICMPv6 errors not sent because the rate limit was reached (RFC 4443 §2.4 f).</summary>
    public long Icmpv6ErrorsLimited { get; internal set; }
}

/// <summary>
/// A user-level IPv4 and IPv6 router (the IPv6 half: RouterNode.Ipv6.cs): each port has an address; packets are forwarded by the longest
/// matching route (connected prefixes plus static routes), with the TTL decremented and the header
/// checksum updated in place (RFC 1812 §5.3.1, RFC 1624). It answers ARP and ping for its own
/// addresses and sends ICMP Time Exceeded (TTL ran out), Destination Unreachable (no route: net;
/// no ARP answer: host; too big with DF set: fragmentation needed; its own address, other
/// protocols: protocol) to the packet's source.
/// </summary>
public sealed partial class RouterNode : Node
{
    private const int PendingPerHop = 16;
    private const int ArpAttempts = 3;
    private static readonly long ArpRetryNs = 1_000_000_000;

    private sealed class Pending
    {
        public readonly Queue<SimFrame> Frames = new();
        public int Attempts;
        public long NextTry;
        public int Port;
    }

    private readonly List<RouterAddress?> _addresses = [];
    private readonly List<int> _mtus = [];
    private readonly List<Route> _static = [];
    private Route[] _table = [];
    private readonly Dictionary<(int Port, Ipv4Address Ip), MacAddress> _neighbors = [];
    private readonly Dictionary<(int Port, Ipv4Address Ip), Pending> _pending = [];
    private readonly byte[] _scratch = new byte[1600];
    private ushort _ipId;

    internal RouterNode(Network network, int id, string name) : base(network, id, name)
    {
        // The retry and expiry steps of each family, made once (Wake runs them while next hops resolve).
        _resolve4 = Resolve;
        _unreachable4 = HostUnreachable4;
        _resolve6 = Solicit;
        _unreachable6 = AddressUnreachable6;
    }

    private readonly Action<Ipv4Address, Pending, long> _resolve4;
    private readonly Action<Ipv6Address, Pending, long> _resolve6;
    private readonly Action<SimFrame, long> _unreachable4, _unreachable6;

    public RouterCounters Counters { get; } = new();
    /// <summary>The routing table: connected prefixes and static routes, longest prefix first.</summary>
    public IReadOnlyList<Route> Routes
    {
        get
        {
            if (_table.Length == 0) BuildTable();
            return _table;
        }
    }
    public RouterAddress? AddressOf(int port) => port < _addresses.Count ? _addresses[port] : null;

    internal NodePort AddInterface(RouterAddress? address, int mtu)
    {
        var p = AddPort();
        _addresses.Add(address);
        _mtus.Add(mtu);
        _table = []; // rebuilt at the next lookup, with this interface's connected prefix (a link added while running)
        return p;
    }

    internal void SetAddress(int port, RouterAddress address) => _addresses[port] = address;

    public void AddRoute(Route route)
    {
        if (route.Port < 0 || route.Port >= Ports.Count) throw new ArgumentException($"router {Name}: route {route} names port {route.Port}, which does not exist");
        _static.Add(route);
        _table = [];
    }

    /// <summary>The routing table: connected prefixes and static routes, longest prefix first.</summary>
    internal void BuildTable()
    {
        var all = new List<Route>(_static);
        for (int i = 0; i < _addresses.Count; i++)
            if (_addresses[i] is { } a)
                all.Add(new Route(new Ipv4Address(a.Address.Value & a.Mask), a.PrefixLength, i, null));
        // Longest prefix first; ties keep the order given (static before connected, first written first).
        _table = all.Select((r, i) => (r, i)).OrderByDescending(x => x.r.PrefixLength).ThenBy(x => x.i).Select(x => x.r).ToArray();
        Array.Clear(_cacheUsed);
    }

    // A direct-mapped cache of recent lookups (destination -> index in the table, -1 for no route),
    // so a router with hundreds of routes does not scan them for every packet. Cleared with the table.
    private const int CacheSize = 256;
    private readonly uint[] _cacheKey = new uint[CacheSize];
    private readonly int[] _cacheRoute = new int[CacheSize];
    private readonly bool[] _cacheUsed = new bool[CacheSize];

    private bool TryRoute(Ipv4Address destination, out Route route)
    {
        if (_table.Length == 0) BuildTable();
        uint d = destination.Value;
        int slot = (int)((d ^ d >> 8 ^ d >> 16) & (CacheSize - 1));
        int index;
        if (_cacheUsed[slot] && _cacheKey[slot] == d) index = _cacheRoute[slot];
        else
        {
            index = -1;
            for (int i = 0; i < _table.Length; i++)
                if (_table[i].Matches(destination)) { index = i; break; }
            (_cacheKey[slot], _cacheRoute[slot], _cacheUsed[slot]) = (d, index, true);
        }
        route = index >= 0 ? _table[index] : default;
        return index >= 0;
    }

    private bool IsOwnAddress(Ipv4Address a)
    {
        foreach (var x in _addresses)
            if (x is { } ra && ra.Address == a) return true;
        return false;
    }

    internal override void Receive(NodePort port, SimFrame frame, long now)
    {
        if (!IsUp) { Discarded++; Network.Pool.Return(frame); return; }
        Counters.Received++;
        var span = frame.Span;
        if (!EthernetFrame.TryParse(span, out var eth, out _)) { Counters.Malformed++; Network.Pool.Return(frame); return; }
        bool ipv6 = eth.EtherType == (ushort)EtherType.Ipv6 && eth.TagCount == 0;
        if (eth.Destination != port.Mac && !eth.Destination.IsBroadcast && !(ipv6 && eth.Destination.IsMulticast)) { Counters.NotForUs++; Network.Pool.Return(frame); return; }
        if (eth.EtherType == (ushort)EtherType.Arp) { ReceiveArp(port, eth.Payload, now); Network.Pool.Return(frame); return; }
        if (ipv6) { ReceiveIpv6(port, frame, eth.Payload, now); return; }
        if (eth.EtherType != (ushort)EtherType.Ipv4 || eth.TagCount != 0) { Counters.Malformed++; Network.Pool.Return(frame); return; }
        if (!Ipv4Packet.TryParse(eth.Payload, out var ip, out _) || !ip.ChecksumValid) { Counters.Malformed++; Network.Pool.Return(frame); return; }
        if (IsOwnAddress(ip.Destination) || ip.Destination.IsBroadcast)
        {
            Counters.Local++;
            ReceiveLocal(port, ip, now);
            Network.Pool.Return(frame);
            return;
        }
        Forward(port, frame, ip, now);
    }

    /// <summary>Forwards a valid IPv4 frame (RFC 1812 §5.2): TTL, route, next hop, MTU, then out.</summary>
    private void Forward(NodePort inPort, SimFrame frame, in Ipv4Packet ip, long now)
    {
        if (_acl.Length != 0 && !Permitted(ip))
        {
            // Dropped in silence, as a firewall does: no ICMP says why.
            Counters.AccessDenied++;
            Network.Pool.Return(frame);
            return;
        }
        if (ip.Ttl <= 1)
        {
            Counters.TtlExceeded++;
            SendIcmpError(inPort, ip, IcmpRepr.TimeExceeded(TimeExceededCode.TtlExceeded, Quote(ip)), now);
            Network.Pool.Return(frame);
            return;
        }
        if (!TryRoute(ip.Destination, out var route))
        {
            Counters.NoRoute++;
            SendIcmpError(inPort, ip, IcmpRepr.Unreachable(UnreachableCode.Network, Quote(ip)), now);
            Network.Pool.Return(frame);
            return;
        }
        int mtu = _mtus[route.Port];
        if (ip.TotalLength > mtu)
        {
            // No fragmentation here: DF set gets RFC 1191's answer; otherwise the packet is dropped and counted.
            Counters.FragmentationNeeded++;
            if (ip.DontFragment) SendIcmpError(inPort, ip, IcmpRepr.Unreachable(UnreachableCode.FragmentationNeeded, Quote(ip), (ushort)mtu), now);
            Network.Pool.Return(frame);
            return;
        }
        // TTL - 1 and the incremental checksum update (RFC 1624): the TTL is the high byte of its 16-bit word.
        var ipBytes = frame.Data.AsSpan(14, ip.TotalLength);
        ushort oldWord = BinaryPrimitives.ReadUInt16BigEndian(ipBytes[8..]);
        ipBytes[8]--;
        ushort newWord = BinaryPrimitives.ReadUInt16BigEndian(ipBytes[8..]);
        ushort sum = BinaryPrimitives.ReadUInt16BigEndian(ipBytes[10..]);
        BinaryPrimitives.WriteUInt16BigEndian(ipBytes[10..], Checksum.Update(sum, oldWord, newWord));
        var nextHop = route.Via ?? ip.Destination;
        Counters.Forwarded++;
        SendTo(route.Port, nextHop, frame, now);
    }

    private static int Quote(in Ipv4Packet ip) => Math.Min(ip.TotalLength, ip.HeaderLength + 8);

    /// <summary>Puts the next hop's MAC on the frame and sends it, or holds it while ARP asks.</summary>
    private void SendTo(int port, Ipv4Address nextHop, SimFrame frame, long now)
    {
        var p = Ports[port];
        if (_neighbors.TryGetValue((port, nextHop), out var mac))
        {
            mac.Write(frame.Data);
            p.Mac.Write(frame.Data.AsSpan(6));
            Send(p, frame, now);
            return;
        }
        if (!_pending.TryGetValue((port, nextHop), out var pending))
        {
            pending = new Pending { Port = port, NextTry = now };
            _pending[(port, nextHop)] = pending;
        }
        if (pending.Frames.Count >= PendingPerHop) { Counters.PendingDropped++; Network.Pool.Return(frame); }
        else pending.Frames.Enqueue(frame);
        if (pending.NextTry <= now) Resolve(nextHop, pending, now);
    }

    private void Resolve(Ipv4Address nextHop, Pending pending, long now)
    {
        var source = _addresses[pending.Port]?.Address ?? Ipv4Address.Any;
        var f = Network.Pool.Rent();
        if (f is null) return;
        var p = Ports[pending.Port];
        f.Length = FrameBuilder.Arp(f.Data, new EthernetRepr(p.Mac, MacAddress.Broadcast, EtherType.Arp), ArpRepr.Request(p.Mac, source, nextHop));
        Counters.ArpOut++;
        pending.Attempts++;
        pending.NextTry = now + ArpRetryNs;
        Send(p, f, now);
        RequestWake(pending.NextTry);
    }

    internal override void Wake(long now)
    {
        if (!IsUp) return;
        RetryOrExpire(_pending, now, _resolve4, _unreachable4);
        RetryOrExpire(_pending6, now, _resolve6, _unreachable6);
    }

    /// <summary>
    /// Asks again for each next hop whose retry time has come; after the last attempt, each packet
    /// waiting on it is counted and answered as unreachable (IPv4 and IPv6 alike).
    /// </summary>
    private void RetryOrExpire<TAddress>(Dictionary<(int Port, TAddress Ip), Pending> table, long now,
        Action<TAddress, Pending, long> resolve, Action<SimFrame, long> unreachable) where TAddress : notnull
    {
        if (table.Count == 0) return;
        List<(int, TAddress)>? expired = null;
        foreach (var (key, pending) in table)
        {
            if (pending.NextTry > now) continue;
            if (pending.Attempts < ArpAttempts) { resolve(key.Ip, pending, now); continue; }
            (expired ??= []).Add(key);
        }
        if (expired is null) return;
        foreach (var key in expired)
        {
            table.Remove(key, out var pending);
            while (pending!.Frames.TryDequeue(out var f))
            {
                Counters.HostUnreachable++;
                unreachable(f, now);
                Network.Pool.Return(f);
            }
        }
    }

    /// <summary>RFC 1812 §4.3.3.1: no answer from the next hop is Host Unreachable for each packet waiting on it.</summary>
    private void HostUnreachable4(SimFrame f, long now)
    {
        if (Ipv4Packet.TryParse(f.Data.AsSpan(14, f.Length - 14), out var ip, out _))
            SendIcmpError(null, ip, IcmpRepr.Unreachable(UnreachableCode.Host, Quote(ip)), now);
    }

    private protected override void OnCrash()
    {
        _neighbors.Clear();
        foreach (var pending in _pending.Values)
            while (pending.Frames.TryDequeue(out var f)) Network.Pool.Return(f);
        _pending.Clear();
        Crash6();
    }
}
