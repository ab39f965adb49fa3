using Netloom.Emulation.Apps;
using Netloom.Netem;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;
using Netloom.Wire.Capture;

namespace Netloom.Emulation.Topology;

/// <summary>
/// A topology file made real: the <see cref="Network"/> with its nodes, addresses, routes, apps and
/// scheduled events, ready to run for the file's duration. Clients aimed at an emulated host get
/// the server they need there (a sink for bulk, an rr server, a UDP sink) unless the file starts
/// one on that port itself.
/// </summary>
public sealed partial class Scenario
{
    private Scenario(TopologySpec spec, bool realTime)
    {
        Spec = spec;
        RealTime = realTime;
    }

    /// <summary>Runs on the wall clock (needed for linux nodes) instead of virtual time.</summary>
    public bool RealTime { get; }

    internal TopologySpec Spec { get; }
    public Network Network { get; private set; } = null!;
    public Duration Duration => Spec.Duration;
    /// <summary>The apps the file asked for, in order (not the servers added for them).</summary>
    internal IReadOnlyList<App> Apps => _apps;
    private readonly List<App> _apps = [];

    /// <summary>Reads and builds a topology file; <paramref name="seed"/> overrides the file's.</summary>
    public static Scenario Load(string path, int? seed = null, bool realTime = false) => Build(TopologyParser.ParseFile(path), seed, realTime);

    internal static Scenario Build(TopologySpec spec, int? seed = null, bool realTime = false)
    {
        if (seed is { } s) spec = spec with { Seed = s };
        var sc = new Scenario(spec, realTime);
        var errors = new List<TopologyError>();
        sc.AssignAddresses(errors);
        if (errors.Count > 0) throw new TopologyException(errors);
        sc.Construct(errors);
        if (errors.Count > 0)
        {
            sc.Network?.Dispose();
            throw new TopologyException(errors);
        }
        return sc;
    }

    private void Construct(List<TopologyError> errors)
    {
        int maxMtu = Math.Max(1500, Spec.Nodes.Select(n => n.Mtu).Concat(Spec.Links.Select(l => l.Mtu)).DefaultIfEmpty(1500).Max());
        if (Spec.Nodes.Exists(n => n.Kind == NodeKind.Linux))
        {
            var at = Spec.Nodes.First(n => n.Kind == NodeKind.Linux).At;
            if (!RealTime) { errors.Add(new(Spec.File, at, "linux nodes run the real kernel, which needs real time: run with --realtime")); return; }
            if (!Environment.IsPrivilegedProcess) { errors.Add(new(Spec.File, at, "linux nodes create network namespaces, which needs root")); return; }
        }
        if (Spec.Nodes.Find(n => n.Kind == NodeKind.Process) is { } process)
        {
            if (!RealTime) { errors.Add(new(Spec.File, process.At, "process nodes run real programs, which needs real time: run with --realtime")); return; }
            if (ProcessNode.Launcher is null) { errors.Add(new(Spec.File, process.At, "process nodes run their programs under `netloom run`: use the netloom CLI (netloom emulate)")); return; }
        }
        var net = Network = new Network(new NetworkOptions { Seed = Spec.Seed, MaxMtu = maxMtu });
        foreach (var n in Spec.Nodes)
        {
            switch (n.Kind)
            {
                case NodeKind.Host:
                    var ip = _hostAddress[n.Name];
                    net.AddHost(n.Name, ip.Address, ip.PrefixLength, _hostGateway.GetValueOrDefault(n.Name), n.Mtu, Ipv6Options(n.Name));
                    break;
                case NodeKind.Switch: net.AddSwitch(n.Name); break;
                case NodeKind.Router: net.AddRouter(n.Name); break;
                case NodeKind.Linux: AddLinux(n); break;
                case NodeKind.Process: AddProcess(n); break;
            }
        }
        foreach (var l in Spec.Links)
        {
            RouterAddress? Addr(bool isA) =>
                _endAddress.TryGetValue((l.Name, isA), out var x) ? new RouterAddress(x.Address, x.Segment.Subnet.PrefixLength) : null;
            var link = net.Connect(net[l.A], net[l.B], l.AtoB, l.BtoA, l.Name, Addr(true), Addr(false), l.Mtu);
            foreach (var (port, isA) in new[] { (link.A, true), (link.B, false) })
                if (port.Node is RouterNode rn && _endAddress6.TryGetValue((l.Name, isA), out var a6)) rn.SetAddress6(port.Index, a6);
        }
        foreach (var r in Spec.Nodes.Where(n => n.Kind == NodeKind.Router))
        {
            var router = net.Router(r.Name);
            foreach (var rule in r.Acl) router.AddAccessRule(rule);
            foreach (var route in r.Routes)
            {
                int port = -1;
                for (int i = 0; i < router.Ports.Count && port < 0; i++)
                    if (router.AddressOf(i) is { } a && a.Contains(route.Via)) port = i;
                if (port < 0) { errors.Add(new(Spec.File, route.At, $"router {r.Name}: next hop {route.Via} is on none of its subnets")); continue; }
                router.AddRoute(new Route(route.Prefix.Network, route.Prefix.PrefixLength, port, route.Via));
            }
            foreach (var route in r.Routes6)
            {
                int port = -1;
                for (int i = 0; i < router.Ports.Count && port < 0; i++)
                    if (router.Address6Of(i) is { } a && a.Contains(route.Via)) port = i;
                if (port < 0) { errors.Add(new(Spec.File, route.At, $"router {r.Name}: next hop {route.Via} is on none of its IPv6 subnets")); continue; }
                router.AddRoute6(new Route6(new Prefix6(route.Prefix.Network, route.Prefix.PrefixLength), port, route.Via));
            }
        }
        AddShortestPathRoutes(net);
        foreach (var a in Spec.Apps) AddApp(a, errors);
        foreach (var e in Spec.Events) AddEvent(e);
    }

