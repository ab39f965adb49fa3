using Netloom.Netem;
using Netloom.Stack;
using Netloom.Time;
using YamlDotNet.RepresentationModel;

namespace Netloom.Emulation.Topology;

internal sealed partial class TopologyParser
{
    private void ParseApps(YamlNode apps, TopologySpec spec)
    {
        if (apps is not YamlSequenceNode seq) { Error(apps, "apps must be a list, each item with 'type' and 'on'"); return; }
        int index = 0;
        foreach (var item in seq)
        {
            index++;
            YamlNode? typeNode = null;
            if (item is YamlMappingNode m) m.Children.TryGetValue(new YamlScalarNode("type"), out typeNode);
            if (typeNode is null) { Error(item, "an app needs a type: ping, bulk, rr, udp, echo, http or sink"); continue; }
            AppKind kind;
            switch (Scalar(typeNode, "app type"))
            {
                case "ping": kind = AppKind.Ping; break;
                case "bulk": kind = AppKind.Bulk; break;
                case "rr": kind = AppKind.Rr; break;
                case "udp": kind = AppKind.Udp; break;
                case "echo": kind = AppKind.Echo; break;
                case "http": kind = AppKind.Http; break;
                case "sink": kind = AppKind.Sink; break;
                case { } other: Error(typeNode, $"unknown app type '{other}'; use ping, bulk, rr, udp, echo, http or sink"); continue;
                default: continue;
            }
            string[] allowed = kind switch
            {
                AppKind.Ping => ["type", "name", "on", "to", "ipv6", "start", "interval", "count", "size"],
                AppKind.Bulk => ["type", "name", "on", "to", "ipv6", "port", "start", "size", "duration", "cc"],
                AppKind.Rr => ["type", "name", "on", "to", "ipv6", "port", "start", "request", "response", "count", "interval", "cc"],
                AppKind.Udp => ["type", "name", "on", "to", "ipv6", "port", "start", "rate", "size", "duration", "count"],
                AppKind.Http => ["type", "name", "on", "port", "start", "size"],
                _ => ["type", "name", "on", "port", "start"],
            };
            var app = new AppSpec($"{kind.ToString().ToLowerInvariant()}{index}", kind, "", At(item))
            {
                Port = kind switch { AppKind.Http => 80, AppKind.Echo => 7, AppKind.Udp => 9000, AppKind.Rr => 7000, _ => 5001 },
                Interval = kind == AppKind.Ping ? Duration.FromSeconds(1) : default,
                Size = kind switch { AppKind.Ping => 56, AppKind.Udp => 1000, AppKind.Http => 1 << 20, _ => 0 },
            };
            bool hasOn = false;
            foreach (var (k, v) in Entries(item, $"app {index} ({kind.ToString().ToLowerInvariant()})", allowed))
            {
                switch (k)
                {
                    case "name": app = app with { Name = Scalar(v, "app name") ?? app.Name }; break;
                    case "on": app = app with { On = Scalar(v, "on") ?? "" }; hasOn = true; break;
                    case "to": app = app with { To = Scalar(v, "to"), ToAt = At(v) }; break;
                    case "ipv6": app = app with { Ipv6 = Bool(v, "ipv6") }; break;
                    case "port": app = app with { Port = (ushort)Integer(v, "port", 1, 65535) }; break;
                    case "start": app = app with { Start = Time(v, "start") }; break;
                    case "interval": app = app with { Interval = Time(v, "interval") }; break;
                    case "duration": app = app with { For = Time(v, "duration", positive: true) }; break;
                    case "count": app = app with { Count = Integer(v, "count", 1, 100_000_000) }; break;
                    case "size": app = app with { Size = Size(v, "size", kind == AppKind.Ping ? 65000 : kind == AppKind.Udp ? 65507 : 1L << 40) }; break;
                    case "request": app = app with { Request = Size(v, "request", 64 << 20) }; break;
                    case "response": app = app with { Response = Size(v, "response", 64 << 20) }; break;
                    case "rate": app = app with { Rate = Rate(v, "rate") }; break;
                    case "cc":
                        var cc = Scalar(v, "cc");
                        if (cc is "cubic") app = app with { Congestion = CongestionAlgorithm.Cubic };
                        else if (cc is "newreno" or "reno") app = app with { Congestion = CongestionAlgorithm.NewReno };
                        else if (cc is not null) Error(v, $"unknown congestion control '{cc}'; use cubic or newreno");
                        break;
                }
            }
            if (!hasOn) { Error(item, $"app '{app.Name}' needs 'on: HOST' (where it runs)"); continue; }
            bool client = kind is AppKind.Ping or AppKind.Bulk or AppKind.Rr or AppKind.Udp;
            if (client && app.To is null) Error(item, $"app '{app.Name}' needs 'to': a node name or an IP address");
            if (kind == AppKind.Bulk && app.Size == 0 && app.For == default) Error(item, $"app '{app.Name}': a bulk transfer needs 'size' (such as 10MB) or 'duration'");
            if (kind == AppKind.Udp && app.Rate == 0) Error(item, $"app '{app.Name}': a UDP stream needs 'rate' (such as 1mbit)");
            if (kind == AppKind.Udp && app.For == default && app.Count == 0) Error(item, $"app '{app.Name}': a UDP stream needs 'duration' or 'count'");
            if (kind == AppKind.Udp && app.Size < Apps.UdpStreamApp.HeaderSize) Error(item, $"app '{app.Name}': UDP datagrams must be at least {Apps.UdpStreamApp.HeaderSize} bytes");
            if (kind == AppKind.Rr && app.Request < 8) Error(item, $"app '{app.Name}': requests must be at least 8 bytes (they carry their own length)");
            if (spec.Apps.Exists(a => a.Name == app.Name)) Error(item, $"two apps are named '{app.Name}'");
            spec.Apps.Add(app);
        }
    }

