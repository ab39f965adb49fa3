using System.Text.RegularExpressions;
using Netloom.Interop.Tests.Support;
using Netloom.Tests.Support;
using TempDir = Netloom.Interop.Tests.Support.TempDir;

namespace Netloom.Interop.Tests.Emulation;

/// <summary>
/// `netloom emulate --serve` with the real tools people drive it with: python3 (the example in
/// examples/python), tshark (a live capture through the API, and through `netloom extcap`), and
/// Debian's headless chromium (the live view).
/// </summary>
public class LiveEmulationToolTests
{
    private const string Wan = """
        name: live
        duration: 300s
        nodes: {h1: host, h2: host, s1: switch, r1: router, r2: router}
        links:
          - {a: h1, b: s1}
          - {a: s1, b: r1}
          - {name: wan, a: r1, b: r2, delay: 5ms, rate: 20mbit, queue: 100, loss: 1%}
          - {a: r2, b: h2}
        apps:
          - {type: bulk, on: h1, to: h2, duration: 290s, start: 100ms}
          - {type: ping, on: h1, to: h2, interval: 100ms, start: 100ms}
        """;

    private static ServedEmulation Serve(TempDir dir, string? yaml = Wan)
    {
        string? file = null;
        if (yaml is not null) File.WriteAllText(file = dir.File("net.yaml"), yaml);
        return new ServedEmulation(file, dir.File("run"));
    }

