using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Netloom.Interop.Tests.Support;

namespace Netloom.Interop.Tests.Run;

/// <summary>
/// Node.js, a program no issue names, as users run it: one thread in libuv's epoll loop, with a
/// timer, and libuv's thread pool reading a file and waking the loop through an eventfd in the
/// same epoll set as the sockets. An HTTP server hands out a 3 MiB buffer, a file and a timed
/// reply, and answers a POSTed body with its sha256; clients check every byte.
/// </summary>
internal static partial class NodeServer
{
    private const string Script = """
        const http = require('http'), crypto = require('crypto'), fs = require('fs');
        const [port, host, file] = process.argv.slice(2);
        const big = crypto.randomBytes(3 << 20);
        let served = 0;
        const server = http.createServer((req, res) => {
          served++;
          if (req.url === '/big') return res.end(big);
          if (req.url === '/file') return fs.readFile(file, (err, data) => {
            console.log('/file: ' + (err ? String(err) : data.length + ' bytes'));
            res.statusCode = err ? 500 : 200;
            res.end(err ? String(err) : data);
          });
          if (req.url === '/later') return setTimeout(() => res.end('later'), 20);
          if (req.url === '/sum' && req.method === 'POST') {
            const h = crypto.createHash('sha256');
            req.on('data', d => h.update(d));
            return req.on('end', () => res.end(h.digest('hex')));
          }
          res.end('hello');
        });
        server.keepAliveTimeout = 60000;
        server.listen(Number(port), host, () => console.log('listening, /big is ' + crypto.createHash('sha256').update(big).digest('hex')));
        const stop = () => { console.log('served ' + served); process.exit(0); };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
        """;

    [GeneratedRegex("listening, /big is ([0-9a-f]{64})")]
    private static partial Regex Listening();

    /// <summary>Writes the server's script, and a file for /file, into <paramref name="dir"/>: the script's path.</summary>
    public static string Write(TempDir dir)
    {
        File.WriteAllText(dir.File("server.js"), Script);
        dir.RandomFile("served.bin", 700_000, 18);
        dir.RandomFile("upload.bin", 1_500_000, 19);
        return dir.File("server.js");
    }

    /// <summary>The sha256 of /big, as the server printed it when it began to listen.</summary>
    public static string BigSha(Background server)
    {
        server.WaitReady(60);
        return Listening().Match(server.Log).Groups[1].Value.ToUpperInvariant();
    }

    /// <summary>
    /// Through <paramref name="curl"/> (which runs curl with these arguments): /big and /file
    /// byte-exact, a 1.5 MB upload's sha256 back, the timer's reply, all on one kept-alive
    /// connection.
    /// </summary>
    public static void Check(Func<string[], (int Code, string Out, string Err)> curl, TempDir dir, string at, string bigSha, Background server)
    {
        var r = curl(["-sS", "-w", "%{http_code} %{num_connects} %{size_download}\n",
            "-o", dir.File("big.got"), $"http://{at}/big",
            "-o", dir.File("file.got"), $"http://{at}/file",
            "-o", dir.File("later.got"), $"http://{at}/later",
            "-o", dir.File("sum.got"), "--data-binary", $"@{dir.File("upload.bin")}", $"http://{at}/sum"]);
        Assert.True(r.Code == 0, $"curl exit {r.Code}\n{r.Out}{r.Err}\n{server.Log}");
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 4, r.Out + r.Err + server.Log);
        Assert.Equal(["200 1", "200 0", "200 0", "200 0"], lines.Select(l => string.Join(' ', l.Split(' ').Take(2)))); // one connection, kept alive
        Assert.True(lines[1].EndsWith(" 700000", StringComparison.Ordinal), $"/file: {r.Out}{r.Err}\n{server.Log}");
        Assert.Equal(bigSha, RunLab.Sha256(dir.File("big.got")));
        TempDir.AssertSameFile(dir.File("served.bin"), dir.File("file.got"));
        Assert.Equal("later", File.ReadAllText(dir.File("later.got")));
        Assert.Equal(RunLab.Sha256(dir.File("upload.bin")).ToLowerInvariant(), File.ReadAllText(dir.File("sum.got")));
    }

    /// <summary>How many requests the server said it served when it was stopped.</summary>
    public static long Served(Background server)
    {
        var m = Regex.Match(server.Log, @"served (\d+)");
        Assert.True(m.Success, $"node did not print its count at SIGINT:\n{server.Log}");
        return long.Parse(m.Groups[1].Value);
    }
}

public partial class OffloadTests
{
    /// <summary>
    /// With UV_USE_IO_URING=1 libuv would add sockets to its epoll set through an io_uring of its
    /// own, past the interposer (no request was ever answered): the interposer refuses that ring,
    /// and libuv takes its epoll path.
    /// </summary>
    [ToolTheory("node", "curl", "wrk")]
    [InlineData("0", false)]
    [InlineData("50", false)]
    [InlineData("0", true)]
    public void A_node_http_server_serves_byte_exact_and_under_load_with_its_timer_and_thread_pool(string busyPoll, bool libuvWantsIoUring)
    {
        using var dir = new TempDir();
        string script = NodeServer.Write(dir);
        int port = FreePort();
        var argv = RunLab.OffloadCommand(["node", script, port.ToString(), "127.0.0.1", dir.File("served.bin")], VariantFlags(busyPoll));
        if (libuvWantsIoUring) argv = ["env", "UV_USE_IO_URING=1", .. argv[1..]];
        using var server = new Background("listening", argv[0], argv[1..]);
        string bigSha = NodeServer.BigSha(server);
        string at = $"127.0.0.1:{port}";
        NodeServer.Check(args => Sh.Run(Minute, "curl", args), dir, at, bigSha, server);

        // Many connections at once: every request answered, none failed.
        var load = Sh.Run(Minute, "wrk", "-t", "1", "-c", "100", "-d", "2s", $"http://{at}/");
        Assert.True(load.Code == 0, load.Out + load.Err);
        var requests = Regex.Match(load.Out, @"(\d+) requests in");
        Assert.True(requests.Success, load.Out);
        Assert.DoesNotContain("Socket errors", load.Out);
        Assert.DoesNotContain("Non-2xx", load.Out);
        NodeServer.Check(args => Sh.Run(Minute, "curl", args), dir, at, bigSha, server); // and after the load
        server.Stop();
        Assert.True(NodeServer.Served(server) >= long.Parse(requests.Groups[1].Value) + 8, server.Log);
        var (accepted, _) = CountsIn(server.Log);
        Assert.True(accepted >= 102, server.Log); // wrk's 100 and curl's two, offloaded
    }
}

public partial class RunInteropTests
{
    [ToolFact("node", "curl")]
    public void A_node_http_server_under_netloom_run_serves_curl_under_netloom_run_byte_exact()
    {
        using var dir = new TempDir();
        string script = NodeServer.Write(dir);
        string name = RunLab.Unique("nlnode"), shm = $"shm:{name}";
        int net = RunLab.Subnet();
        string serverIp = $"10.238.{net}.1", client = $"10.238.{net}.2/24";
        using var server = RunLab.Start("listening", null, shm, $"{serverIp}/24", ["node", script, "8080", serverIp, dir.File("served.bin")]);
        string bigSha = NodeServer.BigSha(server);
        NodeServer.Check(args => RunLab.Run(Minute, null, shm, client, ["curl", .. args]), dir, $"{serverIp}:8080", bigSha, server);
        server.Stop();
        Assert.Equal(4, NodeServer.Served(server));
        Assert.DoesNotContain("Unhandled", server.Log);
    }
}