    private void ParseEvents(YamlNode events, TopologySpec spec)
    {
        if (events is not YamlSequenceNode seq) { Error(events, "events must be a list, each item with 'at' and 'action'"); return; }
        foreach (var item in seq)
        {
            Duration at = default;
            bool hasAt = false, actionGiven = false;
            EventAction? action = null;
            string? link = null, node = null;
            var groups = new List<List<string>>();
            YamlNode? set = null, setAb = null, setBa = null;
            foreach (var (k, v) in Entries(item, "an event", "at", "action", "link", "node", "groups", "set", "a_to_b", "b_to_a"))
            {
                switch (k)
                {
                    case "at": at = Time(v, "at"); hasAt = true; break;
                    case "link": link = Scalar(v, "link"); break;
                    case "node": node = Scalar(v, "node"); break;
                    case "set": set = v; break;
                    case "a_to_b": setAb = v; break;
                    case "b_to_a": setBa = v; break;
                    case "action":
                        actionGiven = true;
                        var s = Scalar(v, "action");
                        action = s switch
                        {
                            "down" => EventAction.Down, "up" => EventAction.Up, "set" => EventAction.Set, "partition" => EventAction.Partition,
                            "heal" => EventAction.Heal, "crash" => EventAction.Crash, "restart" => EventAction.Restart, _ => null,
                        };
                        if (action is null && s is not null) Error(v, $"unknown action '{s}'; use down, up, set, partition, heal, crash or restart");
                        break;
                    case "groups":
                        if (v is not YamlSequenceNode gs || gs.Children.Any(g => g is not YamlSequenceNode)) { Error(v, "groups must be a list of lists of node names, such as [[h1, s1], [h2]]"); break; }
                        foreach (YamlSequenceNode g in gs) groups.Add(g.Children.Select(x => Scalar(x, "group member") ?? "").ToList());
                        break;
                }
            }
            if (item is not YamlMappingNode) continue;
            if (!hasAt) { Error(item, "an event needs 'at' (a time such as 10s)"); continue; }
            if (action is not { } act) { if (!actionGiven) Error(item, "an event needs an 'action': down, up, set, partition, heal, crash or restart"); continue; }
            var e = new EventSpec(at, act, At(item)) { Link = link, Node = node, Groups = groups };
            switch (act)
            {
                case EventAction.Down or EventAction.Up or EventAction.Set when link is null: Error(item, $"'{act.ToString().ToLowerInvariant()}' needs 'link: NAME'"); continue;
                case EventAction.Crash or EventAction.Restart when node is null: Error(item, $"'{act.ToString().ToLowerInvariant()}' needs 'node: NAME'"); continue;
                case EventAction.Partition when groups.Count < 1: Error(item, "'partition' needs 'groups', such as [[h1, s1], [h2]]"); continue;
            }
            if (act == EventAction.Set)
            {
                if (set is null && setAb is null && setBa is null) { Error(item, "'set' needs 'set: {...}' (both directions) or 'a_to_b'/'b_to_a' with the impairments to change"); continue; }
                var both = set is null ? null : Change(set);
                var ab = setAb is null ? null : Change(setAb);
                var ba = setBa is null ? null : Change(setBa);
                e = e with { ChangeAtoB = Chain(both, ab), ChangeBtoA = Chain(both, ba) };
            }
            spec.Events.Add(e);
        }
    }

