using Netloom.Netem;
using Netloom.Stack;
using Netloom.Switching;
using Netloom.Time;
using Netloom.Wire;
using Netloom.Wire.Capture;

namespace Netloom.Emulation;

/// <summary>How a <see cref="Network"/> is set up.</summary>
public sealed record NetworkOptions
{
    /// <summary>Seeds every random choice: links, stacks, switches. The same seed gives the same run, byte for byte.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>The largest MTU any node or link will use (sizes the frame buffers).</summary>
    public int MaxMtu { get; init; } = 1500;
    /// <summary>Frames that may exist at once (in flight, queued, in inboxes); past this, sends fail and are counted.</summary>
    public int FrameLimit { get; init; } = 1 << 20;
}

/// <summary>
/// An emulated network: nodes (hosts with user-level stacks, learning switches, routers) joined by
/// impaired point-to-point links, run by a discrete-event scheduler in virtual time. Nothing reads
/// a clock: time jumps from event to event, so a minute of WAN traffic takes as long as its packets
/// take to process, and a run is a function of its seed. This is the C# API for testing code
/// against a network (as Mininet's Python API or turmoil do): build, start apps, inject faults,
/// advance time, look at sockets and counters.
/// </summary>
public sealed partial class Network
{
    /// <summary>Virtual time zero: 2026-01-01T00:00:00Z, so captures carry plausible dates.</summary>
    public static readonly Instant Epoch = Instant.FromSeconds(1_767_225_600);

    private readonly EventQueue<SimEvent> _queue = new();
    private readonly List<Node> _nodes = [];
    private readonly Dictionary<string, Node> _byName = new(StringComparer.Ordinal);
    private readonly List<Link> _links = [];
    private readonly List<App> _apps = [];
    // Per link: each capture's writer and its interface for frames sent from end A and from end B
    // (the same id twice for a port's view, with Inbound telling them apart).
    private readonly Dictionary<Link, List<(ICaptureWriter Writer, int IfA, int IfB, NodePort? At)>> _captures = [];
    private bool _started;
    private ulong _nextMac = 0x02_4E_4C_00_00_01; // locally administered "NL" range
    private ushort _nextPingId = 1;

    public Network(NetworkOptions? options = null)
    {
        Options = options ?? new NetworkOptions();
        if (Options.MaxMtu < 68 || Options.MaxMtu > StackOptions.MaxMtu) throw new ArgumentException($"MaxMtu must be 68 to {StackOptions.MaxMtu}");
        Pool = new FramePool(Options.MaxMtu + 14, Options.FrameLimit);
        NowNs = Epoch.Nanoseconds;
    }

    public NetworkOptions Options { get; }
    public int Seed => Options.Seed;
    internal FramePool Pool { get; }
    /// <summary>The current virtual time.</summary>
    public Instant Now => new(NowNs);
    internal long NowNs { get; private set; }
    /// <summary>Virtual time since the network was created.</summary>
    public Duration Elapsed => new(NowNs - Epoch.Nanoseconds);
    public IReadOnlyList<Node> Nodes => _nodes;
    public IReadOnlyList<Link> Links => _links;
    internal IReadOnlyList<App> Apps => _apps;
    /// <summary>Events processed so far (frame arrivals, wake-ups, actions).</summary>
    public long EventsProcessed { get; private set; }
    /// <summary>Frames delivered across links so far (packet-hops).</summary>
    public long PacketHops { get; private set; }
    /// <summary>Events scheduled and not yet processed (frames in flight, wake-ups, actions).</summary>
    public int PendingEvents => _queue.Count;

    public Node this[string name] => _byName.TryGetValue(name, out var n) ? n : throw new KeyNotFoundException($"no node named '{name}'");
    public HostNode Host(string name) => this[name] as HostNode ?? throw new InvalidOperationException($"node '{name}' is not a host");
    public RouterNode Router(string name) => this[name] as RouterNode ?? throw new InvalidOperationException($"node '{name}' is not a router");
    public SwitchNode Switch(string name) => this[name] as SwitchNode ?? throw new InvalidOperationException($"node '{name}' is not a switch");
    public Link Link(string name) => _links.Find(l => l.Name == name) ?? throw new KeyNotFoundException($"no link named '{name}'");

