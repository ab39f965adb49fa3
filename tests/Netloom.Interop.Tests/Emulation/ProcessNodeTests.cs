using System.Text.Json;
using Netloom.Interop.Tests.Run;
using Netloom.Interop.Tests.Support;
using Netloom.Tests.Support;
using TempDir = Netloom.Interop.Tests.Support.TempDir;

namespace Netloom.Interop.Tests.Emulation;

/// <summary>
/// Unmodified programs as emulator nodes (`type: process`): each runs under `netloom run` on a shm
/// port into the emulated network. The examples in examples/ run as a user runs them.
/// </summary>
public class ProcessNodeTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private static string Example(string name) => Path.Combine(RunLab.Root, "examples", name);

    private static (int Code, string Out) Emulate(params string[] args)
    {
        var (code, o, e) = Sh.Run(2 * Minute, "env", [$"NETLOOM_RUN_DIR={RunLab.RunDir}", "dotnet", RunLab.Cli, "emulate", .. args]);
        return (code, o + e);
    }

    [ToolFact("nginx", "curl", "wrk", "tshark")]
    public void The_nginx_example_serves_curl_and_wrk_across_the_impaired_wan()
    {
        using var dir = new TempDir();
        var (code, output) = Emulate(Example("nginx-wan.yaml"), "--realtime", "--pcap", dir.Path);
        Assert.True(code == 0, output);
        // curl fetched the page (82 bytes) through two routers and the lossy WAN, and wrk ran.
        Assert.Contains("curl| curl: 200, 82 bytes", output);
        Assert.Matches(@"wrk\| +\d+ requests in [\d.]+s", output);
        Assert.Contains("curl| (exited with status 0)", output);
        // On the wire between the routers: HTTP from nginx's address, decoded by tshark.
        var pcap = Directory.GetFiles(dir.Path, "*r1-r2*").Single();
        var frames = Tshark.Fields(pcap, "ip.src", "http.response.code");
        Assert.Contains(frames, f => f["ip.src"] == "10.0.1.1" && f["http.response.code"] == "200");
    }

    [ToolFact("redis-server", "redis-benchmark")]
    public void The_redis_example_runs_redis_benchmark_against_redis_server()
    {
        var (code, output) = Emulate(Example("redis.yaml"), "--realtime");
        Assert.True(code == 0, output);
        Assert.Matches(@"bench\| SET: [\d.]+ requests per second", output);
        Assert.Matches(@"bench\| GET: [\d.]+ requests per second", output);
        Assert.Contains("bench| (exited with status 0)", output);
    }

    [ToolFact("curl", "/usr/bin/python3", "tshark")]
    public void Process_nodes_speak_ipv6_in_a_dual_stack_topology_across_a_router()
    {
        // python's http.server bound to :: and curl -6 and -4, unmodified, each under netloom run
        // as a process node, with an emulated router between them.
        using var dir = new TempDir();
        var body = new byte[300_000];
        new Random(6).NextBytes(body);
        File.WriteAllBytes(Path.Combine(dir.Path, "blob"), body);
        string yaml = Path.Combine(dir.Path, "v6.yaml");
        File.WriteAllText(yaml, """
            name: v6-processes
            duration: 12s
            ipv6: true
            nodes:
              web: {type: process, run: "/usr/bin/python3 -m http.server 8000 --bind ::"}
              cli6: {type: process, start: 3s, run: "curl -6 -g -s --retry 5 --retry-connrefused -o got6 -w 'six %{http_code} %{size_download}\n' http://[{web:ip6}]:8000/blob"}
              cli4: {type: process, start: 3s, run: "curl -4 -s --retry 5 --retry-connrefused -o got4 -w 'four %{http_code} %{size_download}\n' http://{web}:8000/blob"}
              s1: switch
              r1: router
            links:
              - {a: web, b: r1}
              - {a: r1, b: s1, delay: 1ms}
              - {a: cli6, b: s1}
              - {a: cli4, b: s1}
            """);
        var (code, output) = Emulate(yaml, "--realtime", "--pcap", Path.Combine(dir.Path, "pcap"));
        Assert.True(code == 0, output);
        Assert.Contains("cli6| six 200 300000", output);
        Assert.Contains("cli4| four 200 300000", output);
        Assert.Equal(body, File.ReadAllBytes(Path.Combine(dir.Path, "got6")));
        Assert.Equal(body, File.ReadAllBytes(Path.Combine(dir.Path, "got4")));
        // On the web server's link: HTTP over IPv6 from its address, routed (hop limit 63 at the far side).
        var frames = Tshark.Fields(Path.Combine(dir.Path, "pcap", "web-r1.pcapng"), "ipv6.src", "http.response.code");
        Assert.Contains(frames, f => f["ipv6.src"] == "fd00:0:0:1::1" && f["http.response.code"] == "200");
        var far = Tshark.Fields(Path.Combine(dir.Path, "pcap", "r1-s1.pcapng"), "ipv6.src", "ipv6.hlim");
        Assert.Contains(far, f => f["ipv6.src"] == "fd00:0:0:1::1" && f["ipv6.hlim"] == "63");
    }

    private const string CounterYaml = """
        name: counter
        duration: 600s
        nodes:
          db: {type: process, run: "redis-server --port 6379 --save '' --appendonly no --protected-mode no"}
          cli:
            type: process
            start: 1s
            run:
              - /usr/bin/python3
              - -u
              - -c
              - |
                import socket, time
                while True:
                    try:
                        s = socket.create_connection(('{db}', 6379), timeout=2)
                        s.sendall(b'INCR n\r\n')
                        print('reply', s.recv(64).decode().strip())
                        s.close()
                    except OSError as e:
                        print('error', e)
                    time.sleep(0.3)
        links:
          - {name: wire, a: db, b: cli, delay: 2ms}
        """;

    [ToolFact("redis-server", "/usr/bin/python3")]
    public void The_api_crashes_and_restarts_a_process_node_and_the_restarted_program_is_reachable()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("counter.yaml"), CounterYaml);
        using var s = new ServedEmulation(dir.File("counter.yaml"), dir.File("run"), [("NETLOOM_RUN_DIR", RunLab.RunDir)], "--realtime");
        JsonElement Db() => s.Get("api/nodes").EnumerateArray().Single(n => n.GetProperty("name").GetString() == "db");
        string Replies() => string.Join('\n', s.Output.Split('\n').Where(l => l.StartsWith("cli| reply", StringComparison.Ordinal)));
        void WaitFor(Func<bool> done, string what)
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!done()) { Assert.True(DateTime.UtcNow < deadline, $"{what}; output:\n{s.Output}"); Thread.Sleep(200); }
        }

        WaitFor(() => Replies().Contains("reply :3"), "the counter never reached 3");
        var db = Db();
        Assert.Equal("process", db.GetProperty("kind").GetString());
        var proc = db.GetProperty("process");
        Assert.True(proc.GetProperty("running").GetBoolean());
        Assert.Equal(1, proc.GetProperty("starts").GetInt32());
        Assert.True(proc.GetProperty("frames_from_program").GetInt64() > 0);

        s.Post("api/nodes/db/crash");
        WaitFor(() => !Db().GetProperty("process").GetProperty("running").GetBoolean(), "the crashed program kept running");
        WaitFor(() => s.Output.Contains("db| (exited with status"), "no exit status for the crashed program");
        int before = Replies().Split('\n').Length;
        s.Post("api/nodes/db/restart");
        WaitFor(() => Db().GetProperty("process").GetProperty("starts").GetInt32() == 2, "the program did not start again");
        // A fresh redis (no persistence): the counter starts over, through the shm port's new session.
        WaitFor(() => Replies().Split('\n').Skip(before).Any(l => l.EndsWith("reply :1", StringComparison.Ordinal)), "the restarted server never answered");
        Assert.True(s.Stop(), "SIGTERM ends the server");
        Assert.True(s.Output.Contains("db| (exited with status 0)"), s.Output); // redis leaves cleanly on the SIGTERM passed on
        // The restarted server's last words come before its exit line, and both before the emulator's end.
        string output = s.Output;
        int end = output.LastIndexOf("db| (exited with status 0)", StringComparison.Ordinal);
        int restarted = output.LastIndexOf("db| (exited with status", end - 1, StringComparison.Ordinal); // the crash's
        Assert.True(restarted >= 0 && output[restarted..end].Contains("ready to exit", StringComparison.Ordinal), output);
    }

    [Fact]
    public void Process_nodes_need_a_program_and_real_time()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("norun.yaml"), "nodes: {a: {type: process}, b: host}\nlinks: [{a: a, b: b}]\n");
        var (code, output) = Emulate(dir.File("norun.yaml"), "--realtime");
        Assert.Equal(2, code);
        Assert.Contains("process node 'a' needs run", output);
        File.WriteAllText(dir.File("virtual.yaml"), "nodes: {a: {type: process, run: \"true\"}, b: host}\nlinks: [{a: a, b: b}]\n");
        (code, output) = Emulate(dir.File("virtual.yaml"));
        Assert.Equal(2, code);
        Assert.Contains("process nodes run real programs, which needs real time: run with --realtime", output);
        File.WriteAllText(dir.File("quote.yaml"), "nodes: {a: {type: process, run: \"echo 'open\"}, b: host}\nlinks: [{a: a, b: b}]\n");
        (code, output) = Emulate(dir.File("quote.yaml"), "--realtime");
        Assert.Equal(2, code);
        Assert.Contains("a quote is not closed", output);
    }
}