    /// <summary>A change that applies only the keys written (checked now, on a blank impairment set).</summary>
    private Func<Impairments, Impairments>? Change(YamlNode node)
    {
        Overlay(node, Impairments.None, "set");
        var self = this;
        return imp => self.Overlay(node, imp, "set");
    }

    private static Func<Impairments, Impairments>? Chain(Func<Impairments, Impairments>? first, Func<Impairments, Impairments>? second) =>
        first is null ? second : second is null ? first : imp => second(first(imp));

    private void CheckNames(TopologySpec spec)
    {
        var nodes = spec.Nodes.ToDictionary(n => n.Name);
        bool Known(string name) => nodes.ContainsKey(name) || _broken.Contains(name);
        foreach (var l in spec.Links)
        {
            if (!Known(l.A)) Error(l.AAt, $"link {l.Name}: no node named '{l.A}'");
            if (!Known(l.B)) Error(l.BAt, $"link {l.Name}: no node named '{l.B}'");
            if (l.A == l.B) Error(l.At, $"link {l.Name} joins {l.A} to itself");
        }
        foreach (var a in spec.Apps)
        {
            if (!nodes.TryGetValue(a.On, out var on)) { if (!_broken.Contains(a.On)) Error(a.At, $"app '{a.Name}': no node named '{a.On}'"); }
            else if (on.Kind != NodeKind.Host) Error(a.At, $"app '{a.Name}' runs on '{a.On}', a {on.Kind.ToString().ToLowerInvariant()}; apps run on hosts");
            if (a.To is { } to && !nodes.ContainsKey(to) && !Wire.Ipv4Address.TryParse(to, out _) && !Wire.Ipv6Address.TryParse(to, out _)) Error(a.ToAt, $"app '{a.Name}': 'to: {to}' is neither a node nor an IP address");
        }
        foreach (var e in spec.Events)
        {
            if (e.Link is { } l && !spec.Links.Exists(x => x.Name == l)) Error(e.Where, $"event at {e.At}: no link named '{l}' (links are named 'A-B' unless given a name)");
            if (e.Node is { } n && !nodes.ContainsKey(n)) Error(e.Where, $"event at {e.At}: no node named '{n}'");
            foreach (var g in e.Groups)
                foreach (var m in g)
                    if (!nodes.ContainsKey(m)) Error(e.Where, $"event at {e.At}: partition names '{m}', which is not a node");
            if (e.At > spec.Duration) Error(e.Where, $"event at {e.At} is after the end of the run ({spec.Duration})");
        }
    }
}

internal sealed partial class TopologyParser
{
    /// <summary>
    /// A change to a running link's impairments, as the control API takes it: a JSON (or YAML flow)
    /// mapping of the keys an event's <c>set</c> takes, for both directions, plus <c>a_to_b</c> and
    /// <c>b_to_a</c> mappings for one direction each. Only the keys written change. Problems throw a
    /// <see cref="TopologyException"/> with every error, located in the text.
    /// </summary>
    internal static (Func<Impairments, Impairments>? AtoB, Func<Impairments, Impairments>? BtoA) ParseLinkChange(string text)
    {
        var p = new TopologyParser("<request>");
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new TopologyException([new TopologyError("<request>", new((int)e.Start.Line, (int)e.Start.Column), $"not valid JSON: {e.InnerException?.Message ?? e.Message}")]);
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new TopologyException([new TopologyError("<request>", new(1, 1), "the body must be one JSON object, such as {\"delay\": \"20ms\", \"loss\": \"1%\"}")]);
        YamlNode? ab = null, ba = null;
        bool both = false;
        foreach (var (k, v) in p.Entries(root, "set", [.. ImpairmentKeys, "a_to_b", "b_to_a"]))
        {
            if (k == "a_to_b") ab = v;
            else if (k == "b_to_a") ba = v;
            else both = true;
        }
        var changeBoth = both ? p.ChangeOnly(root) : null;
        var changeAb = ab is null ? null : p.Change(ab);
        var changeBa = ba is null ? null : p.Change(ba);
        if (p._errors.Count == 0 && changeBoth is null && changeAb is null && changeBa is null)
            p.Error(root, "nothing to change: give impairments such as {\"delay\": \"20ms\", \"loss\": \"1%\"}");
        if (p._errors.Count > 0) throw new TopologyException(p._errors);
        return (Chain(changeBoth, changeAb), Chain(changeBoth, changeBa));
    }

    /// <summary>As <see cref="Change"/>, reading only the impairment keys of a mapping that holds others too.</summary>
    private Func<Impairments, Impairments> ChangeOnly(YamlNode node)
    {
        Overlay(node, Impairments.None, "set", skipUnknown: true);
        var self = this;
        return imp => self.Overlay(node, imp, "set", skipUnknown: true);
    }
}