    /// <summary>A host's IPv6 settings when the topology speaks IPv6: its static address and default router; DAD off, as the file's addresses are checked unique.</summary>
    private Func<StackOptions, StackOptions>? Ipv6Options(string node) =>
        _hostAddress6.TryGetValue(node, out var a6)
            ? HostNode.StaticIpv6(a6, _hostGateway6.GetValueOrDefault(node))
            : null;

    private void AddLinux(NodeSpec n)
    {
        var ip = _hostAddress[n.Name];
        var node = Network.AddLinux(n.Name, ip.Address, ip.PrefixLength, _hostGateway.GetValueOrDefault(n.Name), n.Mtu);
        if (_hostAddress6.TryGetValue(n.Name, out var a6)) node.AddIpv6(a6, _hostGateway6.GetValueOrDefault(n.Name));
    }

    private void AddProcess(NodeSpec n)
    {
        var ip = _hostAddress[n.Name];
        var argv = new string[n.Run.Length];
        for (int i = 0; i < argv.Length; i++)
            // Only node names are replaced: other braces (curl's -w '%{http_code}') stay as written.
            argv[i] = NodeReference().Replace(n.Run[i], m =>
                m.Groups[2].Success
                    ? _firstAddress6.TryGetValue(m.Groups[1].Value, out var a6) ? a6.ToString() : m.Value
                    : _firstAddress.TryGetValue(m.Groups[1].Value, out var a) ? a.ToString() : m.Value);
        string? folder = File.Exists(Spec.File) ? Path.GetDirectoryName(Path.GetFullPath(Spec.File)) : null;
        var node = Network.AddProcess(n.Name, argv, ip.Address, ip.PrefixLength, _hostGateway.GetValueOrDefault(n.Name), n.Mtu, n.Start.Nanoseconds, folder);
        if (_hostAddress6.TryGetValue(n.Name, out var p6)) node.SetIpv6(p6, _hostGateway6.GetValueOrDefault(n.Name));
    }

    /// <summary>"{NODE}" is a node's IPv4 address, "{NODE:ip6}" its IPv6 one.</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"\{([A-Za-z][A-Za-z0-9_.-]*)(:ip6)?\}")]
    private static partial System.Text.RegularExpressions.Regex NodeReference();

    /// <summary>Where an app aimed at <paramref name="to"/> (an address, or a node at its first address of the family asked) sends.</summary>
    private IpAddr Resolve(string to, bool ipv6, out string? error)
    {
        error = null;
        if (Ipv4Address.TryParse(to, out var a)) return IpAddr.FromIpv4(a);
        if (Ipv6Address.TryParse(to, out var a6)) return IpAddr.FromIpv6(a6);
        if (!ipv6) return IpAddr.FromIpv4(_firstAddress[to]);
        if (_firstAddress6.TryGetValue(to, out a6)) return IpAddr.FromIpv6(a6);
        error = $"'{to}' has no IPv6 address";
        return default;
    }

    private static bool IsAddress(string to) => Ipv4Address.TryParse(to, out _) || Ipv6Address.TryParse(to, out _);

