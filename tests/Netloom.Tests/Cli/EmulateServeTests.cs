using System.Text.Json;
using Netloom.Tests.Support;

namespace Netloom.Tests.Cli;

/// <summary>`netloom emulate --serve`: the control API of a running network, driven over real HTTP.</summary>
public class EmulateServeTests
{
    internal const string Wan = """
        name: served
        duration: 120s
        nodes: {h1: host, h2: host, s1: switch, r1: router, r2: router}
        links:
          - {a: h1, b: s1}
          - {a: s1, b: r1}
          - {name: wan, a: r1, b: r2, delay: 5ms, rate: 20mbit, queue: 100}
          - {a: r2, b: h2}
        apps:
          - {type: bulk, on: h1, to: h2, duration: 110s, start: 100ms}
          - {type: ping, on: h1, to: h2, interval: 100ms, start: 100ms}
        """;

    internal static ServedEmulation Serve(TempDir dir, string yaml = Wan, params string[] extra)
    {
        string file = dir.File("net.yaml");
        File.WriteAllText(file, yaml);
        return new ServedEmulation(file, dir.File("run"), extra);
    }

    private static JsonElement WaitFor(ServedEmulation s, Func<JsonElement, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var state = s.Get("api/state");
            if (condition(state)) return state;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{what}; last state: {state}");
            Thread.Sleep(100);
        }
    }

    private static long Delivered(JsonElement link, int direction) =>
        link.GetProperty("directions")[direction].GetProperty("delivered_bytes").GetInt64();

    [Fact]
    public void The_api_lists_the_running_network_and_changes_its_links_and_nodes()
    {
        using var dir = new TempDir();
        using var s = Serve(dir);
        var state = WaitFor(s, st => ServedEmulation.Link(st, "wan").GetProperty("directions")[0].GetProperty("throughput_bps").GetDouble() > 1e6, "bulk traffic crosses the wan");
        Assert.Equal("running", state.GetProperty("state").GetString());
        Assert.Equal(["h1", "h2", "s1", "r1", "r2"], state.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("name").GetString()!));
        Assert.Equal("router", state.GetProperty("nodes")[3].GetProperty("kind").GetString());
        Assert.Contains(s.Get("api/apps").EnumerateArray(), a => a.GetProperty("kind").GetString() == "bulk" && a.GetProperty("bytes").GetInt64() > 0);

        // Impairments: only the keys given change, per direction if asked.
        var wan = s.Send(HttpMethod.Patch, "api/links/wan", """{"delay": "30ms", "b_to_a": {"loss": "2%"}}""");
        Assert.Equal(200, wan.Status);
        var ab = wan.Body.GetProperty("directions")[0].GetProperty("impairments");
        var ba = wan.Body.GetProperty("directions")[1].GetProperty("impairments");
        Assert.Equal(30_000, ab.GetProperty("delay_us").GetDouble());
        Assert.Equal(20_000_000, ab.GetProperty("rate_bps").GetInt64()); // untouched
        Assert.Equal(0, ab.GetProperty("loss").GetDouble());
        Assert.Equal(0.02, ba.GetProperty("loss").GetDouble());
        Assert.Equal(30_000, ba.GetProperty("delay_us").GetDouble());

        // Down: nothing more is delivered; up: traffic flows again.
        Assert.False(s.Post("api/links/wan/down").GetProperty("up").GetBoolean());
        long before = Delivered(ServedEmulation.Link(s.Get("api/state"), "wan"), 0);
        Thread.Sleep(500);
        var down = ServedEmulation.Link(s.Get("api/state"), "wan");
        Assert.Equal(before, Delivered(down, 0));
        Assert.True(down.GetProperty("directions")[0].GetProperty("drops").GetProperty("down").GetInt64() > 0);
        Assert.True(s.Post("api/links/wan/up").GetProperty("up").GetBoolean());
        WaitFor(s, st => Delivered(ServedEmulation.Link(st, "wan"), 0) > before, "delivery resumes after up");

        // Partition and heal.
        var cut = s.Post("api/partition", """{"groups": [["h1", "s1", "r1"], ["r2", "h2"]]}""");
        Assert.Equal(["wan"], cut.GetProperty("cut").EnumerateArray().Select(x => x.GetString()!));
        Assert.False(ServedEmulation.Link(s.Get("api/state"), "wan").GetProperty("up").GetBoolean());
        Assert.Equal(["wan"], s.Post("api/heal").GetProperty("healed").EnumerateArray().Select(x => x.GetString()!));
        Assert.True(ServedEmulation.Link(s.Get("api/state"), "wan").GetProperty("up").GetBoolean());

        // Crash and restart.
        Assert.False(s.Post("api/nodes/h2/crash").GetProperty("up").GetBoolean());
        WaitFor(s, st => ServedEmulation.Link(st, "r2-h2").GetProperty("directions")[0].GetProperty("drops").TryGetProperty("nodedown", out _), "frames to the crashed node are dropped");
        Assert.True(s.Post("api/nodes/h2/restart").GetProperty("up").GetBoolean());
    }

    [Fact]
    public void Apps_stop_and_servers_start_again()
    {
        using var dir = new TempDir();
        using var s = Serve(dir);
        var names = s.Get("api/apps").EnumerateArray().Select(a => a.GetProperty("name").GetString()!).ToList();
        Assert.Equal(["bulk1.sink", "bulk1", "ping2"], names);
        WaitFor(s, st => st.GetProperty("apps")[1].GetProperty("bytes").GetInt64() > 100_000, "the bulk transfer runs");

        var stopped = s.Post("api/apps/bulk1/stop");
        Assert.Equal("stopped", stopped.GetProperty("error").GetString());
        long bytes = stopped.GetProperty("bytes").GetInt64();
        Thread.Sleep(300);
        Assert.Equal(bytes, s.Get("api/apps")[1].GetProperty("bytes").GetInt64()); // nothing more sent
        var (again, againBody) = s.Send(HttpMethod.Post, "api/apps/bulk1/start");
        Assert.Equal(409, again);
        Assert.Contains("already ran", againBody.GetProperty("error").GetString());
        var (twice, _) = s.Send(HttpMethod.Post, "api/apps/bulk1/stop");
        Assert.Equal(409, twice);
        var (unknown, _) = s.Send(HttpMethod.Post, "api/apps/nope/stop");
        Assert.Equal(404, unknown);

        // A server stops and starts again.
        Assert.Equal("stopped", s.Post("api/apps/bulk1.sink/stop").GetProperty("error").GetString());
        var restarted = s.Post("api/apps/bulk1.sink/start");
        Assert.False(restarted.TryGetProperty("error", out _), restarted.ToString());
    }

    [Fact]
    public void Pause_stops_network_time_step_moves_it_by_events_or_duration_and_resume_goes_on()
    {
        using var dir = new TempDir();
        using var s = Serve(dir);
        WaitFor(s, st => st.GetProperty("virtual_seconds").GetDouble() > 0.3, "time runs");
        var paused = s.Post("api/pause");
        Assert.Equal("paused", paused.GetProperty("state").GetString());
        double t0 = s.Get("api/state").GetProperty("virtual_seconds").GetDouble();
        long e0 = s.Get("api/state").GetProperty("events").GetInt64();
        Thread.Sleep(400);
        Assert.Equal(t0, s.Get("api/state").GetProperty("virtual_seconds").GetDouble());
        Assert.Equal(e0, s.Get("api/state").GetProperty("events").GetInt64());

        var step = s.Post("api/step", """{"events": 10}""");
        Assert.Equal(10, step.GetProperty("stepped_events").GetInt64());
        Assert.Equal(e0 + 10, s.Get("api/state").GetProperty("events").GetInt64());
        double t1 = s.Get("api/state").GetProperty("virtual_seconds").GetDouble();
        Assert.True(t1 >= t0);
        var byTime = s.Post("api/step", """{"duration": "250ms"}""");
        Assert.Equal(t1 + 0.25, byTime.GetProperty("virtual_seconds").GetDouble(), 6);
        Assert.Equal("paused", s.Get("api/state").GetProperty("state").GetString());

        Assert.Equal("running", s.Post("api/resume", """{"for": "300ms"}""").GetProperty("state").GetString());
        // It pauses again by itself after 300 ms of network time.
        var again = WaitFor(s, st => st.GetProperty("state").GetString() == "paused", "resume for 300ms pauses again");
        Assert.Equal(t1 + 0.55, again.GetProperty("virtual_seconds").GetDouble(), 6);
    }

    [Fact]
    public void Bad_requests_get_a_4xx_with_a_message_and_the_server_keeps_serving()
    {
        using var dir = new TempDir();
        using var s = Serve(dir);
        (HttpMethod Method, string Path, string? Body, int Status, string Message)[] cases =
        [
            (HttpMethod.Patch, "api/links/nope", """{"delay": "1ms"}""", 404, "no link named 'nope'"),
            (HttpMethod.Patch, "api/links/wan", """{"delay": "fast"}""", 400, "delay must be a time"),
            (HttpMethod.Patch, "api/links/wan", """{"colour": "red"}""", 400, "unknown key 'colour'"),
            (HttpMethod.Patch, "api/links/wan", """{"loss": "150%"}""", 400, "loss"),
            (HttpMethod.Patch, "api/links/wan", """{"delay": """, 400, "not valid JSON"),
            (HttpMethod.Patch, "api/links/wan", """[1, 2]""", 400, "one JSON object"),
            (HttpMethod.Patch, "api/links/wan", """{}""", 400, "nothing to change"),
            (HttpMethod.Patch, "api/links/wan", null, 400, "needs a body"),
            (HttpMethod.Post, "api/links/nope/down", null, 404, "no link named 'nope'"),
            (HttpMethod.Post, "api/nodes/nope/crash", null, 404, "no node named 'nope'"),
            (HttpMethod.Post, "api/partition", """{"groups": [["h1", "ghost"]]}""", 400, "no node named 'ghost'"),
            (HttpMethod.Post, "api/partition", """{"groups": [["h1"], ["h1"]]}""", 400, "in two groups"),
            (HttpMethod.Post, "api/partition", """{"groups": "h1"}""", 400, "partition needs groups"),
            (HttpMethod.Post, "api/partition", """not json""", 400, "not valid JSON"),
            (HttpMethod.Post, "api/step", null, 409, "paused"),
            (HttpMethod.Post, "api/resume", """{"for": "soon"}""", 400, "'for' must be a time"),
            (HttpMethod.Put, "api/scenario", "nodes:\n  h1: hots\n", 400, "<request>:2:7: node 'h1': unknown type 'hots'"),
            (HttpMethod.Get, "api/links/wan/capture?frames=0", null, 400, "'frames'"),
            (HttpMethod.Get, "api/nothing", null, 404, "no such resource"),
        ];
        foreach (var c in cases)
        {
            var (status, body) = s.Send(c.Method, c.Path, c.Body);
            Assert.True(status == c.Status, $"{c.Method} {c.Path} {c.Body}: got {status} {body}, expected {c.Status}");
            Assert.Contains(c.Message, body.GetProperty("error").GetString());
        }
        var (st, _) = s.Send(HttpMethod.Post, "api/step", """{"events": 0}""");
        Assert.Equal(400, st);
        // A body over the limit is refused without being read whole.
        var (big, bigBody) = s.Send(HttpMethod.Patch, "api/links/wan", "{\"delay\": \"" + new string('9', 100_000) + "\"}");
        Assert.Equal(413, big);
        Assert.Contains("over", bigBody.GetProperty("error").GetString());
        // Still serving, still running, nothing changed.
        var state = s.Get("api/state");
        Assert.Equal("running", state.GetProperty("state").GetString());
        Assert.Equal(5000, ServedEmulation.Link(state, "wan").GetProperty("directions")[0].GetProperty("impairments").GetProperty("delay_us").GetDouble());
    }

    [Fact]
    public void The_openapi_document_describes_every_route_the_server_answers()
    {
        using var dir = new TempDir();
        using var s = Serve(dir);
        var doc = s.Get("openapi.json");
        Assert.StartsWith("3.", doc.GetProperty("openapi").GetString());
        var paths = doc.GetProperty("paths").EnumerateObject().ToList();
        Assert.Contains(paths, p => p.Name == "/api/links/{name}");
        s.Post("api/pause"); // so nothing below changes time under the checks
        // Removals last: the other routes are tried on what they would remove.
        foreach (var (p, m) in paths.SelectMany(p => p.Value.EnumerateObject().Select(m => (p, m))).OrderBy(x => x.m.Name == "delete"))
            {
                if (p.Name.EndsWith("/capture", StringComparison.Ordinal) || p.Name == "/api/events") continue; // streams: tested on their own
                string path = p.Name.Replace("{name}", p.Name.StartsWith("/api/nodes", StringComparison.Ordinal) ? "h1" : p.Name.StartsWith("/api/apps", StringComparison.Ordinal) ? "ping2" : "wan")[1..];
                var (status, body) = s.Send(new HttpMethod(m.Name.ToUpperInvariant()), path, m.Name == "get" ? null : "{}");
                // Every route exists: an answer other than "no such resource" (an empty body may be refused with a reason).
                Assert.True(status != 404 && status != 405, $"{m.Name} {p.Name}: {status} {body}");
                Assert.True(m.Value.GetProperty("responses").TryGetProperty(status.ToString(), out _), $"{m.Name} {p.Name} answered {status}, which the document does not list");
            }
    }

    [Fact]
    public async Task The_event_stream_sends_the_state_and_each_change()
    {
        using var dir = new TempDir();
        using var s = Serve(dir);
        using var stream = await s.Http.GetStreamAsync("api/events");
        using var reader = new StreamReader(stream);
        string? line;
        do line = reader.ReadLine(); while (line is not null && line != "event: stats");
        Assert.Equal("event: stats", line);
        Assert.Contains("\"links\"", reader.ReadLine());
        s.Post("api/links/wan/down");
        var seen = new List<string>();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline && (line = reader.ReadLine()) is not null)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) seen.Add(line + " " + reader.ReadLine());
            if (seen.Exists(e => e.StartsWith("event: link", StringComparison.Ordinal))) break;
        }
        var link = Assert.Single(seen, e => e.StartsWith("event: link", StringComparison.Ordinal));
        Assert.Contains("\"action\":\"down\"", link);
        Assert.Contains("\"link\":\"wan\"", link);
    }

    [Fact]
    public void A_server_started_without_a_file_takes_a_scenario_and_reports_at_sigterm()
    {
        using var dir = new TempDir();
        using var s = new ServedEmulation(null, dir.File("run"), "--report", dir.File("r.json"));
        Assert.Empty(s.Get("api/state").GetProperty("nodes").EnumerateArray());
        var (status, loaded) = s.Send(HttpMethod.Put, "api/scenario", Wan.Replace("name: served", "name: uploaded"));
        Assert.True(status == 200, loaded.ToString());
        Assert.Equal(5, loaded.GetProperty("nodes").GetArrayLength());
        WaitFor(s, st => st.GetProperty("packet_hops").GetInt64() > 100, "the uploaded network runs");
        Assert.True(s.Stop(), "the server stops on SIGTERM");
        Assert.Equal(0, s.ExitCode);
        Assert.Contains("wan", s.Output);
        using var report = JsonDocument.Parse(File.ReadAllBytes(dir.File("r.json")));
        Assert.Equal("uploaded", report.RootElement.GetProperty("name").GetString());
    }
}

