using Netloom.Wire;

namespace Netloom.Emulation.Topology;

public sealed partial class Scenario
{
    /// <summary>One end of a link at a host, router or linux node (switch ends are not addressed).</summary>
    private sealed record End(LinkSpec Link, bool IsA, NodeSpec Node)
    {
        public Cidr? Written => Node.Kind is NodeKind.Host or NodeKind.Linux or NodeKind.Process ? Node.Ip : IsA ? Link.IpA : Link.IpB;
        public Prefix6? Written6 => Node.Kind is NodeKind.Host or NodeKind.Linux or NodeKind.Process ? Node.Ip6 : IsA ? Link.Ip6A : Link.Ip6B;
        public SourceLocation At => IsA ? Link.AAt : Link.BAt;
    }

    /// <summary>An L2 segment: the link ends that see each other's broadcasts (joined through switches).</summary>
    private sealed class Segment
    {
        public readonly List<End> Ends = [];
        public Cidr Subnet;
        public readonly Dictionary<End, Ipv4Address> Address = [];
        public Prefix6 Subnet6;
        public readonly Dictionary<End, Ipv6Address> Address6 = [];
    }

    private readonly List<Segment> _segments = [];
    private readonly Dictionary<(string Link, bool IsA), (Segment Segment, Ipv4Address Address)> _endAddress = [];
    private readonly Dictionary<string, Cidr> _hostAddress = [];
    private readonly Dictionary<string, Ipv4Address?> _hostGateway = [];
    /// <summary>Each addressed node's first address (a router's on the first segment it is on): where apps aimed at it go.</summary>
    private readonly Dictionary<string, Ipv4Address> _firstAddress = [];
    // The same for IPv6, when the topology speaks it.
    private readonly Dictionary<(string Link, bool IsA), Prefix6> _endAddress6 = [];
    private readonly Dictionary<string, Prefix6> _hostAddress6 = [];
    private readonly Dictionary<string, Ipv6Address?> _hostGateway6 = [];
    private readonly Dictionary<string, Ipv6Address> _firstAddress6 = [];

    /// <summary>
    /// Groups link ends into L2 segments and gives every end an address: the one written in the
    /// file, or the next free one in its segment's subnet (written, or 10.0.N.0/24 in order).
    /// </summary>
    private void AssignAddresses(List<TopologyError> errors)
    {
        var nodes = Spec.Nodes.ToDictionary(n => n.Name);
        // Union-find over links: a switch joins all its links into one segment.
        var parent = Enumerable.Range(0, Spec.Links.Count).ToArray();
        int Find(int i) => parent[i] == i ? i : parent[i] = Find(parent[i]);
        foreach (var sw in Spec.Nodes.Where(n => n.Kind == NodeKind.Switch))
        {
            int first = -1;
            for (int i = 0; i < Spec.Links.Count; i++)
            {
                if (Spec.Links[i].A != sw.Name && Spec.Links[i].B != sw.Name) continue;
                if (first < 0) first = i;
                else parent[Find(i)] = Find(first);
            }
        }
        var byRoot = new Dictionary<int, Segment>();
        for (int i = 0; i < Spec.Links.Count; i++)
        {
            var l = Spec.Links[i];
            if (!byRoot.TryGetValue(Find(i), out var seg)) { seg = new Segment(); byRoot[Find(i)] = seg; _segments.Add(seg); }
            if (nodes[l.A].Kind != NodeKind.Switch) seg.Ends.Add(new End(l, true, nodes[l.A]));
            if (nodes[l.B].Kind != NodeKind.Switch) seg.Ends.Add(new End(l, false, nodes[l.B]));
        }
        foreach (var n in Spec.Nodes.Where(n => n.Kind is NodeKind.Host or NodeKind.Linux or NodeKind.Process))
        {
            int links = Spec.Links.Count(l => l.A == n.Name || l.B == n.Name);
            if (links == 0) errors.Add(new(Spec.File, n.At, $"{n.Kind.ToString().ToLowerInvariant()} '{n.Name}' has no link"));
            if (links > 1) errors.Add(new(Spec.File, n.At, $"{n.Kind.ToString().ToLowerInvariant()} '{n.Name}' has {links} links; a host has one interface (join them with a switch, or route with a router)"));
        }
        var written = _segments.SelectMany(s => s.Ends).Select(e => e.Written).OfType<Cidr>().ToList();
        int nextNet = 1;
        foreach (var seg in _segments)
        {
            var first = seg.Ends.FirstOrDefault(e => e.Written is not null);
            if (first is not null) seg.Subnet = first.Written!.Value;
            else
            {
                // 10.0.N.0/24, skipping subnets written in the file.
                Cidr c;
                do c = new Cidr(new Ipv4Address(10, 0, (byte)(nextNet % 256), 0), 24);
                while (nextNet++ < 256 && written.Exists(w => w.Contains(c.Address) || c.Contains(w.Address)));
                if (nextNet > 256) { errors.Add(new(Spec.File, new(1, 1), "more than 255 automatically addressed segments; write the addresses of some")); return; }
                seg.Subnet = c;
            }
            var used = new HashSet<uint>();
            foreach (var e in seg.Ends)
            {
                if (e.Written is not { } w) continue;
                if (w.PrefixLength != seg.Subnet.PrefixLength || !seg.Subnet.Contains(w.Address))
                    errors.Add(new(Spec.File, e.Node.Kind == NodeKind.Router ? e.At : e.Node.At, $"{e.Node.Name}: {w} is not in {seg.Subnet.Network}/{seg.Subnet.PrefixLength}, the subnet of the segment it is on"));
                else if (!used.Add(w.Address.Value))
                    errors.Add(new(Spec.File, e.At, $"{e.Node.Name}: address {w.Address} is already used on its segment"));
                seg.Address[e] = w.Address;
            }
            uint host = 1, size = seg.Subnet.PrefixLength >= 31 ? 2u : (1u << (32 - seg.Subnet.PrefixLength)) - 2;
            foreach (var e in seg.Ends)
            {
                if (seg.Address.ContainsKey(e)) continue;
                while (host <= size && used.Contains(seg.Subnet.Network.Value + host)) host++;
                if (host > size) { errors.Add(new(Spec.File, e.At, $"segment {seg.Subnet} has no free address left for {e.Node.Name}")); break; }
                var a = new Ipv4Address(seg.Subnet.Network.Value + host);
                used.Add(a.Value);
                seg.Address[e] = a;
            }
            foreach (var (e, a) in seg.Address)
            {
                _endAddress[(e.Link.Name, e.IsA)] = (seg, a);
                _firstAddress.TryAdd(e.Node.Name, a);
                if (e.Node.Kind is NodeKind.Host or NodeKind.Linux or NodeKind.Process)
                {
                    _hostAddress[e.Node.Name] = new Cidr(a, seg.Subnet.PrefixLength);
                    var router = seg.Ends.FirstOrDefault(x => x.Node.Kind == NodeKind.Router);
                    _hostGateway[e.Node.Name] = e.Node.Gateway ?? (router is null ? null : seg.Address.GetValueOrDefault(router));
                }
            }
        }
        if (Spec.Ipv6) AssignAddresses6(errors);
    }

