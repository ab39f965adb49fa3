using Netloom.Emulation;
using Netloom.Emulation.Topology;
using Netloom.Wire;
using Netloom.Wire.Capture;

namespace Netloom.Tests.Emulation;

/// <summary>Dual-stack topologies: a /64 per segment, routers forwarding IPv6, apps of either family.</summary>
public class Ipv6EmulationTests
{
    private const string TwoRouters = """
        duration: 6s
        ipv6: true
        nodes:
          h1: host
          h2: host
          h3: host
          s1: switch
          r1: router
          r2: router
        links:
          - {a: h1, b: s1}
          - {a: h2, b: s1}
          - {a: s1, b: r1}
          - {name: wan, a: r1, b: r2, delay: 5ms}
          - {a: r2, b: h3}
        apps:
          - {name: ping6, type: ping, on: h1, to: h3, ipv6: true, interval: 100ms, count: 20}
          - {name: ping4, type: ping, on: h1, to: h3, interval: 100ms, count: 20}
          - {name: bulk6, type: bulk, on: h1, to: h3, ipv6: true, size: 2MB, start: 500ms}
          - {name: bulk4, type: bulk, on: h2, to: h3, size: 2MB, start: 500ms, port: 5002}
          - {name: rr6, type: rr, on: h3, to: h2, ipv6: true, count: 50, interval: 20ms, start: 500ms}
          - {name: udp6, type: udp, on: h2, to: h3, ipv6: true, rate: 1mbit, size: 500, count: 100, start: 1s}
        """;

    private static Dictionary<string, AppReport> Run(Scenario sc)
    {
        sc.Run();
        return EmulationReport.From(sc.Network).Apps.ToDictionary(a => a.Name);
    }

    [Fact]
    public void Every_segment_gets_a_slash_64_beside_its_slash_24_and_routers_route_both()
    {
        var sc = Scenario.Build(TopologyParser.Parse(TwoRouters, "v6.yaml"));
        var h1 = (HostNode)sc.Network["h1"];
        var h3 = (HostNode)sc.Network["h3"];
        Assert.Equal(Ipv6Address.Parse("fd00:0:0:1::1"), h1.Options.Ipv6Address);
        Assert.Equal(Ipv4Address.Parse("10.0.1.1"), h1.Options.Address);
        Assert.Equal(Ipv6Address.Parse("fd00:0:0:3::2"), h3.Options.Ipv6Address);
        // The hosts' default router is the router on their segment.
        Assert.Equal(Ipv6Address.Parse("fd00:0:0:1::3"), h1.Options.Ipv6Gateway);
        var r1 = sc.Network.Router("r1");
        Assert.Contains(r1.Routes6, r => r.Prefix.Network == Ipv6Address.Parse("fd00:0:0:3::") && r.Via == Ipv6Address.Parse("fd00:0:0:2::2"));
        Assert.Contains(r1.Routes6, r => r.Prefix.Network == Ipv6Address.Parse("fd00:0:0:1::") && r.Via is null);
    }

    [Fact]
    public void Ping_tcp_and_udp_cross_two_routers_over_ipv6_beside_ipv4()
    {
        var sc = Scenario.Build(TopologyParser.Parse(TwoRouters, "v6.yaml"));
        var apps = Run(sc);
        Assert.Equal(20, apps["ping6"].Received);
        Assert.Equal(20, apps["ping4"].Received);
        Assert.Equal("fd00:0:0:3::2", apps["ping6"].Target);
        Assert.True(apps["bulk6"].Completed, $"{apps["bulk6"]}");
        Assert.Equal(2_000_000, apps["bulk6"].Bytes);
        Assert.True(apps["bulk4"].Completed, $"{apps["bulk4"]}");
        Assert.Equal(50, apps["rr6"].Received);
        Assert.Equal(100, apps["udp6"].Received);
        Assert.Equal("[fd00:0:0:1::2]:7000", apps["rr6"].Target);
        var r1 = sc.Network.Router("r1").Counters;
        Assert.True(r1.Forwarded > 0);
        Assert.Equal(0, r1.Malformed);
    }