public class EmulateServeWebSocketTests
{
    [Fact]
    public async Task The_events_come_over_a_websocket_too()
    {
        using var dir = new TempDir();
        using var s = EmulateServeTests.Serve(dir);
        using var ws = new System.Net.WebSockets.ClientWebSocket();
        await ws.ConnectAsync(new UriBuilder(new Uri(s.Url, "api/events")) { Scheme = "ws" }.Uri, CancellationToken.None);
        var buffer = new byte[1 << 20];
        async Task<JsonElement> Next()
        {
            try { return await Receive(); }
            catch (System.Net.WebSockets.WebSocketException e) { throw new InvalidOperationException($"{e.Message}; server output:\n{s.Output}", e); }
        }
        async Task<JsonElement> Receive()
        {
            int n = 0;
            System.Net.WebSockets.WebSocketReceiveResult r;
            do { r = await ws.ReceiveAsync(new ArraySegment<byte>(buffer, n, buffer.Length - n), CancellationToken.None); n += r.Count; }
            while (!r.EndOfMessage);
            return JsonDocument.Parse(buffer.AsMemory(0, n)).RootElement.Clone();
        }
        var first = await Next();
        Assert.Equal("stats", first.GetProperty("type").GetString());
        Assert.Equal(5, first.GetProperty("data").GetProperty("nodes").GetArrayLength());
        s.Post("api/nodes/h2/crash");
        var deadline = DateTime.UtcNow.AddSeconds(20);
        JsonElement e;
        do e = await Next(); while (e.GetProperty("type").GetString() != "node" && DateTime.UtcNow < deadline);
        Assert.Equal("node", e.GetProperty("type").GetString());
        Assert.Equal("h2", e.GetProperty("data").GetProperty("node").GetString());
        Assert.Equal("crash", e.GetProperty("data").GetProperty("action").GetString());
        await ws.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
    }
}