    /// <summary>
    /// IPv6 for every segment: the /64 written on one of its ends, or fd00:0:0:N::/64 with N the
    /// segment's number (as 10.0.N.0/24 for IPv4). Ends get what is written, or the next free
    /// interface identifier from ::1, so host H of a segment is ::H in both families when nothing
    /// is written. Hosts' default router is the first router on their segment.
    /// </summary>
    private void AssignAddresses6(List<TopologyError> errors)
    {
        var written = _segments.SelectMany(s => s.Ends).Select(e => e.Written6).OfType<Prefix6>().ToList();
        ulong nextNet = 1;
        foreach (var seg in _segments)
        {
            var first = seg.Ends.FirstOrDefault(e => e.Written6 is not null);
            if (first is not null) seg.Subnet6 = first.Written6!.Value;
            else
            {
                Prefix6 c;
                do c = new Prefix6(new Ipv6Address(0xFD00_0000_0000_0000UL | nextNet++, 0), 64);
                while (written.Exists(w => w.Contains(c.Address) || c.Contains(w.Address)));
                seg.Subnet6 = c;
            }
            var used = new HashSet<Ipv6Address>();
            foreach (var e in seg.Ends)
            {
                if (e.Written6 is not { } w) continue;
                if (w.PrefixLength != seg.Subnet6.PrefixLength || !seg.Subnet6.Contains(w.Address))
                    errors.Add(new(Spec.File, e.Node.Kind == NodeKind.Router ? e.At : e.Node.At, $"{e.Node.Name}: {w} is not in {seg.Subnet6.Network}/{seg.Subnet6.PrefixLength}, the IPv6 subnet of the segment it is on"));
                else if (!used.Add(w.Address))
                    errors.Add(new(Spec.File, e.At, $"{e.Node.Name}: address {w.Address} is already used on its segment"));
                seg.Address6[e] = w.Address;
            }
            var net = seg.Subnet6.Network.Value;
            UInt128 hostBits = seg.Subnet6.PrefixLength >= 128 ? UInt128.Zero : UInt128.MaxValue >> seg.Subnet6.PrefixLength;
            UInt128 host = 1;
            foreach (var e in seg.Ends)
            {
                if (seg.Address6.ContainsKey(e)) continue;
                while (host <= hostBits && used.Contains(new Ipv6Address(net + host))) host++;
                if (host > hostBits) { errors.Add(new(Spec.File, e.At, $"IPv6 segment {seg.Subnet6} has no free address left for {e.Node.Name}")); break; }
                var a = new Ipv6Address(net + host);
                used.Add(a);
                seg.Address6[e] = a;
            }
            foreach (var (e, a) in seg.Address6)
            {
                _endAddress6[(e.Link.Name, e.IsA)] = new Prefix6(a, seg.Subnet6.PrefixLength);
                _firstAddress6.TryAdd(e.Node.Name, a);
                if (e.Node.Kind is NodeKind.Host or NodeKind.Linux or NodeKind.Process)
                {
                    _hostAddress6[e.Node.Name] = new Prefix6(a, seg.Subnet6.PrefixLength);
                    var router = seg.Ends.FirstOrDefault(x => x.Node.Kind == NodeKind.Router);
                    _hostGateway6[e.Node.Name] = e.Node.Gateway6 ?? (router is null ? null : seg.Address6.GetValueOrDefault(router));
                }
            }
        }
    }

