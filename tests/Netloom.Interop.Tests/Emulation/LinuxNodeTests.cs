using Netloom.Emulation;
using Netloom.Emulation.Apps;
using Netloom.Interop.Tests.Support;
using Netloom.Netem;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Interop.Tests.Emulation;

/// <summary>
/// A real Linux namespace as a node of an emulated network in real time: the kernel's curl and
/// ping reach a user-level HTTP host across two emulated routers and an impaired WAN link.
/// </summary>
public class LinuxNodeTests
{
    private static Ipv4Address Ip(string s) => Ipv4Address.Parse(s);

    [RootFact("ip")]
    public void Two_networks_in_one_process_with_linux_nodes_of_the_same_name_get_their_own_namespaces()
    {
        // Tests build networks side by side in one process (two test classes each had a "client":
        // the second failed with "ip netns add ...: File exists").
        using var first = new Network();
        using var second = new Network();
        var a = first.AddLinux("client", Ip("10.77.1.2"));
        var b = second.AddLinux("client", Ip("10.77.1.2"));
        Assert.NotEqual(a.Namespace, b.Namespace);
        string list = Sh.Ok("ip", "netns", "list");
        Assert.Contains(a.Namespace, list);
        Assert.Contains(b.Namespace, list);
        Assert.Contains("10.77.1.2/24", Sh.Ok("ip", "-n", b.Namespace, "addr"));
        first.Dispose();
        second.Dispose();
        list = Sh.Ok("ip", "netns", "list");
        Assert.DoesNotContain(a.Namespace, list);
        Assert.DoesNotContain(b.Namespace, list);
    }

    [RootFact("curl", "ping")]
    public void Curl_in_a_namespace_downloads_through_an_emulated_wan_from_a_user_level_host()
    {
        using var net = new Network(new NetworkOptions { Seed = 4 });
        var linux = net.AddLinux("client", Ip("10.77.1.2"), 24, Ip("10.77.1.1"));
        var r1 = net.AddRouter("r1");
        var r2 = net.AddRouter("r2");
        var web = net.AddHost("web", Ip("10.77.2.10"), 24, Ip("10.77.2.1"));
        net.Connect(linux, r1, addressB: new RouterAddress(Ip("10.77.1.1"), 24));
        var wan = net.Connect(r1, r2, new Impairments { Delay = Duration.FromMilliseconds(5), Loss = 0.005, RateBitsPerSecond = 200_000_000, QueuePackets = 1000 },
            name: "wan", addressA: new RouterAddress(Ip("10.77.9.1"), 30), addressB: new RouterAddress(Ip("10.77.9.2"), 30));
        net.Connect(r2, web, addressA: new RouterAddress(Ip("10.77.2.1"), 24));
        r1.AddRoute(new Route(Ip("10.77.2.0"), 24, 1, Ip("10.77.9.2")));
        r2.AddRoute(new Route(Ip("10.77.1.0"), 24, 0, Ip("10.77.9.1")));
        net.Start(new HttpServerApp("http", web, 80, 1 << 20));

        bool done = false;
        var runner = new Thread(() => net.RunRealTime(Duration.FromSeconds(120), () => Volatile.Read(ref done))) { IsBackground = true };
        runner.Start();
        try
        {
            using var dir = new TempDir();
            var ping = Sh.Run(TimeSpan.FromSeconds(30), "ip", "netns", "exec", linux.Namespace, "ping", "-c", "5", "-i", "0.2", "-W", "2", "10.77.2.10");
            Assert.True(ping.Code == 0, ping.Out + ping.Err);
            Assert.Contains(" 0% packet loss", ping.Out.Replace(" 20% packet loss", " 0% packet loss")); // one ARP-delayed first reply at most
            string file = dir.File("body");
            var curl = Sh.Run(TimeSpan.FromSeconds(60), "ip", "netns", "exec", linux.Namespace, "curl", "-s", "-o", file, "-w", "%{http_code} %{size_download}", "http://10.77.2.10/4194304");
            Assert.True(curl.Code == 0, curl.Err);
            Assert.Equal("200 4194304", curl.Out.Trim());
            var body = File.ReadAllBytes(file);
            for (int i = 0; i < body.Length; i++) if (body[i] != (byte)('a' + i % 26)) Assert.Fail($"byte {i} is {body[i]}");
        }
        finally
        {
            Volatile.Write(ref done, true);
            runner.Join(TimeSpan.FromSeconds(10));
        }
        // 4 MiB in: at least 2,873 full segments to the kernel; its ACKs cover two or more
        // segments each (stretch ACKs under load), so a few hundred at least come back.
        Assert.True(linux.FramesFromKernel > 300 && linux.FramesToKernel > 2800, $"frames from the kernel {linux.FramesFromKernel}, to it {linux.FramesToKernel}");
        Assert.True(wan.AtoB.Counters.Delivered + wan.BtoA.Counters.Delivered > 3000);
        Assert.True(wan.AtoB.Counters.Drops(LinkDrop.Loss) + wan.BtoA.Counters.Drops(LinkDrop.Loss) > 0, "the WAN dropped nothing: the loss was not exercised");
    }
}

/// <summary>The linux-wan example as a user runs it: the CLI in real time, curl in the namespace it prints.</summary>
public class LinuxNodeCliTests
{
    private static string Cli => Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll");