public class EmulateServeTopologyChangeTests
{
    [Fact]
    public void Nodes_and_links_added_while_running_carry_traffic_and_bad_ones_are_refused()
    {
        using var dir = new TempDir();
        // h1 pings an address nobody has yet; a host added with it, on a link added to s1, answers.
        using var s = EmulateServeTests.Serve(dir, """
            duration: 120s
            nodes: {h1: {type: host, ip: 10.0.1.10/24}, s1: switch, r1: router, r2: router, h2: host}
            links:
              - {a: h1, b: s1}
              - {a: s1, b: r1}
              - {name: wan, a: r1, b: r2}
              - {a: r2, b: h2}
            apps:
              - {type: ping, on: h1, to: 10.0.1.99, interval: 100ms}
            """);
        var state = s.Get("api/state");
        Assert.Equal("10.0.1.10/24", state.GetProperty("nodes")[0].GetProperty("addresses")[0].GetString());
        var node = s.Post("api/nodes", """{"name": "h9", "type": "host", "ip": "10.0.1.99/24"}""");
        Assert.Equal("host", node.GetProperty("kind").GetString());
        long before = s.Get("api/apps")[0].GetProperty("received").GetInt64();
        Assert.Equal(0, before);
        var link = s.Post("api/links", """{"a": "h9", "b": "s1", "impairments": {"delay": "1ms"}}""");
        Assert.Equal("h9-s1", link.GetProperty("name").GetString());
        Assert.Equal(1000, link.GetProperty("directions")[0].GetProperty("impairments").GetProperty("delay_us").GetDouble());
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (s.Get("api/apps")[0].GetProperty("received").GetInt64() < 3)
        {
            Assert.True(DateTime.UtcNow < deadline, $"no ping answered by the new host: {s.Get("api/apps")}");
            Thread.Sleep(100);
        }
        var l = ServedEmulation.Link(s.Get("api/state"), "h9-s1");
        Assert.True(l.GetProperty("directions")[0].GetProperty("delivered").GetInt64() >= 3); // the replies
        Assert.Contains(s.Get("api/nodes").EnumerateArray(), n => n.GetProperty("name").GetString() == "s1" && n.GetProperty("links").EnumerateArray().Any(x => x.GetString() == "h9-s1"));

        (string Path, string Body, int Status, string Message)[] bad =
        [
            ("api/nodes", """{"name": "h9", "type": "host", "ip": "10.0.0.1/24"}""", 409, "already exists"),
            ("api/nodes", """{"name": "9x", "type": "switch"}""", 400, "not a node name"),
            ("api/nodes", """{"name": "x1", "type": "toaster"}""", 400, "unknown node type 'toaster'"),
            ("api/nodes", """{"name": "x1", "type": "host"}""", 400, "needs 'ip'"),
            ("api/nodes", """{"name": "x1", "type": "host", "ip": "10.0.0.300/24"}""", 400, "IPv4 address with a prefix length"),
            ("api/nodes", """{"name": "x1", "type": "host", "ip": "10.0.0.3/24", "colour": 1}""", 400, "unknown key 'colour'"),
            ("api/links", """{"a": "h9", "b": "s1", "name": "again"}""", 400, "already has a link"),
            ("api/links", """{"a": "h9", "b": "nope"}""", 400, "no node named 'nope'"),
            ("api/links", """{"a": "h1", "b": "s1"}""", 409, "already exists"),
            ("api/links", """{"a": "s1", "b": "r2", "a_ip": "10.7.0.1/24"}""", 400, "a_ip is for a router's end"),
            ("api/links", """{"a": "s1", "b": "r2", "name": "x", "impairments": {"loss": "lots"}}""", 400, "loss"),
        ];
        foreach (var c in bad)
        {
            var (status, body) = s.Send(HttpMethod.Post, c.Path, c.Body);
            Assert.True(status == c.Status, $"{c.Path} {c.Body}: {status} {body}");
            Assert.Contains(c.Message, body.GetProperty("error").GetString());
        }
        Assert.Equal(6, s.Get("api/nodes").GetArrayLength());

        // Removing the link cuts the new host off: the pings stop being answered.
        Assert.Equal("h9-s1", s.Send(HttpMethod.Delete, "api/links/h9-s1").Body.GetProperty("removed").GetString());
        Assert.DoesNotContain(s.Get("api/links").EnumerateArray(), x => x.GetProperty("name").GetString() == "h9-s1");
        Thread.Sleep(500);
        long cut = s.Get("api/apps")[0].GetProperty("received").GetInt64();
        Thread.Sleep(1000);
        Assert.Equal(cut, s.Get("api/apps")[0].GetProperty("received").GetInt64());
        // The host's port is free again: linked anew, it answers again.
        s.Post("api/links", """{"a": "h9", "b": "s1"}""");
        deadline = DateTime.UtcNow.AddSeconds(30);
        while (s.Get("api/apps")[0].GetProperty("received").GetInt64() < cut + 3)
        {
            Assert.True(DateTime.UtcNow < deadline, $"h9 linked again does not answer: {s.Get("api/apps")}");
            Thread.Sleep(100);
        }
        // Removing the node takes its link and frees its name. (A new h9 has a new MAC, which h1's
        // ARP cache learns only when its entry ages out, as with a replaced machine.)
        var removed = s.Send(HttpMethod.Delete, "api/nodes/h9");
        Assert.Equal(200, removed.Status);
        Assert.Equal("h9-s1", removed.Body.GetProperty("links")[0].GetString());
        Assert.Equal(5, s.Get("api/nodes").GetArrayLength());
        Assert.DoesNotContain(s.Get("api/nodes").EnumerateArray(), n => n.GetProperty("name").GetString() == "s1" && n.GetProperty("links").EnumerateArray().Any(x => x.GetString() == "h9-s1"));
        s.Post("api/nodes", """{"name": "h9", "type": "host", "ip": "10.0.1.99/24"}""");
        s.Post("api/links", """{"a": "h9", "b": "s1"}""");
        // A router removed takes its links with it.
        var r1 = s.Send(HttpMethod.Delete, "api/nodes/r1").Body;
        Assert.Equal(["s1-r1", "wan"], r1.GetProperty("links").EnumerateArray().Select(x => x.GetString()!).Order().ToArray());
        foreach (var (path, message) in new[] { ("api/nodes/r1", "no node named 'r1'"), ("api/links/wan", "no link named 'wan'"), ("api/nodes/nope", "no node named 'nope'") })
        {
            var (status, body) = s.Send(HttpMethod.Delete, path);
            Assert.True(status == 404, $"DELETE {path}: {status} {body}");
            Assert.Contains(message, body.GetProperty("error").GetString());
        }
        var (st, pb) = s.Send(HttpMethod.Post, "api/nodes", """{"name": "p1", "type": "process", "ip": "10.0.1.50/24", "run": ["true"]}""");
        Assert.True(st == 400, $"{st} {pb}");
        Assert.Contains("needs real time", pb.GetProperty("error").GetString());
    }

