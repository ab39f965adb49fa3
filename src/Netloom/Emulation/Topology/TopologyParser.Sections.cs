using Netloom.Netem;
using Netloom.Time;
using YamlDotNet.RepresentationModel;

namespace Netloom.Emulation.Topology;

internal sealed partial class TopologyParser
{
    private static readonly string[] ImpairmentKeys = ["delay", "jitter", "distribution", "loss", "duplicate", "corrupt", "reorder", "rate", "queue", "overhead"];

    private void ParseNodes(YamlNode nodes, TopologySpec spec)
    {
        if (nodes is not YamlMappingNode map) { Error(nodes, "nodes must be a mapping of names to types, such as 'h1: host'"); return; }
        foreach (var (kn, v) in map.Children)
        {
            var name = (kn as YamlScalarNode)?.Value ?? "";
            if (!ValidName(name)) { Error(kn, $"node name '{name}' must start with a letter and use only letters, digits, '-', '_' and '.' (at most 32)"); continue; }
            if (spec.Nodes.Exists(n => n.Name == name)) { Error(kn, $"node '{name}' is defined twice"); continue; }
            if (v is YamlScalarNode) { if (Kind(v, name) is { } k) spec.Nodes.Add(new NodeSpec(name, k, At(kn))); else _broken.Add(name); continue; }
            YamlNode? typeNode = null;
            if (v is YamlMappingNode m) m.Children.TryGetValue(new YamlScalarNode("type"), out typeNode);
            if (typeNode is null) { Error(v, $"node '{name}' needs a type: host, switch, router, linux or process"); _broken.Add(name); continue; }
            if (Kind(typeNode, name) is not { } kind) { _broken.Add(name); continue; }
            var node = new NodeSpec(name, kind, At(kn));
            string[] allowed = kind switch
            {
                NodeKind.Host or NodeKind.Linux => ["type", "ip", "gateway", "ip6", "gateway6", "mtu"],
                NodeKind.Process => ["type", "ip", "gateway", "ip6", "gateway6", "mtu", "run", "start"],
                NodeKind.Router => ["type", "routes", "auto_routes", "acl"],
                _ => ["type"],
            };
            foreach (var (k, x) in Entries(v, $"node '{name}'", allowed))
            {
                switch (k)
                {
                    case "ip": node = node with { Ip = Prefix(x, $"{name}.ip") }; break;
                    case "gateway": node = node with { Gateway = Address(x, $"{name}.gateway") }; break;
                    case "ip6": node = node with { Ip6 = Prefix6(x, $"{name}.ip6") }; break;
                    case "gateway6": node = node with { Gateway6 = Address6(x, $"{name}.gateway6") }; break;
                    case "mtu": node = node with { Mtu = (int)Integer(x, $"{name}.mtu", 68, 9000) }; break;
                    case "auto_routes": node = node with { AutoRoutes = Bool(x, $"{name}.auto_routes") }; break;
                    case "run": node = node with { Run = Command(x, $"{name}.run") }; break;
                    case "start": node = node with { Start = Time(x, $"{name}.start") }; break;
                    case "routes":
                        if (x is not YamlSequenceNode seq) { Error(x, $"{name}.routes must be a list such as [\"10.3.0.0/16 via 10.9.0.2\"]"); break; }
                        foreach (var r in seq)
                        {
                            if (Scalar(r, $"{name}.routes") is { } line && line.Contains(':'))
                            { if (Route6(r, line, name) is { } route6) node.Routes6.Add(route6); }
                            else if (Route(r, name) is { } route) node.Routes.Add(route);
                        }
                        break;
                    case "acl":
                        if (x is not YamlSequenceNode rules) { Error(x, $"{name}.acl must be a list such as [\"drop tcp to 10.0.3.0/24 port 80\"]"); break; }
                        foreach (var r in rules)
                        {
                            if (Scalar(r, $"{name}.acl rule") is not { } text) continue;
                            if (AccessRule.TryParse(text, out var rule, out var why)) node.Acl.Add(rule);
                            else Error(r, $"{name}.acl: {why}: '{text}'");
                        }
                        break;
                }
            }
            if (kind == NodeKind.Process && node.Run.Length == 0)
                Error(kn, $"process node '{name}' needs run: the program and its arguments, such as run: [nginx, -g, \"daemon off;\"]");
            spec.Nodes.Add(node);
        }
    }

