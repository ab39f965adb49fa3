using System.Buffers.Binary;
using Netloom.Wire;

namespace Netloom.Emulation;

/// <summary>An IPv6 prefix, or an address with its prefix length, as written "fd00:0:0:1::5/64".</summary>
internal readonly record struct Prefix6(Ipv6Address Address, int PrefixLength)
{
    public Ipv6Address Network => Address.Prefix(PrefixLength);
    public bool Contains(Ipv6Address a) => a.SameSubnet(Address, PrefixLength);

    public static bool TryParse(string text, out Prefix6 prefix)
    {
        prefix = default;
        var parts = text.Trim().Split('/');
        if (parts.Length != 2 || !Ipv6Address.TryParse(parts[0], out var a) || !int.TryParse(parts[1], out int p) || p is < 0 or > 128) return false;
        prefix = new Prefix6(a, p);
        return true;
    }

    public override string ToString() => $"{Address}/{PrefixLength}";
}

/// <summary>An IPv6 route: packets to <see cref="Prefix"/> leave through <see cref="Port"/>, to <see cref="Via"/> or (when null) straight to their destination.</summary>
internal readonly record struct Route6(Prefix6 Prefix, int Port, Ipv6Address? Via)
{
    public override string ToString() => $"{Prefix.Network}/{Prefix.PrefixLength} port {Port}" + (Via is { } v ? $" via {v}" : "");
}

/// <summary>
/// The router's IPv6 half (RFC 8200, RFC 4861, RFC 4443): ports with an IPv6 address also have a
/// link-local one from their MAC; packets are forwarded by the longest matching IPv6 route with the
/// hop limit decremented (no header checksum in IPv6), next hops are found with neighbour
/// solicitations, and the router answers solicitations and pings for its own addresses. Errors go
/// back as ICMPv6 (hop limit exceeded, no route, address unreachable, packet too big: routers never
/// fragment IPv6, beyond scope for link-local sources), at most <see cref="Icmpv6ErrorsPerSecond"/>
/// a second (RFC 4443 §2.4 f).
/// </summary>
public sealed partial class RouterNode
{
    private const int Icmpv6ErrorsPerSecond = 100;
    private const int MaxPending6 = 1024;
    private const int EthernetLength = 14;
    private const int Ipv6Start = EthernetLength, Icmpv6Start = Ipv6Start + Ipv6Field.HeaderLength;
    /// <summary>An error quotes as much of the packet as keeps it within the IPv6 minimum MTU (RFC 4443 §2.4 c).</summary>
    private const int MaxQuote = Ipv6Field.MinimumMtu - Ipv6Field.HeaderLength - Icmpv6Field.HeaderLength;

    /// <summary>Each IPv6 port's global address, and its link-local one (from the port's MAC, made once here rather than per packet).</summary>
    private readonly Dictionary<int, (Prefix6 Global, Ipv6Address LinkLocal)> _addresses6 = [];
    private readonly List<Route6> _static6 = [];
    private Route6[] _table6 = [];
    private readonly Dictionary<(int Port, Ipv6Address Ip), MacAddress> _neighbors6 = [];
    private readonly Dictionary<(int Port, Ipv6Address Ip), Pending> _pending6 = [];
    private long _errorTokens = Icmpv6ErrorsPerSecond, _errorRefill;

    /// <summary>The IPv6 routing table: connected prefixes and static routes, longest prefix first.</summary>
    internal IReadOnlyList<Route6> Routes6
    {
        get
        {
            if (_table6.Length == 0) BuildTable6();
            return _table6;
        }
    }

    /// <summary>The global IPv6 address of a port, if it has one.</summary>
    internal Prefix6? Address6Of(int port) => _addresses6.TryGetValue(port, out var a) ? a.Global : null;

    /// <summary>The link-local address of a port that speaks IPv6.</summary>
    internal Ipv6Address LinkLocalOf(int port) => _addresses6.TryGetValue(port, out var a) ? a.LinkLocal : Ipv6Address.LinkLocalFromMac(Ports[port].Mac);

    internal void SetAddress6(int port, Prefix6 address)
    {
        _addresses6[port] = (address, Ipv6Address.LinkLocalFromMac(Ports[port].Mac));
        _table6 = [];
    }

    internal void AddRoute6(Route6 route)
    {
        if (route.Port < 0 || route.Port >= Ports.Count) throw new ArgumentException($"router {Name}: route {route} names port {route.Port}, which does not exist");
        _static6.Add(route);
        _table6 = [];
    }