    private void AddApp(AppSpec a, List<TopologyError> errors)
    {
        var net = Network;
        if (net[a.On] is not HostNode host) { errors.Add(new(Spec.File, a.At, $"app '{a.Name}': apps run on hosts, and '{a.On}' is not one")); return; }
        var tcp = new TcpSocketOptions { Congestion = a.Congestion };
        HostNode? target = a.To is not null && !IsAddress(a.To) ? net[a.To] as HostNode : null;
        if (a.To is not null && target is null && !IsAddress(a.To) && net[a.To] is not RouterNode && net[a.To] is not LinuxNode && net[a.To] is not ProcessNode)
        {
            errors.Add(new(Spec.File, a.ToAt, $"app '{a.Name}': '{a.To}' is a switch, which has no address"));
            return;
        }
        var dest = default(Endpoint);
        if (a.To is not null)
        {
            dest = new Endpoint(Resolve(a.To, a.Ipv6, out var why), a.Port);
            if (why is not null) { errors.Add(new(Spec.File, a.ToAt, $"app '{a.Name}': {why}")); return; }
        }
        App app;
        try
        {
            app = a.Kind switch
            {
                AppKind.Ping => new PingApp(a.Name, host, dest.Address, a.Interval, (int)a.Count, (int)a.Size, net.NextPingIdentifier()),
                AppKind.Bulk => new BulkSendApp(a.Name, host, dest, a.Size, a.For, tcp),
                AppKind.Rr => new RrClientApp(a.Name, host, dest, (int)a.Request, (int)a.Response, (int)a.Count, a.Interval, tcp),
                AppKind.Udp => new UdpStreamApp(a.Name, host, dest, a.Rate, (int)a.Size, a.For, a.Count),
                AppKind.Echo => new TcpEchoApp(a.Name, host, a.Port),
                AppKind.Http => new HttpServerApp(a.Name, host, a.Port, a.Size),
                _ => new TcpSinkApp(a.Name, host, a.Port),
            };
        }
        catch (ArgumentException e) { errors.Add(new(Spec.File, a.At, e.Message)); return; }
        // The server a client needs on an emulated host, unless the file starts one on that port.
        if (target is not null && a.Kind is AppKind.Bulk or AppKind.Rr or AppKind.Udp && !Spec.Apps.Exists(x => x.On == target.Name && x.Port == a.Port && x.Kind is not (AppKind.Ping or AppKind.Bulk or AppKind.Rr or AppKind.Udp)))
        {
            if (!net.Apps.Any(x => x.Host == target && ServerPort(x) == a.Port))
            {
                App server = a.Kind switch
                {
                    AppKind.Bulk => new TcpSinkApp($"{a.Name}.sink", target, a.Port),
                    AppKind.Rr => new RrServerApp($"{a.Name}.server", target, a.Port),
                    _ => new UdpSinkApp($"{a.Name}.sink", target, a.Port),
                };
                net.Start(server);
            }
            if (app is UdpStreamApp udp) udp.Sink = net.Apps.OfType<UdpSinkApp>().FirstOrDefault(x => x.Host == target && x.Port == a.Port);
        }
        _apps.Add(net.Start(app, a.Start));
    }

    private static int ServerPort(App app) => app switch
    {
        TcpServerApp t => t.Port,
        UdpSinkApp u => u.Port,
        _ => -1,
    };

    private void AddEvent(EventSpec e)
    {
        var net = Network;
        Action act = e.Action switch
        {
            EventAction.Down => () => net.Link(e.Link!).Down(),
            EventAction.Up => () => net.Link(e.Link!).Up(),
            EventAction.Set => () =>
            {
                var l = net.Link(e.Link!);
                if (e.ChangeAtoB is { } ab) l.AtoB.Impairments = ab(l.AtoB.Impairments);
                if (e.ChangeBtoA is { } ba) l.BtoA.Impairments = ba(l.BtoA.Impairments);
            },
            EventAction.Partition => () => net.Partition(e.Groups.Select(g => g.Select(n => net[n]))),
            EventAction.Heal => net.Heal,
            EventAction.Crash => () => net[e.Node!].Crash(),
            _ => () => net[e.Node!].Restart(),
        };
        net.At(e.At, act);
    }

    /// <summary>Writes one pcapng per link into <paramref name="directory"/> (LINK.pcapng).</summary>
    public void CaptureTo(string directory)
    {
        Directory.CreateDirectory(directory);
        foreach (var link in Network.Links)
        {
            var stream = new FileStream(Path.Combine(directory, $"{link.Name}.pcapng"), FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16);
            Network.Capture(link, new PcapNgWriter(stream, ownsStream: true));
        }
    }

    /// <summary>
    /// Runs the whole duration, calling <paramref name="progress"/> every 1% of virtual time. A
    /// cancelled <paramref name="stop"/> ends the run early (within a step, or at once in real time);
    /// the captures are closed either way.
    /// </summary>
    public void Run(Action<double>? progress = null, CancellationToken stop = default)
    {
        var step = new Duration(Math.Max(1, Duration.Nanoseconds / 100));
        var end = Network.Elapsed + Duration;
        while (Network.Elapsed < end && !stop.IsCancellationRequested)
        {
            var left = end - Network.Elapsed;
            if (RealTime) Network.RunRealTime(left < step ? left : step, () => stop.IsCancellationRequested);
            else Network.Run(left < step ? left : step);
            progress?.Invoke(1.0 - (end - Network.Elapsed).TotalSeconds / Duration.TotalSeconds);
        }
        Network.CloseCaptures();
    }
}
