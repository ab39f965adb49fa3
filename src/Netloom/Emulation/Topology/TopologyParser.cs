using System.Globalization;
using Netloom.Time;
using Netloom.Wire;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Netloom.Emulation.Topology;

/// <summary>
/// Reads a topology file (YAML, described in docs/EMULATION.md) into a <see cref="TopologySpec"/>.
/// Every problem is collected with its line and column; nothing is built until the whole file is
/// valid. Names are checked here (a link to an unknown node, two nodes with one name); the shape of
/// the network (a host with two links, an address outside its subnet) is checked when it is built.
/// </summary>
internal sealed partial class TopologyParser
{
    private const int MaxFileBytes = 4 << 20;
    private readonly string _file;
    private readonly List<TopologyError> _errors = [];
    /// <summary>Nodes whose definition was wrong (already reported): not reported again where they are used.</summary>
    private readonly HashSet<string> _broken = [];

    private TopologyParser(string file) => _file = file;

    public static TopologySpec ParseFile(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new TopologyException([new TopologyError(path, new(0, 0), "no such file")]);
        if (info.Length > MaxFileBytes) throw new TopologyException([new TopologyError(path, new(0, 0), $"the file is {info.Length} bytes; topology files are limited to {MaxFileBytes >> 20} MiB")]);
        return Parse(File.ReadAllText(path), path);
    }

    public static TopologySpec Parse(string yaml, string file = "<topology>")
    {
        var p = new TopologyParser(file);
        var spec = p.ParseDocument(yaml);
        if (p._errors.Count > 0) throw new TopologyException(p._errors);
        return spec!;
    }

    private static SourceLocation At(YamlNode n) => new((int)n.Start.Line, (int)n.Start.Column);
    private void Error(YamlNode n, string message) => _errors.Add(new TopologyError(_file, At(n), message));
    private void Error(SourceLocation at, string message) => _errors.Add(new TopologyError(_file, at, message));