    private void BuildTable6()
    {
        var all = new List<Route6>(_static6);
        foreach (var (port, (a, _)) in _addresses6.OrderBy(x => x.Key))
            all.Add(new Route6(new Prefix6(a.Network, a.PrefixLength), port, null));
        _table6 = all.Select((r, i) => (r, i)).OrderByDescending(x => x.r.Prefix.PrefixLength).ThenBy(x => x.i).Select(x => x.r).ToArray();
    }

    private bool TryRoute6(Ipv6Address destination, out Route6 route)
    {
        if (_table6.Length == 0) BuildTable6();
        foreach (var r in _table6)
            if (r.Prefix.Contains(destination)) { route = r; return true; }
        route = default;
        return false;
    }

    /// <summary>Whether <paramref name="a"/> is this router's on <paramref name="port"/> (its global or link-local address there).</summary>
    private bool IsOwnOn(int port, Ipv6Address a) =>
        _addresses6.TryGetValue(port, out var x) && (x.Global.Address == a || x.LinkLocal == a);

    private bool IsOwnAddress6(Ipv6Address a)
    {
        foreach (var (g, linkLocal) in _addresses6.Values)
            if (g.Address == a || linkLocal == a) return true;
        return false;
    }

    /// <summary>Takes an IPv6 frame (and its ownership) from <paramref name="port"/>.</summary>
    private void ReceiveIpv6(NodePort port, SimFrame frame, ReadOnlySpan<byte> payload, long now)
    {
        if (!_addresses6.TryGetValue(port.Index, out var own)) { Counters.NotForUs++; Network.Pool.Return(frame); return; }
        if (!Ipv6Packet.TryParse(payload, out var ip, out _)) { Counters.Malformed++; Network.Pool.Return(frame); return; }
        var dst = ip.Destination;
        if (dst.IsMulticast)
        {
            // Link-scope groups the router belongs to: all-nodes, all-routers, its solicited-node groups.
            if (dst == Ipv6Address.AllNodes || dst == Ipv6Address.AllRouters
                || dst == own.Global.Address.SolicitedNode || dst == own.LinkLocal.SolicitedNode)
            {
                Counters.Local++;
                ReceiveLocal6(port, ip, frame, now);
            }
            else Counters.NotForUs++; // no multicast routing
            Network.Pool.Return(frame);
            return;
        }
        if (IsOwnAddress6(dst))
        {
            Counters.Local++;
            ReceiveLocal6(port, ip, frame, now);
            Network.Pool.Return(frame);
            return;
        }
        Forward6(port, frame, ip, now);
    }

    /// <summary>Forwards a valid IPv6 frame (RFC 8200 §3, RFC 4443 §3): scope, access list, hop limit, route, MTU, then out.</summary>
    private void Forward6(NodePort inPort, SimFrame frame, in Ipv6Packet ip, long now)
    {
        if (ip.Source.IsUnspecified || ip.Source.IsMulticast || ip.Destination.IsLinkLocal)
        {
            Counters.NotForUs++; // never forwarded (RFC 4291 §2.5.6, RFC 4861 §7.1)
            Network.Pool.Return(frame);
            return;
        }
        if (_acl.Length != 0 && !Permitted6(ip))
        {
            Counters.AccessDenied++;
            Network.Pool.Return(frame);
            return;
        }
        if (ip.HopLimit <= 1)
        {
            Counters.TtlExceeded++;
            SendIcmpv6Error(inPort, ip, Icmpv6Repr.TimeExceeded(0, 0), now);
            Network.Pool.Return(frame);
            return;
        }
        if (!TryRoute6(ip.Destination, out var route))
        {
            Counters.NoRoute++;
            SendIcmpv6Error(inPort, ip, Icmpv6Repr.Unreachable(Icmpv6UnreachableCode.NoRoute, 0), now);
            Network.Pool.Return(frame);
            return;
        }
        if (ip.Source.IsLinkLocal)
        {
            // A link-local source cannot leave its link (RFC 4443 §3.1 code 2).
            Counters.NoRoute++;
            SendIcmpv6Error(inPort, ip, Icmpv6Repr.Unreachable(Icmpv6UnreachableCode.BeyondScope, 0), now);
            Network.Pool.Return(frame);
            return;
        }
        int mtu = _mtus[route.Port];
        if (ip.Bytes.Length > mtu)
        {
            // IPv6 routers never fragment: the source learns the path MTU from this (RFC 8201).
            Counters.FragmentationNeeded++;
            SendIcmpv6Error(inPort, ip, Icmpv6Repr.PacketTooBig((uint)mtu, 0), now);
            Network.Pool.Return(frame);
            return;
        }
        frame.Data[Ipv6Start + Ipv6Field.HopLimit]--;
        Counters.Forwarded++;
        SendTo6(route.Port, route.Via ?? ip.Destination, frame, now);
    }

