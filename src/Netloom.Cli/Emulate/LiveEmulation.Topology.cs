using Netloom.Emulation;
using Netloom.Emulation.Topology;
using Netloom.Netem;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Cli.Emulate;

/// <summary>The live API's changes to the topology: nodes and links added or removed while the network runs.</summary>
internal sealed partial class LiveEmulation
{
    private static readonly System.Text.RegularExpressions.Regex NamePattern = new("^[A-Za-z][A-Za-z0-9_.-]{0,31}$");

    private static (Ipv4Address Address, int Prefix) ParseCidr(string text, string what)
    {
        var parts = text.Split('/');
        if (parts.Length != 2 || !Ipv4Address.TryParse(parts[0], out var a) || !int.TryParse(parts[1], out int p) || p < 1 || p > 32)
            throw new ApiException(400, $"{what} must be an IPv4 address with a prefix length, such as 10.0.1.5/24, not '{text}'");
        return (a, p);
    }

    /// <summary>Adds a host, switch, router or process node to the running network (linux nodes need a file and root).</summary>
    public object AddNode(string name, string type, string? ip, string? gateway, int mtu, string[]? run = null, Duration start = default, string? ip6 = null, string? gateway6 = null)
    {
        var net = _sc.Network;
        if (!NamePattern.IsMatch(name)) throw new ApiException(400, $"'{name}' is not a node name: a letter, then letters, digits, '-', '_' or '.'; at most 32");
        if (net.Nodes.Any(n => n.Name == name && !n.Removed)) throw new ApiException(409, $"a node named '{name}' already exists");
        if ((ip6 ?? gateway6) is not null && type is not ("host" or "process"))
            throw new ApiException(400, "ip6 and gateway6 are for a host or a process node; a router's IPv6 addresses come with its links (a_ip6, b_ip6)");
        Node node;
        switch (type)
        {
            case "host":
                if (ip is null) throw new ApiException(400, "a host needs 'ip', such as \"10.0.1.5/24\"");
                var (a, p) = ParseCidr(ip, "ip");
                Ipv4Address? gw = null;
                if (gateway is not null) gw = Ipv4Address.TryParse(gateway, out var g) ? g : throw new ApiException(400, $"gateway must be an IPv4 address, not '{gateway}'");
                if (mtu < 68 || mtu > net.Options.MaxMtu) throw new ApiException(400, $"mtu must be 68 to {net.Options.MaxMtu}");
                var v6 = Ipv6Settings(ip6, gateway6);
                node = net.AddHost(name, a, p, gw, mtu, v6 is { } s6 ? HostNode.StaticIpv6(s6.Address, s6.Gateway) : null);
                break;
            case "switch": node = net.AddSwitch(name); break;
            case "router": node = net.AddRouter(name); break;
            case "process":
                if (!_sc.RealTime) throw new ApiException(400, "a process node runs a real program, which needs real time: serve with --realtime");
                if (run is not { Length: > 0 }) throw new ApiException(400, "a process node needs 'run': the program and its arguments, such as [\"redis-server\", \"--port\", \"6379\"]");
                if (ip is null) throw new ApiException(400, "a process node needs 'ip', such as \"10.0.1.5/24\"");
                var (pa, pp) = ParseCidr(ip, "ip");
                Ipv4Address? pgw = null;
                if (gateway is not null) pgw = Ipv4Address.TryParse(gateway, out var g2) ? g2 : throw new ApiException(400, $"gateway must be an IPv4 address, not '{gateway}'");
                if (mtu < 576 || mtu > net.Options.MaxMtu) throw new ApiException(400, $"a process node's mtu must be 576 to {net.Options.MaxMtu}");
                var pv6 = Ipv6Settings(ip6, gateway6);
                var process = net.AddProcess(name, run, pa, pp, pgw, mtu, start.Nanoseconds, Environment.CurrentDirectory);
                if (pv6 is { } ps6) process.SetIpv6(ps6.Address, ps6.Gateway);
                node = process;
                break;
            default: throw new ApiException(400, $"unknown node type '{type}'; the API adds host, switch, router or process");
        }
        _events.Publish("node", new { node = name, action = "added", at = net.Elapsed.TotalSeconds });
        return NodeState(node);
    }

    /// <summary>Takes a node out of the running network, with its links (a process node's program is stopped).</summary>
    public object RemoveNode(string name)
    {
        var n = FindNode(name);
        var links = n.Ports.Where(p => p.Link is not null).Select(p => p.Link!.Name).ToList();
        _sc.Network.Remove(n);
        _events.Publish("node", new { node = name, action = "removed", links, at = _sc.Network.Elapsed.TotalSeconds });
        return new { removed = name, links };
    }

