using Netloom.Emulation;
using Netloom.Emulation.Apps;
using Netloom.Emulation.Topology;
using Netloom.Netem;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Emulation;

public class TopologyTests
{
    internal static string Examples
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (Directory.Exists(Path.Combine(d.FullName, "examples")) && File.Exists(Path.Combine(d.FullName, "netloom"))) return Path.Combine(d.FullName, "examples");
            throw new DirectoryNotFoundException("examples/ not found above the test binaries");
        }
    }

    private static TopologyError OnlyError(string yaml)
    {
        var e = Assert.Throws<TopologyException>(() => Scenario.Build(TopologyParser.Parse(yaml, "t.yaml")));
        return e.Errors[0];
    }

    [Theory]
    [InlineData("nodes:\n  h1: host\n  h1: host\n", 3, 3, "Duplicate key h1")]
    [InlineData("nodes:\n  h1: {type: host\n", 3, 1, "not valid YAML")]
    [InlineData("nodes:\n  h1: hots\n", 2, 7, "unknown type 'hots'")]
    [InlineData("nodes:\n  h1: host\n  h2: host\nlinks:\n  - {a: h1, b: h3}\n", 5, 16, "no node named 'h3'")]
    [InlineData("nodes:\n  h1: host\n  h2: host\nlinks:\n  - {a: h1, b: h2, loss: lots}\n", 5, 26, "loss must be a percentage")]
    [InlineData("nodes:\n  h1: host\n  h2: host\nlinks:\n  - {a: h1, b: h2, delay: 10 parsecs}\n", 5, 27, "delay must be a time")]
    [InlineData("nodes:\n  h1: host\n  h2: host\nlinks:\n  - {a: h1, b: h2, wobble: 3}\n", 5, 20, "unknown key 'wobble'")]
    [InlineData("nodes:\n  h1: host\n  h2: host\nlinks:\n  - {a: h1, b: h2, queue: 10}\n", 5, 5, "a queue limit needs a rate")]
    [InlineData("nodes:\n  h1: host\n  h2: host\n  s: switch\nlinks:\n  - {a: h1, b: s}\n  - {a: h2, b: s}\n  - {a: h1, b: h2}\n", 2, 3, "has 2 links")]
    [InlineData("nodes:\n  h1: {type: host, ip: 10.0.0.1/24}\n  h2: {type: host, ip: 10.0.1.2/24}\nlinks:\n  - {a: h1, b: h2}\n", 3, 3, "is not in 10.0.0.0/24")]
    [InlineData("nodes:\n  h1: host\n  h2: host\nlinks:\n  - {a: h1, b: h2}\napps:\n  - {type: ping, on: h1}\n", 7, 5, "needs 'to'")]
    [InlineData("nodes:\n  h1: host\n  s: switch\nlinks:\n  - {a: h1, b: s}\napps:\n  - {type: echo, on: s}\n", 7, 5, "apps run on hosts")]
    [InlineData("nodes:\n  h1: host\n  h2: host\nlinks:\n  - {a: h1, b: h2}\nevents:\n  - {at: 1s, link: nope, action: down}\n", 7, 5, "no link named 'nope'")]
    [InlineData("duration: 5s\nnodes:\n  h1: host\n  h2: host\nlinks:\n  - {a: h1, b: h2}\nevents:\n  - {at: 9s, link: h1-h2, action: down}\n", 8, 5, "after the end of the run")]
    [InlineData("nodes:\n  r: {type: router, routes: [\"10.9.0.0/16 through 10.0.0.2\"]}\n", 2, 30, "must read 'PREFIX via ADDRESS'")]
    [InlineData("seed: many\nnodes:\n  h: host\n", 1, 7, "seed must be a whole number")]
    [InlineData("- just\n- a list\n", 1, 1, "top level must be a mapping")]
    [InlineData("links: []\n", 1, 1, "missing 'nodes'")]
    public void Invalid_files_get_the_line_column_and_what_is_wrong(string yaml, int line, int column, string message)
    {
        var e = OnlyError(yaml);
        Assert.Contains(message, e.Message);
        Assert.Equal((line, column), (e.At.Line, e.At.Column));
        Assert.StartsWith($"t.yaml:{line}:{column}: ", e.ToString());
    }

    [Fact]
    public void Every_problem_in_a_file_is_reported_not_just_the_first()
    {
        var e = Assert.Throws<TopologyException>(() => TopologyParser.Parse("nodes:\n  h1: hots\n  h2: host\nlinks:\n  - {a: h1, b: h9, loss: 200%}\n", "t.yaml"));
        Assert.True(e.Errors.Count >= 3, string.Join("\n", e.Errors));
    }

    [Fact]
    public void Every_example_parses_builds_and_runs_a_second()
    {
        var files = Directory.GetFiles(Examples, "*.yaml");
        Assert.NotEmpty(files);
        foreach (var f in files)
        {
            // Linux and process nodes need --realtime (and the CLI, or root): refused here, with that reason.
            if (TopologyParser.ParseFile(f).Nodes.Exists(n => n.Kind is NodeKind.Linux or NodeKind.Process))
            {
                Assert.Contains("--realtime", Assert.Throws<TopologyException>(() => Scenario.Load(f)).Message);
                continue;
            }
            var sc = Scenario.Load(f);
            sc.Network.Run(Duration.FromSeconds(1));
            Assert.True(sc.Network.PacketHops > 0, f);
        }
    }

    [Fact]
    public void Segments_get_subnets_hosts_get_gateways_and_routers_get_shortest_path_routes()
    {
        // h1 - r1 - r2 - r3 - h2, plus a shortcut r1 - r3 that the routes must prefer.
        var sc = Scenario.Build(TopologyParser.Parse("""
            duration: 5s
            nodes:
              h1: host
              h2: host
              r1: router
              r2: router
              r3: router
            links:
              - {a: h1, b: r1}
              - {a: r1, b: r2}
              - {a: r2, b: r3}
              - {a: r3, b: h2}
              - {name: shortcut, a: r1, b: r3, delay: 1ms}
            apps:
              - {type: ping, on: h1, to: h2, interval: 100ms, count: 20}
            """));
        var net = sc.Network;
        Assert.Equal(Ipv4Address.Parse("10.0.1.1"), net.Host("h1").Stack.Address);
        Assert.Equal(Ipv4Address.Parse("10.0.1.2"), net.Host("h1").Options.Gateway);
        Assert.Equal(Ipv4Address.Parse("10.0.4.2"), net.Host("h2").Stack.Address);
        var viaShortcut = net.Router("r1").Routes.Single(r => r.Prefix == Ipv4Address.Parse("10.0.4.0"));
        Assert.Equal(Ipv4Address.Parse("10.0.5.2"), viaShortcut.Via);
        sc.Run();
        var ping = (PingApp)sc.Apps[0];
        Assert.Equal(20, ping.Rtt.Count);
        Assert.True(net.Link("shortcut").AtoB.Counters.Delivered >= 20);
        Assert.Equal(0, net.Link("r1-r2").AtoB.Counters.Delivered - net.Link("r1-r2").AtoB.Counters.Delivered); // nothing needs r2
        Assert.True(net.Router("r2").Counters.Forwarded == 0);
    }

    [Fact]
    public void Link_failure_partition_and_crash_events_happen_at_their_times()
    {
        var sc = Scenario.Build(TopologyParser.Parse("""
            duration: 30s
            nodes:
              h1: host
              h2: host
              s1: switch
            links:
              - {a: h1, b: s1}
              - {a: h2, b: s1, delay: 1ms}
            apps:
              - {type: ping, on: h1, to: h2, interval: 100ms}
              - {type: echo, on: h2, port: 7}
            events:
              - {at: 5s, link: h2-s1, action: down}
              - {at: 7s, link: h2-s1, action: up}
              - {at: 10s, action: partition, groups: [[h1], [h2, s1]]}
              - {at: 12s, action: heal}
              - {at: 15s, node: h2, action: crash}
              - {at: 17s, node: h2, action: restart}
              - {at: 20s, link: h2-s1, action: set, set: {loss: 100%}}
              - {at: 22s, link: h2-s1, action: set, a_to_b: {loss: 0%}, b_to_a: {loss: 0%}}
            """));
        var net = sc.Network;
        var ping = (PingApp)sc.Apps[0];
        sc.Run();
        // 301 pings (0 s to 30 s inclusive); about 2 s lost to each of the four faults: 4 × 20, a little more for ARP after the restart.
        var r = ping.Report(net.Now);
        Assert.Equal(301, r.Sent);
        Assert.InRange(r.Received!.Value, 301 - 4 * 20 - 12, 301 - 4 * 20 + 4);
        Assert.True(net.Link("h2-s1").AtoB.Counters.Drops(LinkDrop.Down) + net.Link("h2-s1").BtoA.Counters.Drops(LinkDrop.Down) > 0);
        Assert.True(net.Link("h2-s1").BtoA.Counters.Drops(LinkDrop.NodeDown) > 0);
        Assert.True(net.Link("h2-s1").BtoA.Counters.Drops(LinkDrop.Loss) >= 19); // the requests towards h2 while loss was 100%
        Assert.True(net.Links.All(l => l.IsUp));
        Assert.Equal(0.0, net.Link("h2-s1").AtoB.Impairments.Loss);
        Assert.Equal(TimeSpan.FromMilliseconds(1), TimeSpan.FromTicks(net.Link("h2-s1").AtoB.Impairments.Delay.Nanoseconds / 100)); // 'set' kept the delay
    }

    [Fact]
    public void The_same_seed_gives_byte_identical_captures_and_reports_and_another_seed_does_not()
    {
        string file = Path.Combine(Examples, "two-lans.yaml");
        (byte[] Report, Dictionary<string, byte[]> Captures) RunOnce(int seed)
        {
            using var dir = new Support.TempDir();
            var sc = Scenario.Load(file, seed);
            sc.CaptureTo(dir.Path);
            sc.Run();
            var ms = new MemoryStream();
            EmulationReport.From(sc.Network, sc.Spec.Name).WriteJson(ms);
            var caps = Directory.GetFiles(dir.Path).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
            return (ms.ToArray(), caps);
        }
        var a = RunOnce(5);
        var b = RunOnce(5);
        var c = RunOnce(6);
        Assert.Equal(a.Report, b.Report);
        Assert.Equal(7, a.Captures.Count);
        foreach (var (name, bytes) in a.Captures)
        {
            Assert.True(bytes.Length > 10_000, $"{name} is only {bytes.Length} bytes");
            Assert.True(bytes.AsSpan().SequenceEqual(b.Captures[name]), $"{name} differs between two runs with seed 5");
        }
        Assert.NotEqual(a.Report, c.Report);
        Assert.False(a.Captures["wan.pcapng"].AsSpan().SequenceEqual(c.Captures["wan.pcapng"]));
    }
}