    /// <summary>The access list for an IPv6 packet: rules that name IPv4 prefixes never match it; "icmp" means ICMPv6.</summary>
    private bool Permitted6(in Ipv6Packet ip)
    {
        byte upper = ip.NextHeader;
        ReadOnlySpan<byte> transport = ip.Payload;
        bool laterFragment = false;
        if (Ipv6Extensions.IsExtension(upper))
        {
            if (!ip.TryReadExtensions(out var ext, out _)) return false; // a chain it cannot read is not let through
            upper = ext.UpperLayer;
            transport = ip.Payload[ext.UpperLayerOffset..];
            laterFragment = ext.HasFragment && ext.Fragment.FragmentOffset != 0;
        }
        foreach (var r in _acl)
        {
            if (r.Source is not null || r.Destination is not null) continue;
            if (r.Protocol is { } p && p != upper && !(p == (byte)IpProtocol.Icmp && upper == (byte)IpProtocol.Icmpv6)) continue;
            if (r.Port is { } port && (laterFragment || transport.Length < 4 || BinaryPrimitives.ReadUInt16BigEndian(transport[2..]) != port)) continue;
            return r.Accept;
        }
        return true;
    }

    /// <summary>Puts the next hop's MAC on the frame and sends it, or holds it while a neighbour solicitation asks.</summary>
    private void SendTo6(int port, Ipv6Address nextHop, SimFrame frame, long now)
    {
        var p = Ports[port];
        if (_neighbors6.TryGetValue((port, nextHop), out var mac))
        {
            mac.Write(frame.Data);
            p.Mac.Write(frame.Data.AsSpan(6));
            Send(p, frame, now);
            return;
        }
        if (!_pending6.TryGetValue((port, nextHop), out var pending))
        {
            // A /64 has room for any number of next hops: bound those being resolved at once.
            if (_pending6.Count >= MaxPending6) { Counters.PendingDropped++; Network.Pool.Return(frame); return; }
            pending = new Pending { Port = port, NextTry = now };
            _pending6[(port, nextHop)] = pending;
        }
        if (pending.Frames.Count >= PendingPerHop) { Counters.PendingDropped++; Network.Pool.Return(frame); }
        else pending.Frames.Enqueue(frame);
        if (pending.NextTry <= now) Solicit(nextHop, pending, now);
    }

    /// <summary>A neighbour solicitation for <paramref name="target"/> to its solicited-node group (RFC 4861 §7.2.2).</summary>
    private void Solicit(Ipv6Address target, Pending pending, long now)
    {
        var p = Ports[pending.Port];
        var ns = NdpRepr.NeighborSolicitation(target, p.Mac);
        var source = _addresses6.TryGetValue(pending.Port, out var x) && x.Global.Contains(target) ? x.Global.Address : LinkLocalOf(pending.Port);
        if (SendIcmpv6Message(pending.Port, source, target.SolicitedNode, target.SolicitedNode.MulticastMac, 255, ns, now)) Counters.ArpOut++;
        pending.Attempts++;
        pending.NextTry = now + ArpRetryNs;
        RequestWake(pending.NextTry);
    }

    /// <summary>Neighbour discovery and pings addressed to the router.</summary>
    private void ReceiveLocal6(NodePort port, in Ipv6Packet ip, SimFrame frame, long now)
    {
        if (ip.NextHeader != (byte)IpProtocol.Icmpv6)
        {
            // UDP to the router: port unreachable (as traceroute expects); other protocols but TCP: unrecognized next header.
            if (ip.Destination.IsMulticast || Ipv6Extensions.IsExtension(ip.NextHeader) || ip.NextHeader == (byte)IpProtocol.Tcp) return;
            if (ip.NextHeader == (byte)IpProtocol.Udp) SendIcmpv6Error(port, ip, Icmpv6Repr.Unreachable(Icmpv6UnreachableCode.Port, 0), now);
            else SendIcmpv6Error(port, ip, Icmpv6Repr.ParameterProblem(Icmpv6ParameterProblemCode.UnrecognizedNextHeader, Ipv6Field.NextHeader, 0), now);
            return;
        }
        if (!Icmpv6Message.TryParse(ip.Payload, out var icmp, out _) || !icmp.ChecksumValid(ip.Source, ip.Destination)) { Counters.Malformed++; return; }
        switch (icmp.Type)
        {
            case (byte)Icmpv6Type.EchoRequest when !ip.Destination.IsMulticast:
                var reply = Icmpv6Repr.Echo(false, icmp.Identifier, icmp.SequenceNumber, icmp.Data.Length);
                SendIcmpv6(ip.Destination, ip.Source, reply, icmp.Data, now);
                return;
            case (byte)Icmpv6Type.NeighborSolicitation or (byte)Icmpv6Type.NeighborAdvertisement:
                ReceiveNeighborMessage(port, ip, frame, now);
                return;
        }
    }