    private static string RepoFile(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, relative))) return Path.Combine(d.FullName, relative);
        throw new FileNotFoundException(relative);
    }

    private static void WaitForWanTraffic(ServedEmulation s)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (ServedEmulation.Link(s.Get("api/state"), "wan").GetProperty("directions")[0].GetProperty("throughput_bps").GetDouble() <= 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "no traffic on the wan");
            Thread.Sleep(100);
        }
    }

    [ToolFact("/usr/bin/python3")]
    public void The_python_example_builds_a_network_injects_faults_and_reads_the_results()
    {
        using var dir = new TempDir();
        using var s = Serve(dir, yaml: null);
        var (code, stdout, stderr) = Sh.Run(TimeSpan.FromSeconds(120), "/usr/bin/python3", RepoFile("examples/python/wan_faults.py"), s.Url.ToString());
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("down_mbps: 0.00", stdout);
        Assert.Contains("bad_request: 400 ", stdout);
        Assert.Contains("expected behaviour: yes", stdout);
        // The network the script built is the one running.
        Assert.Equal("wan-faults", s.Get("api/state").GetProperty("name").GetString());
    }

    [ToolFact("tshark")]
    public void A_live_capture_through_the_api_is_pcapng_that_tshark_decodes()
    {
        using var dir = new TempDir();
        using var s = Serve(dir);
        var bytes = s.Http.GetByteArrayAsync("api/links/wan/capture?frames=200").GetAwaiter().GetResult();
        File.WriteAllBytes(dir.File("wan.pcapng"), bytes);
        var frames = Tshark.Fields(dir.File("wan.pcapng"), "frame.interface_name", "ip.src", "tcp.dstport", "tcp.srcport", "ip.checksum.status", "tcp.checksum.status");
        Assert.Equal(200, frames.Count);
        Assert.All(frames, f => Assert.StartsWith("wan:r", f["frame.interface_name"]));
        Assert.Contains(frames, f => f["tcp.dstport"] == "5001");          // the bulk transfer's data
        Assert.All(frames.Where(f => f["ip.src"].Length > 0), f => Assert.Equal("1", f["ip.checksum.status"])); // 1: good (0 bad, 2 unverified)
        Assert.Contains(frames, f => f["frame.interface_name"] == "wan:r1:1");
        Assert.Contains(frames, f => f["frame.interface_name"] == "wan:r2:0");
    }

    [ToolFact("tshark")]
    public void Extcap_makes_every_link_a_tshark_interface_that_captures_frames_that_decode()
    {
        using var dir = new TempDir();
        using var s = Serve(dir);
        string home = dir.File("home");
        Directory.CreateDirectory(home);
        string[] env = ["env", $"HOME={home}", $"NETLOOM_RUNTIME_DIR={dir.File("run")}"];
        var (icode, iout, ierr) = Sh.Run(TimeSpan.FromSeconds(60), "env", [.. env[1..], "dotnet", Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll"), "extcap", "--install"]);
        Assert.True(icode == 0, iout + ierr);
        Assert.Contains(".config/wireshark/extcap/netloom", iout);

        var (dcode, list, derr) = Sh.Run(TimeSpan.FromSeconds(60), "env", [.. env[1..], "tshark", "-D"]);
        Assert.True(dcode == 0, derr);
        foreach (var link in new[] { "h1-s1", "s1-r1", "wan", "r2-h2" })
            Assert.Contains($"netloom-{s.Pid}-{link} (netloom live: link {link}", list);

        var (ccode, cout, cerr) = Sh.Run(TimeSpan.FromSeconds(90), "env", [.. env[1..], "tshark", "-i", $"netloom-{s.Pid}-wan", "-c", "100", "-w", dir.File("x.pcapng")]);
        Assert.True(ccode == 0, cout + cerr);
        var frames = Tshark.Fields(dir.File("x.pcapng"), "eth.type", "ip.src", "ip.dst", "tcp.dstport", "ip.checksum.status");
        Assert.Equal(100, frames.Count);
        Assert.All(frames, f => Assert.Equal("0x0800", f["eth.type"]));
        Assert.All(frames, f => Assert.Equal("1", f["ip.checksum.status"])); // 1: good
        Assert.Contains(frames, f => f["tcp.dstport"] == "5001");

        // A switch's port is an interface too, seen as a capture on that port: both directions, marked.
        Assert.Contains($"netloom-{s.Pid}-s1@1 (netloom live: switch s1 port 1 (link s1-r1))", list);
        (ccode, cout, cerr) = Sh.Run(TimeSpan.FromSeconds(90), "env", [.. env[1..], "tshark", "-i", $"netloom-{s.Pid}-s1@1", "-c", "100", "-w", dir.File("port.pcapng")]);
        Assert.True(ccode == 0, cout + cerr);
        var port = Tshark.Fields(dir.File("port.pcapng"), "frame.interface_name", "frame.packet_flags_direction", "tcp.dstport", "tcp.srcport");
        Assert.Equal(100, port.Count);
        Assert.All(port, f => Assert.Equal("s1:1", f["frame.interface_name"]));
        Assert.Contains(port, f => Convert.ToInt32(f["frame.packet_flags_direction"], 16) == 2 && f["tcp.dstport"] == "5001"); // data out towards r1
        Assert.Contains(port, f => Convert.ToInt32(f["frame.packet_flags_direction"], 16) == 1 && f["tcp.srcport"] == "5001"); // acks in from r1
    }

    [ToolFact("tshark")]
    public void Extcap_makes_every_port_of_a_running_switch_a_tshark_interface()
    {
        using var dir = new TempDir();
        string home = dir.File("home"), run = dir.File("run");
        Directory.CreateDirectory(home);
        string[] env = [$"HOME={home}", $"NETLOOM_RUNTIME_DIR={run}"];
        string cli = Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll");
        string a = Run.RunLab.Unique("nlxa"), b = Run.RunLab.Unique("nlxb");
        using var sw = new Background(null, "env", [.. env, "dotnet", cli, "switch", "--port", $"shm:{a}", "--port", $"shm:{b}", "--duration", "120"]);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!Directory.Exists(run) || Directory.GetFiles(run, "switch-*.json").Length == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the switch never registered: {sw.Log}");
            Thread.Sleep(100);
        }
        // Traffic into port 0: a thousand 100-byte frames a second.
        using var gen = new Background(null, "env", [.. env, "dotnet", cli, "pktgen", "--port", $"shm:{a}", "--mode", "Tx", "--rate", "1000", "--size", "100", "--duration", "100"]);
        Sh.Ok("env", [.. env, "dotnet", cli, "extcap", "--install"]);
        var (dcode, list, derr) = Sh.Run(TimeSpan.FromSeconds(60), "env", [.. env, "tshark", "-D"]);
        Assert.True(dcode == 0, derr);
        var m = System.Text.RegularExpressions.Regex.Match(list, $@"(netloom-sw\d+-0) \(netloom switch \d+: port 0 \(shm:{a}\)\)");
        Assert.True(m.Success, list);
        Assert.Contains($"port 1 (shm:{b})", list);

        var (ccode, cout, cerr) = Sh.Run(TimeSpan.FromSeconds(90), "env", [.. env, "tshark", "-i", m.Groups[1].Value, "-c", "50", "-w", dir.File("sw.pcapng")]);
        Assert.True(ccode == 0, cout + cerr + sw.Log + gen.Log);
        var frames = Tshark.Fields(dir.File("sw.pcapng"), "frame.interface_name", "frame.len", "eth.src");
        Assert.Equal(50, frames.Count);
        Assert.All(frames, f => Assert.Equal($"shm:{a}", f["frame.interface_name"]));
        Assert.All(frames, f => Assert.Equal("100", f["frame.len"]));
        // A bad request to the switch's socket is answered, and the switch goes on.
        var (bcode, _, berr) = Sh.Run(TimeSpan.FromSeconds(60), "env", [.. env, "dotnet", cli, "extcap", "--capture", "--extcap-interface", m.Groups[1].Value[..^1] + "7", "--fifo", dir.File("nofifo")]);
        Assert.NotEqual(0, bcode);
        Assert.Contains("has ports 0 to 1", berr);
    }

    [RootFact("ip", "traceroute")]
    public void Traceroute_from_a_linux_node_finds_the_routing_loop_and_the_dropped_icmp_of_the_troubleshooting_example()
    {
        using var dir = new TempDir();
        using var s = new ServedEmulation(RepoFile("examples/troubleshoot-linux.yaml"), dir.File("run"), "--realtime");
        var ns = s.WaitForOutput(new System.Text.RegularExpressions.Regex(@"linux node h1: run commands in it with: ip netns exec (\S+) COMMAND"));
        Assert.True(ns.Success, s.Output);
        // The API names the same namespace.
        var h1 = s.Get("api/nodes").EnumerateArray().Single(n => n.GetProperty("name").GetString() == "h1");
        Assert.Equal(ns.Groups[1].Value, h1.GetProperty("namespace").GetString());
        List<string> Hops(string to, int max)
        {
            var (code, o, e) = Sh.Run(TimeSpan.FromSeconds(120), "ip", "netns", "exec", ns.Groups[1].Value, "traceroute", "-n", "-q", "1", "-w", "2", "-m", max.ToString(), to);
            Assert.True(code == 0, o + e);
            return o.Split('\n').Skip(1).Where(l => l.Trim().Length > 0).Select(l => l.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]).ToList();
        }
        // The wrong route: the probes to h3 go back and forth between r1 and r2.
        Assert.Equal(["10.0.1.1", "10.9.1.2", "10.0.1.1", "10.9.1.2", "10.0.1.1", "10.9.1.2"], Hops("10.0.3.10", 6));
        // Towards h2, r3's Time Exceeded (from 10.9.2.2) never comes back: r2 drops ICMP from
        // wan2, the same filter that hides r3's Fragmentation Needed. h2 itself answers.
        Assert.Equal(["10.0.1.1", "10.9.1.2", "*", "10.0.2.10"], Hops("10.0.2.10", 6));
    }

    [ToolFact("chromium")]
    public void The_live_view_in_headless_chromium_shows_the_nodes_and_nonzero_throughput_labels()
    {
        using var dir = new TempDir();
        using var s = Serve(dir);
        WaitForWanTraffic(s);
        string[] chrome = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", $"--user-data-dir={dir.File("profile")}",
            "--window-size=1400,1000", "--virtual-time-budget=3000"];
        string shot = Path.Combine(AppContext.BaseDirectory, "live-view.png");
        File.Delete(shot);
        var (scode, sout, serr) = Sh.Run(TimeSpan.FromSeconds(120), "chromium", [.. chrome, $"--screenshot={shot}", s.Url.ToString()]);
        Assert.True(scode == 0 && File.Exists(shot), sout + serr);
        var png = File.ReadAllBytes(shot);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        Assert.True(png.Length > 20_000, $"the screenshot is only {png.Length} bytes");

        var (dcode, dom, derr) = Sh.Run(TimeSpan.FromSeconds(120), "chromium", [.. chrome, "--dump-dom", s.Url.ToString()]);
        Assert.True(dcode == 0, derr);
        // Every node is drawn with its name.
        foreach (var node in new[] { "h1", "h2", "s1", "r1", "r2" })
            Assert.Matches($"<g class=\"node [a-z]+\" data-node=\"{node}\"[^>]*>.*?<text[^>]*class=\"node-label\">{node}</text>", dom);
        // Every link has a label; those on the transfer's path carry a non-zero throughput, in words too.
        var labels = Regex.Matches(dom, "<text[^>]*class=\"link-label\" data-link=\"([^\"]+)\" data-bps=\"(\\d+)\"[^>]*>([^<]*)</text>")
            .ToDictionary(m => m.Groups[1].Value, m => (Bps: long.Parse(m.Groups[2].Value), Text: m.Groups[3].Value));
        Assert.Equal(["h1-s1", "r2-h2", "s1-r1", "wan"], labels.Keys.Order());
        foreach (var link in labels.Keys)
        {
            Assert.True(labels[link].Bps > 1_000_000, $"{link}: {labels[link]}");
            Assert.Matches(@"^\d+(\.\d+)? Mbit/s", labels[link].Text);
        }
        Assert.Contains("bulk", dom); // the apps table
    }
}