    internal MacAddress NextMac() => MacAddress.FromUInt64(_nextMac++);

    /// <summary>Adds a node made outside the Add* methods (tests' probe nodes); its id must be the next one.</summary>
    internal T AddRaw<T>(T node) where T : Node => AddNode(node);

    private T AddNode<T>(T node) where T : Node
    {
        if (_byName.ContainsKey(node.Name)) throw new ArgumentException($"a node named '{node.Name}' already exists");
        _nodes.Add(node);
        _byName[node.Name] = node;
        if (_started) node.Start(NowNs);
        return node;
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("a node needs a name");
        if (_byName.ContainsKey(name)) throw new ArgumentException($"a node named '{name}' already exists");
    }

    /// <summary>Adds a host with a user-level stack. <paramref name="configure"/> may change anything else in its stack options.</summary>
    public HostNode AddHost(string name, Ipv4Address address, int prefixLength = 24, Ipv4Address? gateway = null, int mtu = 1500,
        Func<StackOptions, StackOptions>? configure = null)
    {
        CheckName(name);
        if (mtu > Options.MaxMtu) throw new ArgumentException($"host {name}: MTU {mtu} is over the network's MaxMtu {Options.MaxMtu}");
        int id = _nodes.Count;
        // The MAC is the host port's, set by the host.
        var options = new StackOptions { Mac = MacAddress.Zero, Address = address, PrefixLength = prefixLength, Gateway = gateway, Mtu = mtu };
        if (configure is not null) options = configure(options);
        return AddNode(new HostNode(this, id, name, options, Seed * 1000 + id + 1));
    }

    /// <summary>As <see cref="AddHost(string, Ipv4Address, int, Ipv4Address?, int, Func{StackOptions, StackOptions}?)"/>; IPv6 throws <see cref="ArgumentException"/> (not supported yet).</summary>
    public HostNode AddHost(string name, System.Net.IPAddress address, int prefixLength = 24, System.Net.IPAddress? gateway = null, int mtu = 1500,
        Func<StackOptions, StackOptions>? configure = null) =>
        AddHost(name, Ipv4Address.FromIPAddress(address), prefixLength, gateway is null ? null : Ipv4Address.FromIPAddress(gateway), mtu, configure);

    public SwitchNode AddSwitch(string name, Func<ILookup>? lookup = null)
    {
        CheckName(name);
        return AddNode(new SwitchNode(this, _nodes.Count, name, lookup));
    }

    public RouterNode AddRouter(string name)
    {
        CheckName(name);
        return AddNode(new RouterNode(this, _nodes.Count, name));
    }

    /// <summary>
    /// Joins two nodes with a link. A host uses its one port (once); a switch and a router get a new
    /// port per link, the router's with <paramref name="addressA"/>/<paramref name="addressB"/> as its address there.
    /// <paramref name="bToA"/> defaults to the same impairments as <paramref name="aToB"/>.
    /// </summary>
    public Link Connect(Node a, Node b, Impairments? aToB = null, Impairments? bToA = null, string? name = null,
        RouterAddress? addressA = null, RouterAddress? addressB = null, int mtu = 1500)
    {
        if (a == b) throw new ArgumentException($"a link needs two different nodes ({a.Name} twice)");
        name ??= $"{a.Name}-{b.Name}";
        if (_links.Exists(l => l.Name == name && !l.Removed)) throw new ArgumentException($"a link named '{name}' already exists");
        aToB ??= Impairments.None;
        bToA ??= aToB;
        if (aToB.Validate() is { } e1) throw new ArgumentException($"link {name}: {e1}");
        if (bToA.Validate() is { } e2) throw new ArgumentException($"link {name}: {e2}");
        return ConnectPorts(PortFor(a, addressA, mtu), PortFor(b, addressB, mtu), aToB, bToA, name);
    }