    /// <summary>
    /// Adds to each router with automatic routes a route to every subnet it does not touch, by the
    /// fewest router hops (breadth-first; ties go to the link written first).
    /// </summary>
    private void AddShortestPathRoutes(Network net)
    {
        // Which segment each router port is on, and each router's addresses there.
        var portsOf = new Dictionary<string, List<RouterEnd>>();
        foreach (var r in Spec.Nodes.Where(n => n.Kind == NodeKind.Router))
        {
            var ports = new List<RouterEnd>();
            var router = net.Router(r.Name);
            foreach (var p in router.Ports)
            {
                var l = p.Link!;
                var key = (l.Name, l.A == p);
                var (seg, addr) = _endAddress[key];
                ports.Add(new RouterEnd(p.Index, seg, addr, _endAddress6.TryGetValue(key, out var a6) ? a6.Address : null));
            }
            portsOf[r.Name] = ports;
        }
        foreach (var spec in Spec.Nodes.Where(n => n.Kind == NodeKind.Router && n.AutoRoutes))
        {
            var router = net.Router(spec.Name);
            var have = new HashSet<(uint, int)>(spec.Routes.Select(r => (r.Prefix.Network.Value, r.Prefix.PrefixLength)));
            var have6 = new HashSet<(Ipv6Address, int)>(spec.Routes6.Select(r => (r.Prefix.Network, r.Prefix.PrefixLength)));
            var reached = new HashSet<Segment>(portsOf[spec.Name].Select(p => p.Seg));
            var visited = new HashSet<string> { spec.Name };
            // Each router reached, with the port and first-hop router (its end on our segment) that lead to it.
            var queue = new Queue<(string Router, int Port, RouterEnd Via)>();
            foreach (var mine in portsOf[spec.Name])
                foreach (var (other, via) in RoutersOn(mine.Seg, portsOf))
                    if (visited.Add(other)) queue.Enqueue((other, mine.Port, via));
            while (queue.TryDequeue(out var item))
            {
                foreach (var end in portsOf[item.Router])
                {
                    var seg = end.Seg;
                    if (!reached.Add(seg)) continue;
                    if (have.Add((seg.Subnet.Network.Value, seg.Subnet.PrefixLength)))
                        router.AddRoute(new Route(seg.Subnet.Network, seg.Subnet.PrefixLength, item.Port, item.Via.Addr));
                    if (Spec.Ipv6 && item.Via.Addr6 is { } via6 && have6.Add((seg.Subnet6.Network, seg.Subnet6.PrefixLength)))
                        router.AddRoute6(new Route6(new Prefix6(seg.Subnet6.Network, seg.Subnet6.PrefixLength), item.Port, via6));
                    foreach (var (other, _) in RoutersOn(seg, portsOf))
                        if (visited.Add(other)) queue.Enqueue((other, item.Port, item.Via));
                }
            }
        }
    }

    /// <summary>A router's port: the segment it is on and the router's addresses there.</summary>
    private sealed record RouterEnd(int Port, Segment Seg, Ipv4Address Addr, Ipv6Address? Addr6);

    private static IEnumerable<(string Router, RouterEnd End)> RoutersOn(Segment seg, Dictionary<string, List<RouterEnd>> portsOf)
    {
        foreach (var (r, ports) in portsOf)
            foreach (var p in ports)
                if (p.Seg == seg) yield return (r, p);
    }
}