    [Fact]
    public void The_hop_limit_falls_by_one_per_router_on_the_wire()
    {
        var sc = Scenario.Build(TopologyParser.Parse(TwoRouters, "v6.yaml"));
        var captured = new MemoryStream();
        sc.Network.Capture(sc.Network.Link("wan"), new PcapNgWriter(captured));
        var far = new MemoryStream();
        sc.Network.Capture(sc.Network.Link("r2-h3"), new PcapNgWriter(far));
        Run(sc);
        sc.Network.CloseCaptures();
        // Echo requests from h1 (hop limit 64) cross the wan at 63 and reach h3 at 62.
        Assert.Contains(63, EchoRequestHopLimits(captured.ToArray()));
        Assert.All(EchoRequestHopLimits(far.ToArray()), h => Assert.Equal(62, h));
        Assert.NotEmpty(EchoRequestHopLimits(far.ToArray()));
    }

    private static List<int> EchoRequestHopLimits(byte[] pcapng) =>
        Icmpv6Seen(pcapng).Where(m => m.Type == (byte)Icmpv6Type.EchoRequest).Select(m => (int)m.HopLimit).ToList();

    /// <summary>The ICMPv6 messages in a capture: type, code, hop limit, and the MTU field (for Packet Too Big).</summary>
    private static List<(byte Type, byte Code, byte HopLimit, uint Mtu)> Icmpv6Seen(byte[] pcapng)
    {
        var seen = new List<(byte, byte, byte, uint)>();
        using var reader = CaptureReader.Open(new MemoryStream(pcapng));
        while (reader.Read(out var packet) == CaptureReadResult.Packet)
        {
            if (!EthernetFrame.TryParse(packet.Data, out var eth, out _) || eth.EtherType != (ushort)EtherType.Ipv6) continue;
            if (!Ipv6Packet.TryParse(eth.Payload, out var ip, out _) || ip.NextHeader != (byte)IpProtocol.Icmpv6) continue;
            if (!Icmpv6Message.TryParse(ip.Payload, out var m, out _)) continue;
            Assert.True(m.ChecksumValid(ip.Source, ip.Destination));
            seen.Add((m.Type, m.Code, ip.HopLimit, m.RestOfHeader));
        }
        return seen;
    }

    [Fact]
    public void A_routing_loop_ends_in_hop_limit_exceeded_and_no_route_and_no_neighbour_in_unreachable()
    {
        // r1 sends fd00:99::/64 to r2 and r2 sends it back: the packet loops until its hop limit runs out.
        const string yaml = """
            duration: 8s
            ipv6: true
            nodes:
              h1: host
              r1: {type: router, routes: ["fd00:99::/64 via fd00:0:0:2::2"]}
              r2: {type: router, routes: ["fd00:99::/64 via fd00:0:0:2::1"]}
            links:
              - {a: h1, b: r1}
              - {a: r1, b: r2}
            apps:
              - {name: loop, type: ping, on: h1, to: "fd00:99::1", count: 3}
              - {name: nowhere, type: ping, on: h1, to: "fd00:77::1", count: 3}
              - {name: gone, type: ping, on: h1, to: "fd00:0:0:2::77", count: 3, interval: 100ms}
            """;
        var sc = Scenario.Build(TopologyParser.Parse(yaml, "loop.yaml"));
        var captured = new MemoryStream();
        sc.Network.Capture(sc.Network.Link("h1-r1"), new PcapNgWriter(captured));
        var apps = Run(sc);
        sc.Network.CloseCaptures();
        Assert.Equal(0, apps["loop"].Received);
        var r1 = sc.Network.Router("r1").Counters;
        var r2 = sc.Network.Router("r2").Counters;
        Assert.Equal(3, r1.TtlExceeded + r2.TtlExceeded);
        Assert.Equal(3, r1.NoRoute + r2.NoRoute);
        Assert.Equal(3, r1.HostUnreachable); // the on-link address nobody answers for, after three solicitations
        // h1 hears of all three: Time Exceeded code 0, Destination Unreachable code 0 (no route) and code 3 (address).
        var seen = Icmpv6Seen(captured.ToArray());
        Assert.Equal(3, seen.Count(m => m.Type == (byte)Icmpv6Type.TimeExceeded && m.Code == 0));
        Assert.Equal(3, seen.Count(m => m.Type == (byte)Icmpv6Type.DestinationUnreachable && m.Code == 0));
        Assert.Equal(3, seen.Count(m => m.Type == (byte)Icmpv6Type.DestinationUnreachable && m.Code == 3));
    }

