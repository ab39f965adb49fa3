using System.Net;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Netloom.Time;

namespace Netloom.Cli.Emulate;

/// <summary>
/// The control API and live view of <c>netloom emulate --serve</c>: Kestrel (from the ASP.NET Core
/// shared framework) on one address, JSON in and out. Handlers never touch the network: each one
/// queues a command to the emulator's thread (<see cref="LiveEmulation.Invoke{T}"/>) and awaits it.
/// </summary>
internal sealed class ControlServer : IAsyncDisposable
{
    private const int MaxJsonBody = 64 << 10;
    private const int MaxScenarioBody = 4 << 20;
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(10);
    private readonly WebApplication _app;
    private readonly LiveEmulation _live;
    private readonly EventHub _events;
    private readonly bool _realTime;

    private ControlServer(WebApplication app, LiveEmulation live, EventHub events, bool realTime)
    {
        _app = app;
        _live = live;
        _events = events;
        _realTime = realTime;
    }

    public Uri Address { get; private set; } = null!;

    public static async Task<ControlServer> StartAsync(IPEndPoint endpoint, LiveEmulation live, EventHub events, bool realTime)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = "netloom" });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(o =>
        {
            o.AddServerHeader = false;
            o.Limits.MaxRequestBodySize = MaxScenarioBody;
            o.Limits.MaxRequestHeadersTotalSize = 32 << 10;
            // Each event stream or capture holds a connection and a bounded queue: cap how many.
            o.Limits.MaxConcurrentConnections = 256;
            o.Limits.MaxConcurrentUpgradedConnections = 64;
            o.Listen(endpoint);
        });
        var app = builder.Build();
        var server = new ControlServer(app, live, events, realTime);
        app.Use(async (ctx, next) =>
        {
            try { await next(ctx); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A bug of ours, not the client's: say so, keep serving, and leave the details on stderr.
                Console.Error.WriteLine($"netloom: internal error serving {ctx.Request.Method} {ctx.Request.Path}: {e}");
                if (!ctx.Response.HasStarted) await Problem(500, $"internal error: {e.GetType().Name}: {e.Message}").ExecuteAsync(ctx);
            }
        });
        app.UseWebSockets();
        server.Map(app);
        await app.StartAsync();
        var addr = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.Address = new Uri(addr.Replace("[::]", "127.0.0.1", StringComparison.Ordinal) + "/");
        return server;
    }

    private void Map(WebApplication app)
    {
        app.MapGet("/", () => Asset("index.html", "text/html; charset=utf-8"));
        app.MapGet("/app.js", () => Asset("app.js", "text/javascript; charset=utf-8"));
        app.MapGet("/style.css", () => Asset("style.css", "text/css; charset=utf-8"));
        app.MapGet("/openapi.json", () => Asset("openapi.json", "application/json"));

        app.MapGet("/api/state", () => Run(_live.State));
        app.MapGet("/api/nodes", () => Run(_live.Nodes));
        app.MapGet("/api/links", () => Run(_live.Links));
        app.MapGet("/api/apps", () => Run(_live.Apps));
        app.MapGet("/api/links/{name}", (string name) => Run(() => _live.LinkState(_live.FindLink(name))));
        app.MapMethods("/api/links/{name}", ["PATCH"], async (string name, HttpRequest req) =>
        {
            var body = await Body(req, MaxJsonBody);
            return body.Error ?? await Run(() => _live.SetImpairments(name, body.Text!));
        });
        app.MapPost("/api/links/{name}/down", (string name) => Run(() => _live.LinkUpDown(name, up: false)));
        app.MapPost("/api/links/{name}/up", (string name) => Run(() => _live.LinkUpDown(name, up: true)));
        app.MapGet("/api/links/{name}/capture", (HttpContext ctx, string name) => Capture(ctx, name, frames => _live.StartCapture(name, frames)));
        app.MapGet("/api/nodes/{name}/ports/{port}/capture", (HttpContext ctx, string name, string port) =>
            int.TryParse(port, out int p) ? Capture(ctx, $"{name}-{p}", frames => _live.StartPortCapture(name, p, frames))
                : Problem(400, $"'{port}' is not a port number").ExecuteAsync(ctx));
        app.MapPost("/api/partition", async (HttpRequest req) =>
        {
            var (doc, error) = await Json(req);
            if (error is not null) return error;
            using (doc)
            {
                if (!doc!.RootElement.TryGetProperty("groups", out var g) || g.ValueKind != JsonValueKind.Array
                    || g.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.Array || x.EnumerateArray().Any(n => n.ValueKind != JsonValueKind.String)))
                    return Problem(400, "partition needs groups of node names, such as {\"groups\": [[\"h1\", \"s1\"], [\"h2\"]]}");
                var groups = g.EnumerateArray().Select(x => x.EnumerateArray().Select(n => n.GetString()!).ToList()).ToList();
                return await Run(() => _live.Partition(groups));
            }
        });
        app.MapPost("/api/heal", () => Run(_live.Heal));
        app.MapPost("/api/nodes", async (HttpRequest req) =>
        {
            var (doc, error) = await Json(req);
            if (error is not null) return error;
            using (doc)
            {
                var r = doc!.RootElement;
                if (Str(r, "name") is not { } name || Str(r, "type") is not { } type)
                    return Problem(400, "a node needs 'name' and 'type' (host, switch, router or process), and a host or process node 'ip'");
                if (Unknown(r, "name", "type", "ip", "gateway", "ip6", "gateway6", "mtu", "run", "start") is { } bad) return bad;
                if (Int(r, "mtu", 1500) is not { } mtu) return Problem(400, "'mtu' must be a whole number");
                string[]? run = null;
                if (r.TryGetProperty("run", out var rv))
                {
                    if (rv.ValueKind != JsonValueKind.Array || rv.GetArrayLength() is 0 or > 256 || rv.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.String))
                        return Problem(400, "'run' must be a list of strings: the program and its arguments, such as [\"redis-server\", \"--port\", \"6379\"]");
                    run = rv.EnumerateArray().Select(x => x.GetString()!).ToArray();
                }
                Duration start = default;
                if (r.TryGetProperty("start", out var sv))
                {
                    if (TimeOf(sv) is not { } d) return Problem(400, "'start' must be a time such as \"2s\" (at most 1h)");
                    start = d;
                }
                return await Run(() => _live.AddNode(name, type, Str(r, "ip"), Str(r, "gateway"), mtu, run, start, Str(r, "ip6"), Str(r, "gateway6")));
            }
        });
        app.MapPost("/api/links", async (HttpRequest req) =>
        {
            var (doc, error) = await Json(req);
            if (error is not null) return error;
            using (doc)
            {
                var r = doc!.RootElement;
                if (Str(r, "a") is not { } a || Str(r, "b") is not { } b) return Problem(400, "a link needs 'a' and 'b' (node names)");
                if (Unknown(r, "a", "b", "name", "a_ip", "b_ip", "a_ip6", "b_ip6", "mtu", "impairments") is { } bad) return bad;
                if (Int(r, "mtu", 1500) is not { } mtu) return Problem(400, "'mtu' must be a whole number");
                string? imp = r.TryGetProperty("impairments", out var i) ? i.GetRawText() : null;
                return await Run(() => _live.AddLink(a, b, Str(r, "name"), Str(r, "a_ip"), Str(r, "b_ip"), mtu, imp, Str(r, "a_ip6"), Str(r, "b_ip6")));
            }
        });
        app.MapDelete("/api/nodes/{name}", (string name) => Run(() => _live.RemoveNode(name)));
        app.MapDelete("/api/links/{name}", (string name) => Run(() => _live.RemoveLink(name)));
        app.MapPost("/api/nodes/{name}/crash", (string name) => Run(() => _live.CrashRestart(name, crash: true)));
        app.MapPost("/api/nodes/{name}/restart", (string name) => Run(() => _live.CrashRestart(name, crash: false)));
        app.MapPost("/api/apps/{name}/stop", (string name) => Run(() => _live.StartStopApp(name, start: false)));
        app.MapPost("/api/apps/{name}/start", (string name) => Run(() => _live.StartStopApp(name, start: true)));
        app.MapPost("/api/pause", () => Run(_live.Pause));
        app.MapPost("/api/resume", async (HttpRequest req) =>
        {
            var (doc, error) = await Json(req, optional: true);
            if (error is not null) return error;
            using (doc)
            {
                Duration? span = null;
                if (doc is not null && doc.RootElement.TryGetProperty("for", out var f))
                {
                    if (TimeOf(f) is not { } d) return Problem(400, "'for' must be a time such as \"5s\" or \"250ms\"");
                    span = d;
                }
                return await Run(() => _live.Resume(span));
            }
        });
        app.MapPost("/api/step", async (HttpRequest req) =>
        {
            var (doc, error) = await Json(req, optional: true);
            if (error is not null) return error;
            using (doc)
            {
                long events = 1;
                Duration? span = null;
                if (doc is not null && doc.RootElement.TryGetProperty("duration", out var d))
                {
                    if (TimeOf(d) is not { } t) return Problem(400, "'duration' must be a time such as \"10ms\" (at most 1h)");
                    span = t;
                }
                else if (doc is not null && doc.RootElement.TryGetProperty("events", out var e))
                {
                    if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out events) || events < 1 || events > 10_000_000)
                        return Problem(400, "'events' must be a whole number from 1 to 10000000");
                }
                return await Run(() => _live.Step(events, span));
            }
        });
        app.MapPut("/api/scenario", async (HttpRequest req) =>
        {
            var body = await Body(req, MaxScenarioBody);
            return body.Error ?? await Run(() => _live.Load(body.Text!, _realTime));
        });
        app.MapGet("/api/events", Events);
        app.MapFallback((HttpContext ctx) => Problem(404, $"no such resource: {ctx.Request.Method} {ctx.Request.Path}; see /openapi.json"));
    }

    private static IResult Problem(int status, string message) => Results.Json(new { error = message }, statusCode: status);

    private async Task<IResult> Run<T>(Func<T> command)
    {
        if (_live.Failure is { } f) return Problem(500, $"the emulation stopped: {f.Message}");
        var task = _live.Invoke(command);
        try
        {
            var result = await task.WaitAsync(CommandTimeout);
            return Results.Json(result, EventHub.JsonOptions);
        }
        catch (ApiException e) { return Problem(e.Status, e.Message); }
        catch (TimeoutException) { return Problem(503, "the emulator did not take the command within 10 s"); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or KeyNotFoundException) { return Problem(400, e.Message); }
        catch (Exception e)
        {
            // A bug of ours, not the client's: say so, keep serving, and leave the details on stderr.
            Console.Error.WriteLine($"netloom: internal error in a command: {e}");
            return Problem(500, $"internal error: {e.GetType().Name}: {e.Message}");
        }
    }

    private static string? Str(JsonElement e, string key) =>
        e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int? Int(JsonElement e, string key, int absent) =>
        !e.TryGetProperty(key, out var v) ? absent : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) ? n : null;

    private static IResult? Unknown(JsonElement e, params string[] allowed)
    {
        foreach (var p in e.EnumerateObject())
            if (Array.IndexOf(allowed, p.Name) < 0) return Problem(400, $"unknown key '{p.Name}'; expected one of {string.Join(", ", allowed)}");
        return null;
    }

    private static Duration? TimeOf(JsonElement e) =>
        e.ValueKind == JsonValueKind.String && Quantity.TryDuration(e.GetString()!, out var d) && d > Duration.Zero && d <= Duration.FromSeconds(3600) ? d : null;

    private static async Task<(string? Text, IResult? Error)> Body(HttpRequest req, int limit)
    {
        if (req.ContentLength > limit) return (null, Problem(413, $"the body is over {limit} bytes"));
        using var buffer = new MemoryStream();
        var chunk = new byte[16 << 10];
        int n;
        try
        {
            while ((n = await req.Body.ReadAsync(chunk)) > 0)
            {
                if (buffer.Length + n > limit) return (null, Problem(413, $"the body is over {limit} bytes"));
                buffer.Write(chunk, 0, n);
            }
        }
        catch (BadHttpRequestException e) { return (null, Problem(e.StatusCode, e.Message)); }
        if (buffer.Length == 0) return (null, Problem(400, "the request needs a body"));
        try { return (new UTF8Encoding(false, true).GetString(buffer.GetBuffer(), 0, (int)buffer.Length), null); }
        catch (DecoderFallbackException) { return (null, Problem(400, "the body is not valid UTF-8")); }
    }

    private static async Task<(JsonDocument? Doc, IResult? Error)> Json(HttpRequest req, bool optional = false)
    {
        if (optional && req.ContentLength is null or 0 && !req.Headers.TransferEncoding.Any()) return (null, null);
        var (text, error) = await Body(req, MaxJsonBody);
        if (error is not null) return (null, optional && text is null && req.ContentLength is null ? null : error);
        try
        {
            var doc = JsonDocument.Parse(text!);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) { doc.Dispose(); return (null, Problem(400, "the body must be a JSON object")); }
            return (doc, null);
        }
        catch (JsonException e) { return (null, Problem(400, $"the body is not valid JSON: {e.Message}")); }
    }

    private async Task Capture(HttpContext ctx, string name, Func<long, LiveCapture> start)
    {
        long frames = 0;
        if (ctx.Request.Query.TryGetValue("frames", out var f) && (!long.TryParse(f, out frames) || frames < 1))
        {
            await Problem(400, "'frames' must be a whole number of at least 1").ExecuteAsync(ctx);
            return;
        }
        LiveCapture tap;
        try { tap = await _live.Invoke(() => start(frames)).WaitAsync(CommandTimeout); }
        catch (ApiException e) { await Problem(e.Status, e.Message).ExecuteAsync(ctx); return; }
        ctx.Response.ContentType = "application/x-pcapng";
        ctx.Response.Headers.ContentDisposition = $"attachment; filename=\"{name}.pcapng\"";
        var stop = ctx.RequestAborted;
        try
        {
            await foreach (var chunk in tap.Reader.ReadAllAsync(stop))
            {
                tap.Taken(chunk);
                await ctx.Response.Body.WriteAsync(chunk, stop);
                if (!tap.Reader.TryPeek(out _)) await ctx.Response.Body.FlushAsync(stop);
            }
        }
        catch (OperationCanceledException) { }
        catch (IOException) { }
        finally { _ = _live.Invoke(() => _live.StopCapture(tap)); }
    }

    private async Task Events(HttpContext ctx)
    {
        if (ctx.WebSockets.IsWebSocketRequest) { await WebSocketEvents(ctx); return; }
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        var reader = _events.Subscribe(out var unsubscribe);
        var stop = ctx.RequestAborted;
        try
        {
            // A first state at once, so a client need not wait for the next second's stats.
            var first = await _live.Invoke(_live.State).WaitAsync(CommandTimeout, stop);
            await ctx.Response.WriteAsync($"event: stats\ndata: {JsonSerializer.Serialize(first, EventHub.JsonOptions)}\n\n", stop);
            await ctx.Response.Body.FlushAsync(stop);
            await foreach (var (type, json) in reader.ReadAllAsync(stop))
            {
                await ctx.Response.WriteAsync($"event: {type}\ndata: {json}\n\n", stop);
                await ctx.Response.Body.FlushAsync(stop);
            }
        }
        catch (OperationCanceledException) { }
        catch (IOException) { }
        catch (TimeoutException) { }
        finally { unsubscribe(); }
    }

    /// <summary>The same events over a WebSocket: one text message each, {"type": ..., "data": ...}.</summary>
    private async Task WebSocketEvents(HttpContext ctx)
    {
        using var ws = await ctx.WebSockets.AcceptWebSocketAsync();
        var reader = _events.Subscribe(out var unsubscribe);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        // The client sends nothing we use; reading notices its close.
        var closed = Task.Run(async () =>
        {
            var buffer = new byte[1024];
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var r = await ws.ReceiveAsync(buffer, stop.Token);
                    if (r.MessageType == System.Net.WebSockets.WebSocketMessageType.Close) break;
                }
            }
            catch (Exception e) when (e is OperationCanceledException or System.Net.WebSockets.WebSocketException) { }
            stop.Cancel();
        });
        try
        {
            async Task Send(string type, string json) =>
                await ws.SendAsync(Encoding.UTF8.GetBytes($"{{\"type\":\"{type}\",\"data\":{json}}}"), System.Net.WebSockets.WebSocketMessageType.Text, true, stop.Token);
            var first = await _live.Invoke(_live.State).WaitAsync(CommandTimeout, stop.Token);
            await Send("stats", JsonSerializer.Serialize(first, EventHub.JsonOptions));
            await foreach (var (type, json) in reader.ReadAllAsync(stop.Token)) await Send(type, json);
            if (ws.State == System.Net.WebSockets.WebSocketState.Open)
                await ws.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "the emulation ended", CancellationToken.None);
        }
        catch (Exception e) when (e is OperationCanceledException or System.Net.WebSockets.WebSocketException or TimeoutException) { }
        catch (Exception e) { Console.Error.WriteLine($"netloom: websocket events: {e}"); }
        finally
        {
            unsubscribe();
            stop.Cancel();
            await closed;
            // The client asked to close: complete the handshake.
            if (ws.State == System.Net.WebSockets.WebSocketState.CloseReceived)
                try { await ws.CloseOutputAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None); }
                catch (System.Net.WebSockets.WebSocketException) { }
        }
    }

    private static IResult Asset(string name, string type)
    {
        var s = Assembly.GetExecutingAssembly().GetManifestResourceStream($"live/{name}");
        return s is null ? Problem(404, $"{name} is not built in") : Results.Stream(s, type);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