    /// <summary>Joins two ports already made (the node kinds' own rules are the caller's business).</summary>
    internal Link ConnectPorts(NodePort pa, NodePort pb, Impairments aToB, Impairments bToA, string name)
    {
        var link = new Link(this, _links.Count, name, pa, pb, aToB, bToA, Seed * 7919 + _links.Count * 104729 + 1);
        pa.Link = link;
        pb.Link = link;
        pa.Out = link.AtoB;
        pb.Out = link.BtoA;
        _links.Add(link);
        return link;
    }

    private NodePort PortFor(Node node, RouterAddress? address, int mtu) => node switch
    {
        HostNode h when h.Port.Link is null => h.Port,
        HostNode h => throw new ArgumentException($"host {h.Name} already has a link; a host has one interface (put a switch or a router in between)"),
        SwitchNode s => s.AddPort(),
        RouterNode r => r.AddInterface(address, mtu),
        LinuxNode l when l.Port.Link is null => l.Port,
        LinuxNode l => throw new ArgumentException($"linux node {l.Name} already has a link"),
        ProcessNode p when p.Port.Link is null => p.Port,
        ProcessNode p => throw new ArgumentException($"process node {p.Name} already has a link"),
        _ => throw new ArgumentException($"cannot link {node.Name}"),
    };

    /// <summary>Runs <paramref name="app"/> from <paramref name="start"/> (virtual time since the network was created).</summary>
    internal T Start<T>(T app, Duration start = default) where T : App
    {
        _apps.Add(app);
        app.Host.AddApp(app);
        At(start, () => app.Begin(Now));
        return app;
    }

    /// <summary>A fresh identifier for a ping app.</summary>
    internal ushort NextPingIdentifier() => _nextPingId++;

    /// <summary>Schedules <paramref name="action"/> at <paramref name="at"/> (virtual time since the network was created; now if past).</summary>
    public void At(Duration at, Action action) =>
        Post(null, Math.Max(NowNs, Epoch.Nanoseconds + at.Nanoseconds), static a => ((Action)a!)(), action);

    /// <summary>Writes every frame sent on <paramref name="link"/> (both ends, as two capture interfaces) to <paramref name="writer"/>. A link may have several.</summary>
    public void Capture(Link link, ICaptureWriter writer)
    {
        int a = writer.AddInterface(LinkType.Ethernet, $"{link.Name}:{link.A}");
        int b = writer.AddInterface(LinkType.Ethernet, $"{link.Name}:{link.B}");
        if (!_captures.TryGetValue(link, out var list)) _captures[link] = list = [];
        list.Add((writer, a, b, null));
    }

    /// <summary>
    /// Writes what goes through <paramref name="port"/> (a switch's or a router's) as one capture
    /// interface named NODE:INDEX, as a capture on that port of a real device sees it: frames the
    /// node sent out of it (outbound) and frames the link brought in (inbound).
    /// </summary>
    internal void Capture(NodePort port, ICaptureWriter writer)
    {
        var link = port.Link ?? throw new ArgumentException($"port {port} has no link");
        int id = writer.AddInterface(LinkType.Ethernet, port.ToString());
        if (!_captures.TryGetValue(link, out var list)) _captures[link] = list = [];
        list.Add((writer, id, id, port));
    }

    /// <summary>Stops writing <paramref name="link"/>'s frames to <paramref name="writer"/> (which the caller keeps and closes).</summary>
    internal void StopCapture(Link link, ICaptureWriter writer)
    {
        if (!_captures.TryGetValue(link, out var list)) return;
        list.RemoveAll(c => ReferenceEquals(c.Writer, writer));
        if (list.Count == 0) _captures.Remove(link);
    }

    internal void Capture(LinkDirection dir, SimFrame frame, long now)
    {
        if (_captures.Count == 0 || !_captures.TryGetValue(dir.Link, out var list)) return;
        foreach (var c in list)
            c.Writer.Write(dir.Index == 0 ? c.IfA : c.IfB, new Instant(now), frame.Span, -1,
                c.At is null || c.At == dir.From ? PacketDirection.Outbound : PacketDirection.Inbound);
    }