    private TopologySpec? ParseDocument(string yaml)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlException e)
        {
            var msg = e.InnerException?.Message ?? e.Message;
            // YamlDotNet prefixes its own location; ours goes in front in the usual file:line:col form.
            int cut = msg.IndexOf("): ", StringComparison.Ordinal);
            if (msg.StartsWith("(Line", StringComparison.Ordinal) && cut > 0) msg = msg[(cut + 3)..];
            Error(new SourceLocation((int)e.Start.Line, (int)e.Start.Column), $"not valid YAML: {msg}");
            return null;
        }
        if (stream.Documents.Count == 0) { Error(new SourceLocation(1, 1), "the file is empty; a topology needs at least 'nodes' and 'links'"); return null; }
        if (stream.Documents.Count > 1) Error(stream.Documents[1].RootNode, "only one YAML document is allowed");
        if (stream.Documents[0].RootNode is not YamlMappingNode root) { Error(stream.Documents[0].RootNode, "the top level must be a mapping with keys such as nodes, links, apps, events"); return null; }

        var spec = new TopologySpec(_file);
        YamlNode? nodes = null, links = null, apps = null, events = null;
        foreach (var (k, v) in Entries(root, "the top level", "name", "seed", "duration", "ipv6", "nodes", "links", "apps", "events"))
        {
            switch (k)
            {
                case "name": spec = spec with { Name = Scalar(v, "name") }; break;
                case "seed": spec = spec with { Seed = (int)Integer(v, "seed", int.MinValue, int.MaxValue) }; break;
                case "duration": spec = spec with { Duration = Time(v, "duration", positive: true) }; break;
                case "ipv6": spec = spec with { Ipv6 = Bool(v, "ipv6") }; break;
                case "nodes": nodes = v; break;
                case "links": links = v; break;
                case "apps": apps = v; break;
                case "events": events = v; break;
            }
        }
        if (nodes is null) Error(root, "missing 'nodes': list the hosts, switches and routers");
        else ParseNodes(nodes, spec);
        if (links is not null) ParseLinks(links, spec);
        if (apps is not null) ParseApps(apps, spec);
        if (events is not null) ParseEvents(events, spec);
        CheckNames(spec);
        // An IPv6 address or route written anywhere turns IPv6 on, as if the file said ipv6: true.
        if (spec.Nodes.Exists(n => n.Ip6 is not null || n.Gateway6 is not null || n.Routes6.Count > 0) || spec.Links.Exists(l => l.Ip6A is not null || l.Ip6B is not null))
            spec = spec with { Ipv6 = true };
        foreach (var a in spec.Apps.Where(a => a.Ipv6 || a.To is not null && Ipv6Address.TryParse(a.To, out _)))
            if (!spec.Ipv6) { Error(a.At, $"app '{a.Name}' uses IPv6; add 'ipv6: true' at the top level so the network speaks it"); break; }
        return spec;
    }

    /// <summary>The key/value pairs of a mapping, with unknown and repeated keys reported.</summary>
    private IEnumerable<(string Key, YamlNode Value)> Entries(YamlNode node, string what, params string[] allowed)
    {
        if (node is not YamlMappingNode map) { Error(node, $"{what} must be a mapping (key: value lines)"); yield break; }
        var seen = new HashSet<string>();
        foreach (var (kn, v) in map.Children)
        {
            if (kn is not YamlScalarNode { Value: { } key }) { Error(kn, $"{what}: keys must be plain words"); continue; }
            if (!seen.Add(key)) { Error(kn, $"{what}: '{key}' is given twice"); continue; }
            if (Array.IndexOf(allowed, key) < 0) { Error(kn, $"{what}: unknown key '{key}'; expected one of {string.Join(", ", allowed)}"); continue; }
            yield return (key, v);
        }
    }

    private string? Scalar(YamlNode n, string what)
    {
        if (n is YamlScalarNode { Value: { } s } && s.Length > 0) return s;
        Error(n, $"{what} must be a single value");
        return null;
    }

    private long Integer(YamlNode n, string what, long min, long max)
    {
        var s = Scalar(n, what);
        if (s is null) return 0;
        if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) || v < min || v > max)
        {
            Error(n, $"{what} must be a whole number from {min} to {max}, not '{s}'");
            return 0;
        }
        return v;
    }

    private Duration Time(YamlNode n, string what, bool positive = false)
    {
        var s = Scalar(n, what);
        if (s is null) return default;
        if (!Quantity.TryDuration(s, out var d) || positive && d <= Duration.Zero)
        {
            Error(n, $"{what} must be a time such as 250us, 20ms, 1.5s or 2m, not '{s}'");
            return default;
        }
        return d;
    }

    private double Percent(YamlNode n, string what)
    {
        var s = Scalar(n, what);
        if (s is null) return 0;
        if (!Quantity.TryPercent(s, out double p)) { Error(n, $"{what} must be a percentage from 0% to 100% such as 0.5%, not '{s}'"); return 0; }
        return p;
    }

    private long Rate(YamlNode n, string what)
    {
        var s = Scalar(n, what);
        if (s is null) return 0;
        if (!Quantity.TryRate(s, out long r)) { Error(n, $"{what} must be a rate such as 64kbit, 10mbit or 1gbit, not '{s}'"); return 0; }
        return r;
    }

    private long Size(YamlNode n, string what, long max = long.MaxValue)
    {
        var s = Scalar(n, what);
        if (s is null) return 0;
        if (!Quantity.TrySize(s, out long b) || b > max) { Error(n, $"{what} must be a size such as 1500, 64KiB or 10MB" + (max < long.MaxValue ? $" (at most {max} bytes)" : "") + $", not '{s}'"); return 0; }
        return b;
    }

    private Ipv4Address? Address(YamlNode n, string what)
    {
        var s = Scalar(n, what);
        if (s is null) return null;
        if (!Ipv4Address.TryParse(s, out var a)) { Error(n, $"{what} must be an IPv4 address such as 10.0.1.1, not '{s}'"); return null; }
        return a;
    }

    private Ipv6Address? Address6(YamlNode n, string what)
    {
        var s = Scalar(n, what);
        if (s is null) return null;
        if (!Ipv6Address.TryParse(s, out var a) || a.IsMulticast || a.IsUnspecified) { Error(n, $"{what} must be a unicast IPv6 address such as fd00:0:0:1::1, not '{s}'"); return null; }
        return a;
    }

    private Prefix6? Prefix6(YamlNode n, string what)
    {
        var s = Scalar(n, what);
        if (s is null) return null;
        if (!Emulation.Prefix6.TryParse(s, out var p) || p.PrefixLength is < 1 or > 127)
        { Error(n, $"{what} must be an IPv6 address with a prefix length such as fd00:0:0:1::5/64, not '{s}'"); return null; }
        if (p.Address.IsMulticast || p.Address.IsLinkLocal || p.Address.IsLoopback || p.Address.IsUnspecified || p.Address == p.Network)
        { Error(n, $"{what}: {p.Address} cannot be an interface address (multicast, link-local, loopback, or the prefix itself)"); return null; }
        return p;
    }

    private Cidr? Prefix(YamlNode n, string what)
    {
        var s = Scalar(n, what);
        if (s is null) return null;
        if (!Cidr.TryParse(s, out var c)) { Error(n, $"{what} must be an address with a prefix length such as 10.0.1.5/24, not '{s}'"); return null; }
        return c;
    }

    private bool Bool(YamlNode n, string what)
    {
        var s = Scalar(n, what);
        if (s is "true" or "yes" or "on") return true;
        if (s is "false" or "no" or "off") return false;
        if (s is not null) Error(n, $"{what} must be true or false, not '{s}'");
        return false;
    }

    private static bool ValidName(string s) =>
        s.Length is > 0 and <= 32 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') && char.IsAsciiLetter(s[0]);
}