    /// <summary>RFC 4861 §7.1.1 / §7.1.2 validation, §7.2.3-§7.2.5 processing (the router keeps no states: a neighbour is known or not).</summary>
    private void ReceiveNeighborMessage(NodePort port, in Ipv6Packet ip, SimFrame frame, long now)
    {
        if (ip.HopLimit != 255 || !NdpRepr.TryParse(ip.Payload, out var n, out _) || n.Code != 0 || n.Target.IsMulticast) { Counters.Malformed++; return; }
        Counters.ArpIn++;
        var ethSource = MacAddress.Read(frame.Data.AsSpan(6));
        if (n.Type == (byte)Icmpv6Type.NeighborAdvertisement)
        {
            Learn6(port.Index, n.Target, n.TargetLinkLayer ?? ethSource, now);
            return;
        }
        if (ip.Source.IsUnspecified && (n.SourceLinkLayer is not null || !ip.Destination.IsMulticast)) { Counters.Malformed++; return; }
        if (!IsOwnOn(port.Index, n.Target)) return;
        bool dad = ip.Source.IsUnspecified;
        if (!dad && n.SourceLinkLayer is { } sll) Learn6(port.Index, ip.Source, sll, now);
        var na = NdpRepr.NeighborAdvertisement(n.Target, (byte)(NdpRepr.RouterFlag | NdpRepr.OverrideFlag | (dad ? 0 : NdpRepr.SolicitedFlag)), port.Mac);
        var to = dad ? Ipv6Address.AllNodes : ip.Source;
        var mac = dad ? Ipv6Address.AllNodes.MulticastMac : n.SourceLinkLayer ?? ethSource;
        if (SendIcmpv6Message(port.Index, n.Target, to, mac, 255, na, now)) Counters.ArpOut++;
    }

    private void Learn6(int port, Ipv6Address ip, MacAddress mac, long now)
    {
        if (!mac.IsUnicast || ip.IsUnspecified || ip.IsMulticast) return;
        if (!_neighbors6.ContainsKey((port, ip)) && !_pending6.ContainsKey((port, ip)) && _neighbors6.Count >= 4096) return; // bounded
        _neighbors6[(port, ip)] = mac;
        if (_pending6.Remove((port, ip), out var pending))
            while (pending.Frames.TryDequeue(out var f)) SendTo6(port, ip, f, now);
    }

    /// <summary>
    /// An ICMPv6 error about <paramref name="ip"/> to its source (RFC 4443 §2.4 e): never about an
    /// error message, a packet to a multicast group (Packet Too Big aside), or from an unspecified
    /// or multicast source; rate-limited.
    /// </summary>
    private void SendIcmpv6Error(NodePort? inPort, in Ipv6Packet ip, Icmpv6Repr error, long now)
    {
        if (ip.Source.IsUnspecified || ip.Source.IsMulticast) return;
        if (ip.Destination.IsMulticast && error.Type != (byte)Icmpv6Type.PacketTooBig) return;
        if (ip.NextHeader == (byte)IpProtocol.Icmpv6 && ip.Payload.Length > 0 && ip.Payload[0] < 128) return;
        // A token bucket of one second's worth (the clock's epoch is arbitrary: cap the elapsed time before scaling it).
        long elapsed = Math.Clamp(now - _errorRefill, 0, 1_000_000_000);
        long refill = elapsed * Icmpv6ErrorsPerSecond / 1_000_000_000;
        if (refill > 0) { _errorTokens = Math.Min(Icmpv6ErrorsPerSecond, _errorTokens + refill); _errorRefill = now; }
        if (_errorTokens < 1) { Counters.Icmpv6ErrorsLimited++; return; }
        _errorTokens--;
        // From the address of the port the error leaves by (the one the packet came in on for a link-local source).
        Ipv6Address from;
        if (ip.Source.IsLinkLocal && inPort is not null) from = LinkLocalOf(inPort.Index);
        else if (TryRoute6(ip.Source, out var back) && _addresses6.TryGetValue(back.Port, out var a)) from = a.Global.Address;
        else return;
        var quoted = ip.Bytes[..Math.Min(ip.Bytes.Length, MaxQuote)];
        if (ip.Source.IsLinkLocal && inPort is not null)
        {
            // Straight back on its link, to the MAC it came from.
            if (_neighbors6.TryGetValue((inPort.Index, ip.Source), out var mac))
            {
                error.DataLength = quoted.Length;
                SendIcmpv6Frame(inPort.Index, from, ip.Source, mac, 64, error, quoted, now);
            }
            return;
        }
        SendIcmpv6(from, ip.Source, error, quoted, now);
    }