    [Fact]
    public void A_small_mtu_between_routers_sends_packet_too_big_and_tcp_still_arrives()
    {
        var sc = Scenario.Build(TopologyParser.Parse(TwoRouters.Replace("{name: wan, a: r1, b: r2, delay: 5ms}", "{name: wan, a: r1, b: r2, delay: 5ms, mtu: 1280}"), "v6.yaml"));
        var captured = new MemoryStream();
        sc.Network.Capture(sc.Network.Link("h1-s1"), new PcapNgWriter(captured));
        var apps = Run(sc);
        sc.Network.CloseCaptures();
        Assert.True(sc.Network.Router("r1").Counters.FragmentationNeeded > 0);
        Assert.Contains(Icmpv6Seen(captured.ToArray()), m => m.Type == (byte)Icmpv6Type.PacketTooBig && m.Mtu == 1280);
        Assert.True(apps["bulk6"].Completed, $"{apps["bulk6"]}");
        Assert.Equal(2_000_000, apps["bulk6"].Bytes);
    }

    [Fact]
    public void Bad_ipv6_in_a_file_gets_a_clear_error()
    {
        static string Err(string yaml)
        {
            var e = Assert.Throws<TopologyException>(() => Scenario.Build(TopologyParser.Parse(yaml, "bad.yaml")));
            return e.Message;
        }
        Assert.Contains("ipv6: true", Err("""
            nodes: {h1: host, h2: host}
            links: [{a: h1, b: h2}]
            apps: [{type: ping, on: h1, to: h2, ipv6: true}]
            """));
        Assert.Contains("h1.ip6 must be an IPv6 address with a prefix length", Err("""
            nodes: {h1: {type: host, ip6: fd00::1}, h2: host}
            links: [{a: h1, b: h2}]
            """));
        Assert.Contains("is not in fd00:0:0:1::/64", Err("""
            nodes: {h1: {type: host, ip6: "fd00:0:0:1::5/64"}, h2: {type: host, ip6: "fd00:0:0:2::5/64"}}
            links: [{a: h1, b: h2}]
            """));
        Assert.Contains("cannot be an interface address", Err("""
            nodes: {h1: {type: host, ip6: "fe80::1/64"}, h2: host}
            links: [{a: h1, b: h2}]
            """));
        Assert.Contains("'PREFIX via ADDRESS'", Err("""
            ipv6: true
            nodes: {h1: host, r1: {type: router, routes: ["fd00:9::/64 through fd00::1"]}}
            links: [{a: h1, b: r1}]
            """));
        Assert.Contains("is on none of its IPv6 subnets", Err("""
            ipv6: true
            nodes: {h1: host, r1: {type: router, routes: ["fd00:9::/64 via fd00:5::1"]}}
            links: [{a: h1, b: r1}]
            """));
    }

    [Fact]
    public void Written_ipv6_addresses_are_kept_and_turn_ipv6_on()
    {
        const string yaml = """
            duration: 2s
            nodes:
              h1: {type: host, ip6: "2001:db8:1::10/64"}
              h2: host
            links:
              - {a: h1, b: h2}
            apps:
              - {name: p, type: ping, on: h2, to: h1, ipv6: true, count: 5, interval: 100ms}
            """;
        var sc = Scenario.Build(TopologyParser.Parse(yaml, "w.yaml"));
        Assert.Equal(Ipv6Address.Parse("2001:db8:1::10"), ((HostNode)sc.Network["h1"]).Options.Ipv6Address);
        Assert.Equal(Ipv6Address.Parse("2001:db8:1::1"), ((HostNode)sc.Network["h2"]).Options.Ipv6Address);
        Assert.Equal(5, Run(sc)["p"].Received);
    }
}