    /// <summary>A program and its arguments: a list, or one line split at spaces (quotes keep spaces in).</summary>
    private string[] Command(YamlNode n, string what)
    {
        if (n is YamlSequenceNode seq)
        {
            var args = new List<string>();
            foreach (var a in seq)
                if (a is YamlScalarNode { Value: { } v }) args.Add(v);
                else Error(a, $"{what}: each argument must be a single value");
            return [.. args];
        }
        if (Scalar(n, what) is not { } line) return [];
        var words = new List<string>();
        var word = new System.Text.StringBuilder();
        char quote = '\0';
        bool inWord = false;
        foreach (char c in line)
        {
            if (quote != '\0') { if (c == quote) quote = '\0'; else word.Append(c); continue; }
            if (c is '"' or '\'') { quote = c; inWord = true; continue; }
            if (char.IsWhiteSpace(c))
            {
                if (inWord) { words.Add(word.ToString()); word.Clear(); inWord = false; }
                continue;
            }
            word.Append(c);
            inWord = true;
        }
        if (quote != '\0') { Error(n, $"{what}: a quote is not closed in '{line}'"); return []; }
        if (inWord) words.Add(word.ToString());
        return [.. words];
    }

    private NodeKind? Kind(YamlNode n, string name)
    {
        switch (Scalar(n, $"{name}.type"))
        {
            case "host": return NodeKind.Host;
            case "switch": return NodeKind.Switch;
            case "router": return NodeKind.Router;
            case "linux": return NodeKind.Linux;
            case "process": return NodeKind.Process;
            case { } other: Error(n, $"node '{name}': unknown type '{other}'; use host, switch, router, linux or process"); return null;
            default: return null;
        }
    }

    /// <summary>"PREFIX via NEXTHOP", such as "10.3.0.0/16 via 10.9.0.2" (or "default via ...").</summary>
    private RouteSpec? Route(YamlNode n, string router)
    {
        var s = Scalar(n, $"{router}.routes");
        if (s is null) return null;
        var parts = s.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Cidr prefix = default;
        if (parts.Length != 3 || parts[1] != "via" || !(parts[0] == "default" || Cidr.TryParse(parts[0], out prefix)) || !Wire.Ipv4Address.TryParse(parts[2], out var via))
        {
            Error(n, $"route '{s}' must read 'PREFIX via ADDRESS', such as '10.3.0.0/16 via 10.9.0.2' or 'default via 10.9.0.2'");
            return null;
        }
        if (parts[0] == "default") prefix = new Cidr(Wire.Ipv4Address.Any, 0);
        return new RouteSpec(prefix, via, At(n));
    }

