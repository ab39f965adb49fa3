using System.Buffers;
using System.Net.WebSockets;
using System.Security.Cryptography;
using Netloom.AspNetCore;

var builder = WebApplication.CreateBuilder(args);

// The transport: Kestrel's own sockets (default), or one of Netloom's. The two lines a program adds.
switch (builder.Configuration["Transport"])
{
    case "iouring":
        builder.WebHost.UseNetloomIoUring(o =>
        {
            if (int.TryParse(builder.Configuration["Threads"], out int t)) o.Threads = t;
            if (bool.TryParse(builder.Configuration["Inline"], out bool inline)) o.ApplicationInline = inline;
        });
        break;
    case "stack":
        builder.WebHost.UseNetloomStack(builder.Configuration["PortSpec"]!, builder.Configuration["Address"]!, o => o.Gateway = builder.Configuration["Gateway"]);
        break;
}
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = null); // the 64 MiB uploads
builder.Services.AddGrpc();

var app = builder.Build();
app.UseWebSockets();

// TechEmpower plaintext: "Hello, World!" with Server and Date headers (Kestrel adds both).
app.MapGet("/plaintext", () => Results.Text("Hello, World!", "text/plain"));

// Who Kestrel thinks is on the other end, and which transport carries the connection.
app.MapGet("/whoami", (HttpContext c) => $"{c.Connection.RemoteIpAddress}:{c.Connection.RemotePort} -> {c.Connection.LocalIpAddress}:{c.Connection.LocalPort} {c.Connection.Id}");

// N deterministic bytes (Random(seed)), written in 64 KiB pieces with a Content-Length.
app.MapGet("/bytes/{n:long}", async (HttpContext c, long n, int? seed) =>
{
    c.Response.ContentType = "application/octet-stream";
    c.Response.ContentLength = n;
    var random = new Random(seed ?? 1);
    var chunk = new byte[65536];
    for (long left = n; left > 0;)
    {
        int k = (int)Math.Min(left, chunk.Length);
        random.NextBytes(chunk.AsSpan(0, k));
        await c.Response.Body.WriteAsync(chunk.AsMemory(0, k), c.RequestAborted);
        left -= k;
    }
});

// The sha256 and length of the request body (Content-Length or chunked).
app.MapPost("/sha256", async (HttpContext c) =>
{
    using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    long total = 0;
    var reader = c.Request.BodyReader;
    while (true)
    {
        var r = await reader.ReadAsync(c.RequestAborted);
        foreach (var seg in r.Buffer) { hash.AppendData(seg.Span); total += seg.Length; }
        reader.AdvanceTo(r.Buffer.End);
        if (r.IsCompleted) break;
    }
    return $"{Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant()} {total}";
});

// Echoes the body without a Content-Length: the response is chunked.
app.MapPost("/echo", async (HttpContext c) =>
{
    c.Response.ContentType = "application/octet-stream";
    await c.Request.Body.CopyToAsync(c.Response.Body, c.RequestAborted);
});

// A chunked response in pieces, each flushed.
app.MapGet("/chunked/{count:int}", async (HttpContext c, int count) =>
{
    c.Response.ContentType = "text/plain";
    for (int i = 0; i < count; i++)
    {
        await c.Response.WriteAsync($"piece {i}\n", c.RequestAborted);
        await c.Response.Body.FlushAsync(c.RequestAborted);
    }
});

// Answers after a delay (graceful shutdown must let it finish).
app.MapGet("/slow/{ms:int}", async (int ms) => { await Task.Delay(ms); return $"slept {ms}"; });

// The server aborts the connection half-way through a declared 1 MiB body.
app.MapGet("/abort", async (HttpContext c) =>
{
    c.Response.ContentLength = 1 << 20;
    await c.Response.Body.WriteAsync(new byte[100_000]);
    await c.Response.Body.FlushAsync();
    c.Abort();
});

// Requests the server saw aborted by the client (a client that gave up mid-body).
long clientAborts = 0;
app.MapPost("/drain", async (HttpContext c) =>
{
    try { await c.Request.Body.CopyToAsync(Stream.Null, c.RequestAborted); }
    catch (Exception e) when (e is IOException or OperationCanceledException or Microsoft.AspNetCore.Connections.ConnectionResetException or BadHttpRequestException)
    {
        Interlocked.Increment(ref clientAborts);
        return Results.Empty;
    }
    return Results.Text("drained");
});
app.MapGet("/aborts", () => Interlocked.Read(ref clientAborts).ToString());

// WebSocket echo: every message comes back as it was sent.
app.Map("/ws", async (HttpContext c) =>
{
    if (!c.WebSockets.IsWebSocketRequest) { c.Response.StatusCode = 400; return; }
    using var ws = await c.WebSockets.AcceptWebSocketAsync();
    var buffer = new byte[64 << 10];
    while (true)
    {
        var r = await ws.ReceiveAsync(buffer, CancellationToken.None);
        if (r.MessageType == WebSocketMessageType.Close) { await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None); break; }
        await ws.SendAsync(buffer.AsMemory(0, r.Count), r.MessageType, r.EndOfMessage, CancellationToken.None);
    }
});

app.MapGrpcService<Netloom.AspNetCore.TestApp.EchoService>();

app.Run();