    /// <summary>An ICMPv6 message of the router's own, routed to <paramref name="destination"/>.</summary>
    private void SendIcmpv6(Ipv6Address source, Ipv6Address destination, Icmpv6Repr icmp, ReadOnlySpan<byte> data, long now)
    {
        if (!TryRoute6(destination, out var route)) return;
        var f = Network.Pool.Rent();
        if (f is null) return;
        icmp.DataLength = data.Length;
        f.Length = BuildIcmpv6(f.Data, Ports[route.Port].Mac, MacAddress.Zero, source, destination, 64, icmp, data);
        SendTo6(route.Port, route.Via ?? destination, f, now);
    }

    private void SendIcmpv6Frame(int port, Ipv6Address source, Ipv6Address destination, MacAddress mac, byte hopLimit, Icmpv6Repr icmp, ReadOnlySpan<byte> data, long now)
    {
        var f = Network.Pool.Rent();
        if (f is null) return;
        f.Length = BuildIcmpv6(f.Data, Ports[port].Mac, mac, source, destination, hopLimit, icmp, data);
        Send(Ports[port], f, now);
    }

    /// <summary>Sends an NDP message on a port to a known MAC (no routing, no resolution).</summary>
    private bool SendIcmpv6Message(int port, Ipv6Address source, Ipv6Address destination, MacAddress mac, byte hopLimit, in NdpRepr message, long now)
    {
        var f = Network.Pool.Rent();
        if (f is null) return false;
        int len = message.Emit(f.Data.AsSpan(Icmpv6Start), source, destination);
        new Ipv6Repr(source, destination, (byte)IpProtocol.Icmpv6, len, hopLimit).Emit(f.Data.AsSpan(Ipv6Start));
        new EthernetRepr(Ports[port].Mac, mac, EtherType.Ipv6).Emit(f.Data);
        f.Length = Icmpv6Start + len;
        Send(Ports[port], f, now);
        return true;
    }

    private static int BuildIcmpv6(byte[] frame, MacAddress from, MacAddress to, Ipv6Address source, Ipv6Address destination, byte hopLimit, in Icmpv6Repr icmp, ReadOnlySpan<byte> data)
    {
        data.CopyTo(frame.AsSpan(Icmpv6Start + Icmpv6Field.HeaderLength));
        icmp.Emit(frame.AsSpan(Icmpv6Start), source, destination);
        new Ipv6Repr(source, destination, (byte)IpProtocol.Icmpv6, icmp.BufferLength, hopLimit).Emit(frame.AsSpan(Ipv6Start));
        new EthernetRepr(from, to, EtherType.Ipv6).Emit(frame);
        return Icmpv6Start + icmp.BufferLength;
    }

    /// <summary>RFC 4443 §3.1 code 3: no neighbour answered for the next hop of a waiting packet.</summary>
    private void AddressUnreachable6(SimFrame f, long now)
    {
        if (Ipv6Packet.TryParse(f.Data.AsSpan(Ipv6Start, f.Length - Ipv6Start), out var ip, out _))
            SendIcmpv6Error(null, ip, Icmpv6Repr.Unreachable(Icmpv6UnreachableCode.Address, 0), now);
    }

    private void Crash6()
    {
        _neighbors6.Clear();
        foreach (var pending in _pending6.Values)
            while (pending.Frames.TryDequeue(out var f)) Network.Pool.Return(f);
        _pending6.Clear();
    }
}
