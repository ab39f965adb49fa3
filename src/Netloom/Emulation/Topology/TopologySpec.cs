using Netloom.Netem;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Emulation.Topology;

/// <summary>Where something was written in a topology file (1-based).</summary>
public readonly record struct SourceLocation(int Line, int Column)
{
    public override string ToString() => $"{Line}:{Column}";
}

/// <summary>One problem found in a topology file.</summary>
public sealed record TopologyError(string File, SourceLocation At, string Message)
{
    public override string ToString() => $"{File}:{At.Line}:{At.Column}: {Message}";
}

/// <summary>Thrown when a topology file is invalid; <see cref="Errors"/> lists every problem found.</summary>
public sealed class TopologyException(IReadOnlyList<TopologyError> errors)
    : Exception(string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<TopologyError> Errors { get; } = errors;
}

internal enum NodeKind { Host, Switch, Router, Linux, Process }

/// <summary>An address with its prefix length, as written "10.0.1.5/24".</summary>
internal readonly record struct Cidr(Ipv4Address Address, int PrefixLength)
{
    public uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);
    public Ipv4Address Network => new(Address.Value & Mask);
    public bool Contains(Ipv4Address a) => (a.Value & Mask) == (Address.Value & Mask);

    public static bool TryParse(string text, out Cidr cidr)
    {
        cidr = default;
        var parts = text.Trim().Split('/');
        if (parts.Length != 2 || !Ipv4Address.TryParse(parts[0], out var a) || !int.TryParse(parts[1], out int p) || p < 0 || p > 32) return false;
        cidr = new Cidr(a, p);
        return true;
    }

    public override string ToString() => $"{Address}/{PrefixLength}";
}

internal sealed record RouteSpec(Cidr Prefix, Ipv4Address Via, SourceLocation At);

internal sealed record Route6Spec(Prefix6 Prefix, Ipv6Address Via, SourceLocation At);

internal sealed record NodeSpec(string Name, NodeKind Kind, SourceLocation At)
{
    public Cidr? Ip { get; init; }
    public Ipv4Address? Gateway { get; init; }
    public Prefix6? Ip6 { get; init; }
    public Ipv6Address? Gateway6 { get; init; }
    public int Mtu { get; init; } = 1500;
    public List<RouteSpec> Routes { get; init; } = [];
    public List<Route6Spec> Routes6 { get; init; } = [];
    /// <summary>Routers: the access list, in order.</summary>
    public List<AccessRule> Acl { get; init; } = [];
    /// <summary>Routers: add shortest-path routes to every subnet not reached by a static route.</summary>
    public bool AutoRoutes { get; init; } = true;
    /// <summary>Process nodes: the program and its arguments; "{NODE}" in an argument becomes that node's address.</summary>
    public string[] Run { get; init; } = [];
    /// <summary>Process nodes: when the program starts, after the network does.</summary>
    public Duration Start { get; init; }
}

internal sealed record LinkSpec(string Name, string A, string B, SourceLocation At)
{
    public SourceLocation AAt { get; init; }
    public SourceLocation BAt { get; init; }
    public Cidr? IpA { get; init; }
    public Cidr? IpB { get; init; }
    public Prefix6? Ip6A { get; init; }
    public Prefix6? Ip6B { get; init; }
    public Impairments AtoB { get; init; } = Impairments.None;
    public Impairments BtoA { get; init; } = Impairments.None;
    public int Mtu { get; init; } = 1500;
}

internal enum AppKind { Ping, Bulk, Rr, Udp, Echo, Http, Sink }

internal sealed record AppSpec(string Name, AppKind Kind, string On, SourceLocation At)
{
    /// <summary>A node name, or an IPv4 or IPv6 address.</summary>
    public string? To { get; init; }
    /// <summary>Reach a node named in <see cref="To"/> at its IPv6 address rather than its IPv4 one.</summary>
    public bool Ipv6 { get; init; }
    public SourceLocation ToAt { get; init; }
    public ushort Port { get; init; }
    public Duration Start { get; init; }
    public Duration Interval { get; init; }
    public Duration For { get; init; }
    public long Count { get; init; }
    public long Size { get; init; }
    public long Request { get; init; } = 64;
    public long Response { get; init; } = 1024;
    public long Rate { get; init; }
    public Stack.CongestionAlgorithm Congestion { get; init; } = Stack.CongestionAlgorithm.Cubic;
}

internal enum EventAction { Down, Up, Set, Partition, Heal, Crash, Restart }

internal sealed record EventSpec(Duration At, EventAction Action, SourceLocation Where)
{
    public string? Link { get; init; }
    public string? Node { get; init; }
    public List<List<string>> Groups { get; init; } = [];
    /// <summary>For "set": what changes in each direction (only the keys written; the rest stays).</summary>
    public Func<Impairments, Impairments>? ChangeAtoB { get; init; }
    public Func<Impairments, Impairments>? ChangeBtoA { get; init; }
}

/// <summary>A whole topology file, parsed and checked.</summary>
internal sealed record TopologySpec(string File)
{
    public string? Name { get; init; }
    public int Seed { get; init; } = 1;
    public Duration Duration { get; init; } = Duration.FromSeconds(10);
    /// <summary>Every segment also gets an IPv6 /64 and every router forwards IPv6 (dual stack).</summary>
    public bool Ipv6 { get; init; }
    public List<NodeSpec> Nodes { get; init; } = [];
    public List<LinkSpec> Links { get; init; } = [];
    public List<AppSpec> Apps { get; init; } = [];
    public List<EventSpec> Events { get; init; } = [];
}