    [Fact]
    public void A_dual_stack_host_and_router_link_added_while_running_carry_ipv6()
    {
        using var dir = new TempDir();
        // h1 pings an IPv6 address beyond r1 that nobody has yet; a router link and a host added with it answer.
        using var s = EmulateServeTests.Serve(dir, """
            duration: 120s
            ipv6: true
            nodes: {h1: host, s1: switch, r1: router, s2: switch}
            links:
              - {a: h1, b: s1}
              - {a: s1, b: r1}
            apps:
              - {type: ping, on: h1, to: "fd00:0:0:7::99", interval: 100ms}
            """);
        var h1 = s.Get("api/nodes")[0].GetProperty("addresses");
        Assert.Equal("fd00:0:0:1::1/64", h1[1].GetString());
        var link = s.Post("api/links", """{"a": "r1", "b": "s2", "a_ip": "10.0.7.1/24", "a_ip6": "fd00:0:0:7::1/64"}""");
        Assert.Equal("r1-s2", link.GetProperty("name").GetString());
        Assert.Contains(s.Get("api/nodes").EnumerateArray(), n => n.GetProperty("name").GetString() == "r1"
            && n.GetProperty("addresses").EnumerateArray().Any(a => a.GetString() == "fd00:0:0:7::1/64"));
        var node = s.Post("api/nodes", """{"name": "h9", "type": "host", "ip": "10.0.7.99/24", "ip6": "fd00:0:0:7::99/64", "gateway6": "fd00:0:0:7::1"}""");
        Assert.Equal("fd00:0:0:7::99/64", node.GetProperty("addresses")[1].GetString());
        s.Post("api/links", """{"a": "h9", "b": "s2"}""");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (s.Get("api/apps")[0].GetProperty("received").GetInt64() < 3)
        {
            Assert.True(DateTime.UtcNow < deadline, $"no IPv6 ping answered across the new router link: {s.Get("api/apps")}");
            Thread.Sleep(100);
        }
        (string Path, string Body, string Message)[] bad =
        [
            ("api/nodes", """{"name": "x1", "type": "host", "ip": "10.0.7.3/24", "ip6": "fd00::7"}""", "ip6 must be a unicast IPv6 address with a prefix length"),
            ("api/nodes", """{"name": "x1", "type": "host", "ip": "10.0.7.3/24", "ip6": "fe80::7/64"}""", "ip6 must be a unicast IPv6 address"),
            ("api/nodes", """{"name": "x1", "type": "host", "ip": "10.0.7.3/24", "gateway6": "fd00:0:0:7::1"}""", "gateway6 needs ip6"),
            ("api/nodes", """{"name": "x1", "type": "router", "ip6": "fd00:0:0:7::3/64"}""", "a router's IPv6 addresses come with its links"),
            ("api/links", """{"a": "s1", "b": "s2", "a_ip6": "fd00:0:0:8::1/64"}""", "a_ip6 is for a router's end"),
        ];
        foreach (var c in bad)
        {
            var (status, body) = s.Send(HttpMethod.Post, c.Path, c.Body);
            Assert.True(status == 400, $"{c.Path} {c.Body}: {status} {body}");
            Assert.Contains(c.Message, body.GetProperty("error").GetString());
        }
        Assert.DoesNotContain(s.Get("api/nodes").EnumerateArray(), n => n.GetProperty("name").GetString() == "x1");
    }
}
