using System.Text;
using Netloom.Sockets;

namespace Netloom.Cli.Apps;

/// <summary>
/// A small static HTTP/1.1 file server (RFC 9112): GET and HEAD of files under one directory,
/// Content-Length bodies, persistent connections unless the client asks to close. Enough for
/// curl and wrk; anything else gets a clear status code.
/// </summary>
internal sealed class HttpFileServer(string root)
{
    private const int MaxHeader = 16 << 10;
    private readonly string _root = Path.GetFullPath(root);
    public long Requests, BytesServed;

    public async Task Serve(TcpConnection c, CancellationToken ct)
    {
        var buf = new byte[MaxHeader];
        int have = 0;
        while (true)
        {
            int end;
            while ((end = HeaderEnd(buf.AsSpan(0, have))) < 0)
            {
                if (have == buf.Length) { await Respond(c, 431, "Request Header Fields Too Large", false, ct); return; }
                int n = await c.ReadAsync(buf.AsMemory(have), ct);
                if (n == 0) return; // the client closed between requests
                have += n;
            }
            var head = Encoding.ASCII.GetString(buf, 0, end);
            Buffer.BlockCopy(buf, end + 4, buf, 0, have - end - 4); // keep a pipelined next request
            have -= end + 4;
            Interlocked.Increment(ref Requests);
            if (!await Handle(c, head, ct)) return;
        }
    }

    private static int HeaderEnd(ReadOnlySpan<byte> b) => b.IndexOf("\r\n\r\n"u8);

    /// <summary>Answers one request; false when the connection should close.</summary>
    private async Task<bool> Handle(TcpConnection c, string head, CancellationToken ct)
    {
        var lines = head.Split("\r\n");
        var request = lines[0].Split(' ');
        if (request.Length != 3 || !request[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            await Respond(c, 400, "Bad Request", false, ct);
            return false;
        }
        bool http10 = request[2] == "HTTP/1.0";
        bool keepAlive = !http10;
        foreach (var line in lines.AsSpan(1))
        {
            int colon = line.IndexOf(':');
            if (colon <= 0) continue;
            if (line[..colon].Trim().Equals("Connection", StringComparison.OrdinalIgnoreCase))
            {
                var v = line[(colon + 1)..].Trim();
                if (v.Equals("close", StringComparison.OrdinalIgnoreCase)) keepAlive = false;
                else if (v.Equals("keep-alive", StringComparison.OrdinalIgnoreCase)) keepAlive = true;
            }
        }
        string method = request[0];
        if (method is not ("GET" or "HEAD"))
        {
            await Respond(c, 405, "Method Not Allowed", keepAlive, ct, "Allow: GET, HEAD\r\n");
            return keepAlive;
        }
        string? path = Resolve(request[1]);
        if (path is null || !File.Exists(path))
        {
            await Respond(c, path is null ? 400 : 404, path is null ? "Bad Request" : "Not Found", keepAlive, ct);
            return keepAlive;
        }
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        long length = file.Length;
        var header = $"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nContent-Type: {ContentType(path)}\r\nServer: netloom\r\n{(keepAlive ? "" : "Connection: close\r\n")}\r\n";
        await c.WriteAsync(Encoding.ASCII.GetBytes(header), ct);
        if (method == "GET")
        {
            var chunk = new byte[256 << 10];
            int n;
            while ((n = await file.ReadAsync(chunk, ct)) > 0)
            {
                await c.WriteAsync(chunk.AsMemory(0, n), ct);
                Interlocked.Add(ref BytesServed, n);
            }
        }
        if (!keepAlive)
        {
            c.ShutdownSend();
            await c.FlushAsync(ct);
        }
        return keepAlive;
    }

    /// <summary>The file a request target names, or null when it is malformed or leaves the root.</summary>
    private string? Resolve(string target)
    {
        if (!target.StartsWith('/')) return null;
        int q = target.IndexOfAny(['?', '#']);
        if (q >= 0) target = target[..q];
        string relative;
        try { relative = Uri.UnescapeDataString(target).TrimStart('/'); }
        catch (UriFormatException) { return null; }
        if (relative.Contains('\0')) return null;
        var full = Path.GetFullPath(Path.Combine(_root, relative.Length == 0 ? "index.html" : relative));
        if (!full.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal) && full != _root) return null;
        if (Directory.Exists(full)) full = Path.Combine(full, "index.html");
        return full;
    }

    private static string ContentType(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".html" or ".htm" => "text/html",
        ".txt" => "text/plain",
        ".json" => "application/json",
        _ => "application/octet-stream",
    };

    private static async Task Respond(TcpConnection c, int status, string reason, bool keepAlive, CancellationToken ct, string extra = "")
    {
        var body = $"{status} {reason}\n";
        var text = $"HTTP/1.1 {status} {reason}\r\nContent-Length: {body.Length}\r\nContent-Type: text/plain\r\n{extra}{(keepAlive ? "" : "Connection: close\r\n")}\r\n{body}";
        await c.WriteAsync(Encoding.ASCII.GetBytes(text), ct);
        if (!keepAlive)
        {
            c.ShutdownSend();
            await c.FlushAsync(ct);
        }
    }
}