    private static string Example
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "examples", "linux-wan.yaml"))) return Path.Combine(d.FullName, "examples", "linux-wan.yaml");
            throw new FileNotFoundException("examples/linux-wan.yaml not found above the test binaries");
        }
    }

    [RootFact("curl")]
    public void The_linux_wan_example_serves_curl_in_its_namespace_and_ctrl_c_ends_it_with_a_report()
    {
        using var dir = new TempDir();
        string report = dir.File("report.json"), body = dir.File("body");
        using var emulate = new Background("run commands in it with: ip netns exec", "dotnet", Cli, "emulate", Example, "--realtime", "--report", report);
        emulate.WaitReady(60);
        var m = System.Text.RegularExpressions.Regex.Match(emulate.Log, @"ip netns exec (\S+) COMMAND");
        Assert.True(m.Success, emulate.Log);
        string ns = m.Groups[1].Value;
        // The file's addressing: the client's segment is 10.0.1.0/24, the web host's 10.0.3.0/24 (its router is .1).
        var curl = Sh.Run(TimeSpan.FromSeconds(60), "ip", "netns", "exec", ns, "curl", "-s", "--retry", "3", "--retry-connrefused", "-o", body, "-w", "%{http_code} %{size_download}", "http://10.0.3.2/2000000");
        Assert.True(curl.Code == 0, curl.Err + emulate.Log);
        Assert.Equal("200 2000000", curl.Out.Trim());
        var bytes = File.ReadAllBytes(body);
        for (int i = 0; i < bytes.Length; i++) if (bytes[i] != (byte)('a' + i % 26)) Assert.Fail($"byte {i} is {bytes[i]}");

        emulate.Stop(); // SIGINT: the run ends early, prints its tables and writes the report
        Assert.Contains("stopped by Ctrl-C", emulate.Log);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(report));
        var http = json.RootElement.GetProperty("apps").EnumerateArray().Single(a => a.GetProperty("kind").GetString() == "http");
        Assert.True(http.GetProperty("bytes").GetInt64() >= 2_000_000, http.ToString());
        Assert.DoesNotContain(ns, Sh.Ok("ip", "netns", "list")); // the namespace went with the run
    }
}

/// <summary>
/// A dual-stack topology with a linux node: the kernel's ping -6 and curl -6 cross an emulated
/// IPv6 router to a user-level host, and the kernel reads the router's ICMPv6 errors.
/// </summary>
public class LinuxNodeIpv6Tests
{
    private const string Topology = """
        duration: 120s
        ipv6: true
        nodes:
          client: linux
          r1: router
          r2: router
          web: host
        links:
          - {a: client, b: r1}
          - {name: wan, a: r1, b: r2, delay: 2ms, mtu: 1280}
          - {a: r2, b: web}
        apps:
          - {name: http, type: http, on: web, port: 80, size: 1MB}
        """;

    [RootFact("curl", "ping")]
    public void The_kernel_pings_and_fetches_over_ipv6_through_emulated_routers_and_hears_their_errors()
    {
        var sc = Netloom.Emulation.Topology.Scenario.Build(Netloom.Emulation.Topology.TopologyParser.Parse(Topology, "v6-linux.yaml"), realTime: true);
        using var net = sc.Network;
        var linux = (LinuxNode)net["client"];
        var web = (HostNode)net["web"];
        string to = web.Options.Ipv6Address!.Value.ToString();
        Assert.Equal("fd00:0:0:3::2", to);
        bool done = false;
        var runner = new Thread(() => net.RunRealTime(Duration.FromSeconds(120), () => Volatile.Read(ref done))) { IsBackground = true };
        runner.Start();
        try
        {
            string[] Ns(params string[] args) => ["netns", "exec", linux.Namespace, .. args];
            var ping = Sh.Run(TimeSpan.FromSeconds(30), "ip", Ns("ping", "-6", "-c", "5", "-i", "0.2", "-W", "2", to));
            Assert.True(ping.Code == 0, ping.Out + ping.Err);
            Assert.Contains("ttl=62", ping.Out); // two routers, each one hop
            // Hop limit 1: the first router answers Time Exceeded from its address on the client's segment.
            var hop = Sh.Run(TimeSpan.FromSeconds(30), "ip", Ns("ping", "-6", "-c", "1", "-t", "1", "-W", "2", to));
            Assert.Contains("fd00:0:0:1::2", hop.Out + hop.Err);
            Assert.Contains("Time exceeded", hop.Out + hop.Err, StringComparison.OrdinalIgnoreCase);
            // 1,400 bytes with fragmentation forbidden meets the WAN's 1280: the kernel hears Packet Too Big.
            var big = Sh.Run(TimeSpan.FromSeconds(30), "ip", Ns("ping", "-6", "-c", "3", "-i", "0.3", "-s", "1400", "-M", "do", "-W", "2", to));
            Assert.Contains("mtu=1280", big.Out + big.Err, StringComparison.OrdinalIgnoreCase);
            using var dir = new TempDir();
            string file = dir.File("body");
            var curl = Sh.Run(TimeSpan.FromSeconds(60), "ip", Ns("curl", "-6", "-g", "-s", "-o", file, "-w", "%{http_code} %{size_download}", $"http://[{to}]/2097152"));
            Assert.True(curl.Code == 0, curl.Err);
            Assert.Equal("200 2097152", curl.Out.Trim());
            var body = File.ReadAllBytes(file);
            for (int i = 0; i < body.Length; i++) if (body[i] != (byte)('a' + i % 26)) Assert.Fail($"byte {i} is {body[i]}");
        }
        finally
        {
            Volatile.Write(ref done, true);
            runner.Join(TimeSpan.FromSeconds(10));
        }
        var r1 = net.Router("r1").Counters;
        Assert.True(r1.TtlExceeded >= 1 && r1.FragmentationNeeded >= 1, $"time exceeded {r1.TtlExceeded}, too big {r1.FragmentationNeeded}");
    }
}
