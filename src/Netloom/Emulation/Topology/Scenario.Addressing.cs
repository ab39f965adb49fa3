using Netloom.Wire;

namespace Netloom.Emulation.Topology;

public sealed partial class Scenario
{
    /// <summary>One end of a link at a host, router or linux node (switch ends are not addressed).</summary>
    private sealed record End(LinkSpec Link, bool IsA, NodeSpec Node)
    {
        public Cidr? Written => Node.Kind is NodeKind.Host or NodeKind.Linux or NodeKind.Process ? Node.Ip : IsA ? Link.IpA : Link.IpB;
        public SourceLocation At => IsA ? Link.AAt : Link.BAt;
    }

    /// <summary>An L2 segment: the link ends that see each other's broadcasts (joined through switches).</summary>
    private sealed class Segment
    {
        public readonly List<End> Ends = [];
        public Cidr Subnet;
        public readonly Dictionary<End, Ipv4Address> Address = [];
    }

    private readonly List<Segment> _segments = [];
    private readonly Dictionary<(string Link, bool IsA), (Segment Segment, Ipv4Address Address)> _endAddress = [];
    private readonly Dictionary<string, Cidr> _hostAddress = [];
    private readonly Dictionary<string, Ipv4Address?> _hostGateway = [];
    /// <summary>Each addressed node's first address (a router's on the first segment it is on): where apps aimed at it go.</summary>
    private readonly Dictionary<string, Ipv4Address> _firstAddress = [];

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
    }

    /// <summary>
    /// Adds to each router with automatic routes a route to every subnet it does not touch, by the
    /// fewest router hops (breadth-first; ties go to the link written first).
    /// </summary>
    private void AddShortestPathRoutes(Network net)
    {
        // Which segment each router port is on, and each router's address there.
        var portsOf = new Dictionary<string, List<(int Port, Segment Seg, Ipv4Address Addr)>>();
        foreach (var r in Spec.Nodes.Where(n => n.Kind == NodeKind.Router))
        {
            var ports = new List<(int, Segment, Ipv4Address)>();
            var router = net.Router(r.Name);
            foreach (var p in router.Ports)
            {
                var l = p.Link!;
                var key = (l.Name, l.A == p);
                var (seg, addr) = _endAddress[key];
                ports.Add((p.Index, seg, addr));
            }
            portsOf[r.Name] = ports;
        }
        foreach (var spec in Spec.Nodes.Where(n => n.Kind == NodeKind.Router && n.AutoRoutes))
        {
            var router = net.Router(spec.Name);
            var have = new HashSet<(uint, int)>(spec.Routes.Select(r => (r.Prefix.Network.Value, r.Prefix.PrefixLength)));
            var reached = new HashSet<Segment>(portsOf[spec.Name].Select(p => p.Seg));
            var visited = new HashSet<string> { spec.Name };
            var queue = new Queue<(string Router, int Port, Ipv4Address Via)>();
            foreach (var (port, seg, _) in portsOf[spec.Name])
                foreach (var (other, via) in RoutersOn(seg, portsOf))
                    if (visited.Add(other)) queue.Enqueue((other, port, via));
            while (queue.TryDequeue(out var item))
            {
                foreach (var (_, seg, _) in portsOf[item.Router])
                {
                    if (reached.Add(seg) && have.Add((seg.Subnet.Network.Value, seg.Subnet.PrefixLength)))
                        router.AddRoute(new Route(seg.Subnet.Network, seg.Subnet.PrefixLength, item.Port, item.Via));
                    foreach (var (other, _) in RoutersOn(seg, portsOf))
                        if (visited.Add(other)) queue.Enqueue((other, item.Port, item.Via));
                }
            }
        }
    }

    private static IEnumerable<(string Router, Ipv4Address Address)> RoutersOn(Segment seg, Dictionary<string, List<(int Port, Segment Seg, Ipv4Address Addr)>> portsOf)
    {
        foreach (var (r, ports) in portsOf)
            foreach (var p in ports)
                if (p.Seg == seg) yield return (r, p.Addr);
    }
}