    /// <summary>"PREFIX via NEXTHOP" for IPv6, such as "fd00:3::/48 via fd00:0:0:9::2" (or "default via ...").</summary>
    private Route6Spec? Route6(YamlNode n, string line, string router)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Prefix6 prefix = default;
        if (parts.Length != 3 || parts[1] != "via" || !(parts[0] == "default" || Emulation.Prefix6.TryParse(parts[0], out prefix)) || !Wire.Ipv6Address.TryParse(parts[2], out var via))
        {
            Error(n, $"route '{line}' must read 'PREFIX via ADDRESS', such as 'fd00:3::/48 via fd00:0:0:9::2' or 'default via fd00:0:0:9::2'");
            return null;
        }
        if (parts[0] == "default") prefix = new Prefix6(Wire.Ipv6Address.Unspecified, 0);
        return new Route6Spec(prefix, via, At(n));
    }

    private void ParseLinks(YamlNode links, TopologySpec spec)
    {
        if (links is not YamlSequenceNode seq) { Error(links, "links must be a list, each item with at least 'a' and 'b'"); return; }
        foreach (var item in seq)
        {
            string? a = null, b = null, name = null;
            SourceLocation aAt = At(item), bAt = At(item);
            Cidr? ipA = null, ipB = null;
            Prefix6? ip6A = null, ip6B = null;
            int mtu = 1500;
            var both = Impairments.None;
            YamlNode? ab = null, ba = null;
            var keys = new[] { "name", "a", "b", "a_ip", "b_ip", "a_ip6", "b_ip6", "mtu", "a_to_b", "b_to_a" }.Concat(ImpairmentKeys).ToArray();
            var entries = Entries(item, "a link", keys).ToList();
            foreach (var (k, v) in entries)
            {
                switch (k)
                {
                    case "name": name = Scalar(v, "link name"); break;
                    case "a": a = Scalar(v, "link end a"); aAt = At(v); break;
                    case "b": b = Scalar(v, "link end b"); bAt = At(v); break;
                    case "a_ip": ipA = Prefix(v, "a_ip"); break;
                    case "b_ip": ipB = Prefix(v, "b_ip"); break;
                    case "a_ip6": ip6A = Prefix6(v, "a_ip6"); break;
                    case "b_ip6": ip6B = Prefix6(v, "b_ip6"); break;
                    case "mtu": mtu = (int)Integer(v, "link mtu", 68, 9000); break;
                    case "a_to_b": ab = v; break;
                    case "b_to_a": ba = v; break;
                }
            }
            if (item is not YamlMappingNode) continue;
            both = Overlay(item, both, "link", skipUnknown: true);
            if (a is null || b is null) { Error(item, "a link needs both ends: 'a: NODE' and 'b: NODE'"); continue; }
            name ??= $"{a}-{b}";
            if (!ValidName(name)) Error(item, $"link name '{name}' must start with a letter and use only letters, digits, '-', '_' and '.' (at most 32)");
            if (spec.Links.Exists(l => l.Name == name)) { Error(item, $"two links are named '{name}'; give one a 'name'"); continue; }
            var atob = ab is null ? both : Overlay(ab, both, $"link {name} a_to_b");
            var btoa = ba is null ? both : Overlay(ba, both, $"link {name} b_to_a");
            atob = atob with { Mtu = mtu };
            btoa = btoa with { Mtu = mtu };
            foreach (var (imp, dir) in new[] { (atob, "a_to_b"), (btoa, "b_to_a") })
                if (imp.Validate() is { } problem) Error(item, $"link {name} ({dir}): {problem}");
            spec.Links.Add(new LinkSpec(name, a, b, At(item)) { AAt = aAt, BAt = bAt, IpA = ipA, IpB = ipB, Ip6A = ip6A, Ip6B = ip6B, AtoB = atob, BtoA = btoa, Mtu = mtu });
        }
    }

    /// <summary>Applies the impairment keys written in <paramref name="node"/> over <paramref name="start"/>.</summary>
    private Impairments Overlay(YamlNode node, Impairments start, string what, bool skipUnknown = false)
    {
        var imp = start;
        IEnumerable<(string, YamlNode)> entries = skipUnknown && node is YamlMappingNode m
            ? m.Children.Where(c => c.Key is YamlScalarNode { Value: { } k } && ImpairmentKeys.Contains(k)).Select(c => (((YamlScalarNode)c.Key).Value!, c.Value))
            : Entries(node, what, ImpairmentKeys);
        foreach (var (k, v) in entries)
        {
            imp = k switch
            {
                "delay" => imp with { Delay = Time(v, $"{what} delay") },
                "jitter" => imp with { Jitter = Time(v, $"{what} jitter") },
                "distribution" => imp with { Distribution = Distribution(v, what) },
                "loss" => v is YamlMappingNode ? imp with { GilbertElliott = Gilbert(v, what), Loss = 0 } : imp with { Loss = Percent(v, $"{what} loss"), GilbertElliott = null },
                "duplicate" => imp with { Duplicate = Percent(v, $"{what} duplicate") },
                "corrupt" => imp with { Corrupt = Percent(v, $"{what} corrupt") },
                "reorder" => imp with { Reorder = Percent(v, $"{what} reorder") },
                "rate" => imp with { RateBitsPerSecond = Rate(v, $"{what} rate") },
                "queue" => Queue(v, imp, what),
                "overhead" => imp with { Overhead = (int)Integer(v, $"{what} overhead", 0, 1000) },
                _ => imp,
            };
        }
        return imp;
    }

    private DelayDistribution Distribution(YamlNode v, string what)
    {
        switch (Scalar(v, $"{what} distribution"))
        {
            case "uniform": return DelayDistribution.Uniform;
            case "normal": return DelayDistribution.Normal;
            case "pareto": return DelayDistribution.Pareto;
            case { } other: Error(v, $"{what}: unknown distribution '{other}'; use uniform, normal or pareto"); break;
        }
        return DelayDistribution.Uniform;
    }

    /// <summary>loss: {p: 1%, r: 25%, bad: 100%, good: 0%} (netem's gemodel p r 1-h 1-k).</summary>
    private GilbertElliott Gilbert(YamlNode v, string what)
    {
        double p = -1, r = -1, bad = 1, good = 0;
        foreach (var (k, x) in Entries(v, $"{what} loss (Gilbert-Elliott)", "p", "r", "bad", "good"))
        {
            double val = Percent(x, $"{what} loss {k}");
            switch (k) { case "p": p = val; break; case "r": r = val; break; case "bad": bad = val; break; case "good": good = val; break; }
        }
        if (p < 0) { Error(v, $"{what}: Gilbert-Elliott loss needs p (the chance of going from Good to Bad)"); p = 0; }
        if (r < 0) r = 1 - p; // netem's default
        return new GilbertElliott(p, r, bad, good);
    }

    /// <summary>queue: 100 (frames) or 64KiB (bytes).</summary>
    private Impairments Queue(YamlNode v, Impairments imp, string what)
    {
        var s = Scalar(v, $"{what} queue") ?? "";
        if (int.TryParse(s, out int frames) && frames > 0) return imp with { QueuePackets = frames, QueueBytes = 0 };
        if (Quantity.TrySize(s, out long bytes) && bytes > 0 && !char.IsDigit(s[^1])) return imp with { QueueBytes = bytes, QueuePackets = 0 };
        Error(v, $"{what} queue must be a number of frames (100) or a size in bytes (64KiB), not '{s}'");
        return imp;
    }
}
