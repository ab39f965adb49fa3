using Netloom.Emulation;
using Netloom.Emulation.Topology;

namespace Netloom.Tests.Emulation;

public class AccessListTests
{
    private const string Net = """
        duration: 5s
        nodes:
          h1: host
          h2: host
          r1:
            type: router
            acl: ["drop tcp to 10.0.2.0/24 port 80", "accept any"]
        links:
          - {a: h1, b: r1, a_ip: 10.0.1.2/24, b_ip: 10.0.1.1/24}
          - {a: r1, b: h2, a_ip: 10.0.2.1/24, b_ip: 10.0.2.2/24}
        apps:
          - {name: web, type: rr, on: h1, to: h2, port: 80, count: 5}
          - {name: other, type: rr, on: h1, to: h2, port: 8080, count: 5}
          - {name: ping, type: ping, on: h1, to: h2, interval: 200ms, count: 10}
        """;

    [Fact]
    public void A_router_access_list_drops_one_port_and_lets_the_rest_through()
    {
        var sc = Scenario.Build(TopologyParser.Parse(Net, "acl.yaml"));
        sc.Run();
        var apps = EmulationReport.From(sc.Network).Apps.ToDictionary(a => a.Name);
        Assert.Equal(0, apps["web"].Received ?? 0);     // port 80: no SYN gets through
        Assert.False(apps["web"].Completed);
        Assert.Equal(5, apps["other"].Received);        // port 8080: served
        Assert.True(apps["ping"].Received >= 9, $"{apps["ping"]}"); // ICMP: accepted (the first may go to ARP)
        Assert.True(sc.Network.Router("r1").Counters.AccessDenied > 0);
    }

    [Fact]
    public void Without_the_rule_the_same_port_is_served()
    {
        var sc = Scenario.Build(TopologyParser.Parse(Net.Replace("\"drop tcp to 10.0.2.0/24 port 80\", ", ""), "acl.yaml"));
        sc.Run();
        Assert.Equal(5, EmulationReport.From(sc.Network).Apps.Single(a => a.Name == "web").Received);
        Assert.Equal(0, sc.Network.Router("r1").Counters.AccessDenied);
    }

    [Fact]
    public void An_icmp_rule_drops_fragmentation_needed_and_makes_a_path_mtu_black_hole()
    {
        // r2's link towards h2 has MTU 1000: r2 answers big DF packets with Fragmentation Needed,
        // which r1's access list drops on its way back to h1, so the sender never hears why its
        // full-size segments vanish. (Netloom's own stack does not do path MTU discovery yet, so
        // the transfer stalls either way; a linux node's kernel would recover only without the rule.)
        const string yaml = """
            duration: 10s
            nodes:
              h1: host
              h2: host
              r1: {type: router, acl: ["drop icmp from 10.9.0.0/30"]}
              r2: router
            links:
              - {a: h1, b: r1, a_ip: 10.0.1.2/24, b_ip: 10.0.1.1/24}
              - {a: r1, b: r2, a_ip: 10.9.0.1/30, b_ip: 10.9.0.2/30}
              - {a: r2, b: h2, a_ip: 10.0.2.1/24, b_ip: 10.0.2.2/24, mtu: 1000}
            apps:
              - {name: bulk, type: bulk, on: h1, to: h2, size: 200KB}
            """;
        var holed = Scenario.Build(TopologyParser.Parse(yaml, "pmtu.yaml"));
        holed.Run();
        long fragNeeded = holed.Network.Router("r2").Counters.FragmentationNeeded;
        Assert.True(fragNeeded > 0);
        Assert.Equal(fragNeeded, holed.Network.Router("r1").Counters.AccessDenied); // every one dropped
        long toH1 = holed.Network.Link("h1-r1").BtoA.Counters.Delivered;

        var open = Scenario.Build(TopologyParser.Parse(yaml.Replace("r1: {type: router, acl: [\"drop icmp from 10.9.0.0/30\"]}", "r1: router"), "pmtu.yaml"));
        open.Run();
        Assert.Equal(0, open.Network.Router("r1").Counters.AccessDenied);
        // Without the rule, the Fragmentation Needed messages reach h1.
        Assert.True(open.Network.Link("h1-r1").BtoA.Counters.Delivered >= toH1 + open.Network.Router("r2").Counters.FragmentationNeeded);
    }

    [Theory]
    [InlineData("permit any", "an access rule starts with accept or drop")]
    [InlineData("drop gre", "unknown protocol 'gre'")]
    [InlineData("drop port 80", "a port needs tcp or udp before it")]
    [InlineData("drop tcp to 10.0.0.0/33", "to needs a prefix")]
    [InlineData("drop tcp port 0", "port must be 1 to 65535")]
    [InlineData("drop tcp from", "'from' needs a value")]
    public void A_bad_rule_is_reported_with_its_place(string rule, string message)
    {
        var e = Assert.Throws<TopologyException>(() => TopologyParser.Parse($"nodes:\n  r1: {{type: router, acl: [\"{rule}\"]}}\n", "t.yaml"));
        var error = Assert.Single(e.Errors);
        Assert.StartsWith("t.yaml:2:", error.ToString());
        Assert.Contains(message, error.ToString());
    }

    [Fact]
    public void The_troubleshooting_example_has_its_three_faults()
    {
        var sc = Scenario.Load(Path.Combine(TopologyTests.Examples, "troubleshoot.yaml"));
        sc.Run();
        var net = sc.Network;
        var apps = EmulationReport.From(net).Apps.ToDictionary(a => a.Name);
        Assert.True(apps["ping-h2"].Received > 50, $"{apps["ping-h2"]}");       // the path to h2 works for small packets
        // 1. The wrong route: r2 sends h3's prefix back to r1, which sends it to r2 again, until the TTL runs out.
        Assert.Equal(0, apps["ping-h3"].Received);
        Assert.True(net.Router("r1").Counters.TtlExceeded + net.Router("r2").Counters.TtlExceeded > 0);
        // 2. The MTU black hole: r3 asks for smaller packets, r2 drops the ICMP, the transfer moves nothing.
        Assert.Equal(0, apps["bulk-h2"].Bytes);
        Assert.True(net.Router("r3").Counters.FragmentationNeeded > 0);
        // 3. The access list: port 80 gets nothing through.
        Assert.Equal(0, apps["web-h2"].Received);
        Assert.True(net.Router("r2").Counters.AccessDenied > net.Router("r3").Counters.FragmentationNeeded);
    }
}