/// <summary>`--serve` in real time, with a linux node: the API's faults act on a real kernel's traffic.</summary>
public class LiveEmulationRealTimeTests
{
    [RootFact("curl")]
    public void A_real_time_network_with_a_linux_node_is_controlled_through_the_api()
    {
        using var dir = new TempDir();
        string example = "";
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null && example.Length == 0; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "examples", "linux-wan.yaml"))) example = Path.Combine(d.FullName, "examples", "linux-wan.yaml");
        Assert.NotEmpty(example);
        string ns;
        using (var s = new ServedEmulation(example, dir.File("run"), "--realtime"))
        {
            var m = s.WaitForOutput(new Regex(@"ip netns exec (\S+) COMMAND"));
            Assert.True(m.Success, s.Output);
            ns = m.Groups[1].Value;
            Assert.Equal("realtime", s.Get("api/state").GetProperty("mode").GetString());
            (int Code, string Out, string Err) Curl(int maxTime) =>
                Sh.Run(TimeSpan.FromSeconds(60), "ip", "netns", "exec", ns, "curl", "-s", "--max-time", maxTime.ToString(), "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "http://10.0.3.2/100000");
            var ok = Curl(20);
            Assert.True(ok.Code == 0 && ok.Out.Trim() == "200 100000", ok.Out + ok.Err + s.Output);

            s.Post("api/links/wan/down");
            var cut = Curl(3);
            Assert.NotEqual(0, cut.Code); // curl timed out: the kernel's SYNs die on the wan
            Assert.True(ServedEmulation.Link(s.Get("api/state"), "wan").GetProperty("directions")[0].GetProperty("drops").GetProperty("down").GetInt64() > 0);

            s.Post("api/links/wan/up");
            s.Send(HttpMethod.Patch, "api/links/wan", """{"loss": "0%"}""");
            var again = Curl(20);
            Assert.True(again.Code == 0 && again.Out.Trim() == "200 100000", again.Out + again.Err);
            Assert.True(s.Stop(), "SIGTERM ends the server");
        }
        Assert.DoesNotContain(ns, Sh.Ok("ip", "netns", "list")); // the namespace went with the run
    }
}