    /// <summary>Takes a link out of the running network; frames in flight on it are lost.</summary>
    public object RemoveLink(string name)
    {
        var l = FindLink(name);
        _sc.Network.Remove(l);
        _events.Publish("link", new { link = name, action = "removed", at = _sc.Network.Elapsed.TotalSeconds });
        return new { removed = name };
    }

    private static (Prefix6 Address, Ipv6Address? Gateway)? Ipv6Settings(string? ip6, string? gateway6)
    {
        if (ip6 is null) return gateway6 is null ? null : throw new ApiException(400, "gateway6 needs ip6");
        var a = ParsePrefix6(ip6, "ip6");
        Ipv6Address? gw = null;
        if (gateway6 is not null) gw = Ipv6Address.TryParse(gateway6, out var g) && !g.IsMulticast ? g : throw new ApiException(400, $"gateway6 must be a unicast IPv6 address, not '{gateway6}'");
        return (a, gw);
    }

    private static Prefix6 ParsePrefix6(string text, string key) =>
        Prefix6.TryParse(text, out var p) && p.PrefixLength is >= 1 and <= 127 && !p.Address.IsMulticast && !p.Address.IsLinkLocal && !p.Address.IsUnspecified && p.Address != p.Network
            ? p
            : throw new ApiException(400, $"{key} must be a unicast IPv6 address with a prefix length, such as \"fd00:0:0:1::5/64\", not '{text}'");

    /// <summary>Joins two nodes of the running network with a new link.</summary>
    public object AddLink(string a, string b, string? name, string? aIp, string? bIp, int mtu, string? impairments, string? aIp6 = null, string? bIp6 = null)
    {
        var net = _sc.Network;
        Node na = FindNode(a, 400), nb = FindNode(b, 400);
        name ??= $"{a}-{b}";
        if (!NamePattern.IsMatch(name)) throw new ApiException(400, $"'{name}' is not a link name: a letter, then letters, digits, '-', '_' or '.'; at most 32");
        if (net.Links.Any(l => l.Name == name && !l.Removed)) throw new ApiException(409, $"a link named '{name}' already exists");
        if (mtu < 68 || mtu > net.Options.MaxMtu) throw new ApiException(400, $"mtu must be 68 to {net.Options.MaxMtu}");
        RouterAddress? Addr(Node n, string? text, string key)
        {
            if (text is null) return null;
            if (n is not RouterNode) throw new ApiException(400, $"{key} is for a router's end; {n.Name} is not a router");
            var (ad, p) = ParseCidr(text, key);
            return new RouterAddress(ad, p);
        }
        var ra = Addr(na, aIp, "a_ip");
        var rb = Addr(nb, bIp, "b_ip");
        Prefix6? Addr6(Node n, string? text, string key)
        {
            if (text is null) return null;
            if (n is not RouterNode) throw new ApiException(400, $"{key} is for a router's end; {n.Name} is not a router");
            return ParsePrefix6(text, key);
        }
        var ra6 = Addr6(na, aIp6, "a_ip6");
        var rb6 = Addr6(nb, bIp6, "b_ip6");
        Impairments ab = Netloom.Netem.Impairments.None, ba = Netloom.Netem.Impairments.None;
        if (impairments is not null)
        {
            try
            {
                var (fab, fba) = TopologyParser.ParseLinkChange(impairments);
                ab = fab?.Invoke(ab) ?? ab;
                ba = fba?.Invoke(ba) ?? ba;
            }
            catch (TopologyException e) { throw new ApiException(400, string.Join("; ", e.Errors.Select(x => x.ToString()))); }
        }
        Link link;
        try { link = net.Connect(na, nb, ab with { Mtu = mtu }, ba with { Mtu = mtu }, name, ra, rb, mtu); }
        catch (ArgumentException e) { throw new ApiException(400, e.Message); }
        if (ra6 is { } x6) ((RouterNode)na).SetAddress6(link.A.Index, x6);
        if (rb6 is { } y6) ((RouterNode)nb).SetAddress6(link.B.Index, y6);
        GrowSamples();
        _events.Publish("link", new { link = name, action = "added", at = net.Elapsed.TotalSeconds });
        return LinkState(link);
    }

    private void GrowSamples()
    {
        int n = _sc.Network.Links.Count * 2;
        if (_rateBps.Length >= n) return;
        Array.Resize(ref _lastBytes, n);
        Array.Resize(ref _lastSent, n);
        Array.Resize(ref _lastDrops, n);
        Array.Resize(ref _rateBps, n);
        Array.Resize(ref _recentLoss, n);
    }
}