    /// <summary>Flushes and closes every capture.</summary>
    public void CloseCaptures()
    {
        foreach (var w in _captures.Values.SelectMany(l => l).Select(c => c.Writer).Distinct()) { w.Flush(); w.Dispose(); }
        _captures.Clear();
    }

    internal void ScheduleArrival(LinkDirection dir, SimFrame frame, long at) =>
        _queue.Push(at, new SimEvent { Kind = EventKind.Arrival, Target = dir.Link.Id, Aux = dir.Index, Epoch = dir.Link.Epoch, Frame = frame });

    internal void ScheduleHead(LinkDirection dir, long at) =>
        _queue.Push(at, new SimEvent { Kind = EventKind.Head, Target = dir.Link.Id, Aux = dir.Index });

    internal void ScheduleWake(Node node, long at)
    {
        at = Math.Max(at, NowNs);
        if (at >= node.WakeAt) return;
        node.WakeAt = at;
        _queue.Push(at, new SimEvent { Kind = EventKind.Wake, Target = node.Id, Epoch = at });
    }

    private void StartOnce()
    {
        _ownerThread = Environment.CurrentManagedThreadId;
        if (_started) return;
        _started = true;
        foreach (var n in _nodes)
        {
            if (n is RouterNode r) r.BuildTable();
            n.Start(NowNs);
        }
    }

    /// <summary>Runs events until <paramref name="done"/> holds (checked after each event) or <paramref name="limit"/> of virtual time passes.</summary>
    public bool RunUntil(Func<bool> done, Duration limit)
    {
        StartOnce();
        long end = NowNs + limit.Nanoseconds;
        while (!done())
        {
            if (!HasEventBy(end)) { NowNs = Math.Max(NowNs, end); return done(); }
            StepCore();
        }
        return true;
    }

    /// <summary>Runs for <paramref name="span"/> of virtual time.</summary>
    public void Run(Duration span)
    {
        StartOnce();
        long end = NowNs + span.Nanoseconds;
        while (HasEventBy(end)) StepCore();
        NowNs = Math.Max(NowNs, end);
    }

    /// <summary>Processes the next event. False when there is none.</summary>
    public bool Step()
    {
        StartOnce();
        return HasEventBy(long.MaxValue) && StepCore();
    }

    /// <summary>Whether an event is due by <paramref name="end"/> (continuations posted from other threads join the queue first).</summary>
    private bool HasEventBy(long end)
    {
        if (_hasForeignPosts) TakeForeignPosts();
        return _queue.Count > 0 && _queue.PeekTime <= end;
    }

    private bool StepCore()
    {
        var e = _queue.Pop(out long time);
        NowNs = Math.Max(NowNs, time);
        EventsProcessed++;
        switch (e.Kind)
        {
            case EventKind.Arrival:
                Arrive(_links[e.Target], e.Aux, e.Frame!, e.Epoch);
                break;
            case EventKind.Head:
                var link = _links[e.Target];
                var (frame, epoch) = link.Direction(e.Aux).TakeHead();
                Arrive(link, e.Aux, frame, epoch);
                break;
            case EventKind.Wake:
                var node = _nodes[e.Target];
                if (node.WakeAt != time) break; // superseded by an earlier wake-up
                node.WakeAt = long.MaxValue;
                node.Wake(NowNs);
                break;
            case EventKind.Callback:
                RunCallback(e.Target);
                break;
        }
        return true;
    }

    private void Arrive(Link link, int direction, SimFrame frame, long epoch)
    {
        var dir = link.Direction(direction);
        if (epoch != link.Epoch) { dir.Drop(frame, LinkDrop.Down); return; }
        var to = dir.To;
        if (!to.Node.IsUp) { dir.Drop(frame, LinkDrop.NodeDown); return; }
        dir.Counters.Delivered++;
        dir.Counters.DeliveredBytes += frame.Length;
        PacketHops++;
        to.Node.Receive(to, frame, NowNs);
    }
}
