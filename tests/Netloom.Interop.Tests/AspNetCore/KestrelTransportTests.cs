using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Grpc.Net.Client;
using Netloom.AspNetCore.TestApp;
using Netloom.Interop.Tests.Support;

namespace Netloom.Interop.Tests.AspNetCore;

/// <summary>
/// An unmodified minimal-API app on each Netloom transport, driven by real clients: curl, h2load,
/// raw kernel sockets, ClientWebSocket and Grpc.Net.Client. "iouring" is Kestrel on the io_uring
/// engine over loopback; "stack" is Kestrel on the user-level stack over a TAP, driven from the kernel's side.
/// </summary>
public class KestrelTransportTests
{
    private const int Big = 64 << 20;

    private static string Sha(ReadOnlySpan<byte> data) => Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant();

    private static string ShaFile(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(f)).ToLowerInvariant();
    }

    /// <summary>What the app's /bytes/N?seed=S sends: Random(S) filling 64 KiB pieces in turn.</summary>
    private static string ExpectedBytesSha(long n, int seed)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var random = new Random(seed);
        var chunk = new byte[65536];
        for (long left = n; left > 0;)
        {
            int k = (int)Math.Min(left, chunk.Length);
            random.NextBytes(chunk.AsSpan(0, k));
            hash.AppendData(chunk.AsSpan(0, k));
            left -= k;
        }
        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    private static string RandomFile(KestrelLab lab, string name, int size, int seed)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        var path = lab.Dir.File(name);
        File.WriteAllBytes(path, data);
        return path;
    }

    private static string Curl(KestrelLab lab, params string[] args)
    {
        var r = lab.Exec(120, ["curl", "-sS", "--max-time", "100", .. args]);
        Assert.True(r.Code == 0, $"curl {string.Join(' ', args)} exited {r.Code}: {r.Err}\napp:\n{lab.Log}");
        return r.Out;
    }

    [RootTheory("ip", "curl")]
    [InlineData("iouring")]
    [InlineData("iouring-threadpool")]
    [InlineData("stack")]
    public async Task Http1_keep_alive_pipelining_and_chunked_bodies_work(string transport)
    {
        using var lab = new KestrelLab(transport);

        // Keep-alive: two requests, one connection; Kestrel sees the kernel's endpoints.
        var two = Curl(lab, "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects} %{http_code}\n", lab.Url("/plaintext"), lab.Url("/plaintext"));
        Assert.Equal("1 200\n0 200\n", two);
        var who = Curl(lab, lab.Url("/whoami"));
        string kernelIp = transport == "stack" ? lab.Host[..lab.Host.LastIndexOf('.')] + ".1" : "127.0.0.1";
        Assert.StartsWith($"{kernelIp}:", who);
        Assert.Contains($" -> {lab.Host}:{lab.Port} netloom-", who); // the connection id says Netloom's transport carried it

        // Pipelining: three requests in one write; three answers in order, then the server closes as asked.
        using (var s = await lab.ConnectAsync())
        {
            string req = $"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\nGET /chunked/2 HTTP/1.1\r\nHost: x\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            await s.SendAsync(Encoding.ASCII.GetBytes(req));
            var all = new MemoryStream();
            var buf = new byte[65536];
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            int n;
            while ((n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token)) > 0) all.Write(buf, 0, n);
            var text = Encoding.ASCII.GetString(all.ToArray());
            Assert.Equal(3, text.Split("HTTP/1.1 200 OK").Length - 1);
            int first = text.IndexOf("Hello, World!"), chunk = text.IndexOf("piece 1\n"), last = text.LastIndexOf("Hello, World!");
            Assert.True(first >= 0 && chunk > first && last > chunk, text);
        }

        // Chunked response, chunked request (echoed back chunked).
        var headersAndBody = Curl(lab, "-D", "-", lab.Url("/chunked/50"));
        Assert.Contains("Transfer-Encoding: chunked", headersAndBody);
        Assert.Contains("piece 0\n", headersAndBody);
        Assert.EndsWith("piece 49\n", headersAndBody);
        var file = RandomFile(lab, "chunked.bin", 3 << 20, 7);
        var echoed = lab.Dir.File("echoed.bin");
        Curl(lab, "-H", "Transfer-Encoding: chunked", "--data-binary", $"@{file}", "-o", echoed, lab.Url("/echo"));
        Assert.Equal(ShaFile(file), ShaFile(echoed));
    }

    [RootTheory("ip", "wrk")]
    [InlineData("iouring")]
    [InlineData("stack")]
    public void Wrk_with_and_without_pipelining_gets_only_complete_200s(string transport)
    {
        using var lab = new KestrelLab(transport);
        var script = lab.Dir.File("pipeline.lua");
        File.WriteAllText(script, "init = function(args)\n  local r = {}\n  for i = 1, 16 do r[i] = wrk.format() end\n  req = table.concat(r)\nend\nrequest = function() return req end\n");
        foreach (var extra in new[] { Array.Empty<string>(), ["-s", script] })
        {
            var w = lab.Exec(60, ["wrk", "-t", "1", "-c", "32", "-d", "2s", .. extra, lab.Url("/plaintext")]);
            Assert.True(w.Code == 0, w.Err + w.Out);
            // wrk says so when a response was not 2xx or 3xx, or a socket failed (connect, read, write, timeout).
            Assert.DoesNotContain("Non-2xx", w.Out);
            Assert.DoesNotContain("Socket errors", w.Out);
            var requests = System.Text.RegularExpressions.Regex.Match(w.Out, @"(\d+) requests in");
            Assert.True(requests.Success && long.Parse(requests.Groups[1].Value) > 100, w.Out);
        }
        Assert.Equal("Hello, World!", Curl(lab, lab.Url("/plaintext")));
    }

    [Theory]
    [InlineData("tap:nlkbad", "10.0.0.2", "expected ADDRESS/PREFIX")]
    [InlineData("bogus:x", "10.0.0.2/24", "bogus:x")]
    [InlineData("tap:nlkbad", "10.0.0.2/24 --Gateway nowhere", "not an IPv4 address")]
    public void Bad_stack_settings_stop_the_app_at_start_with_a_message_that_says_what_is_wrong(string port, string address, string expected)
    {
        var parts = address.Split(' ');
        var r = Sh.Run(TimeSpan.FromSeconds(60), "dotnet", [KestrelLab.AppDll, "--Transport", "stack", "--PortSpec", port, "--Address", parts[0], .. parts[1..], "--urls", "http://10.0.0.2:80"]);
        Assert.NotEqual(0, r.Code);
        Assert.Contains(expected, r.Out + r.Err);
    }

    [RootFact("curl", "gcc")]
    public void Curl_and_wrk_under_netloom_run_reach_Kestrel_on_the_stack_over_shm()
    {
        using var lab = new KestrelLab("stack-shm");
        var two = Curl(lab, "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects} %{http_code}\n", lab.Url("/plaintext"), lab.Url("/plaintext"));
        Assert.Equal("1 200\n0 200\n", two);
        var got = lab.Dir.File("shm.bin");
        Assert.Equal($"200 {16 << 20}", Curl(lab, "-o", got, "-w", "%{http_code} %{size_download}", lab.Url($"/bytes/{16 << 20}?seed=6")));
        Assert.Equal(ExpectedBytesSha(16 << 20, 6), ShaFile(got));
        var up = RandomFile(lab, "shm-up.bin", 16 << 20, 10);
        Assert.Equal($"{ShaFile(up)} {16 << 20}", Curl(lab, "--data-binary", $"@{up}", lab.Url("/sha256")));
        if (Machine.Has("wrk"))
        {
            var w = lab.Exec(120, "wrk", "-t", "1", "-c", "16", "-d", "2s", lab.Url("/plaintext"));
            Assert.True(w.Code == 0, w.Err + w.Out);
            Assert.DoesNotContain("Non-2xx", w.Out);
            Assert.DoesNotContain("Socket errors", w.Out);
        }
    }

    [RootTheory("ip", "curl")]
    [InlineData("iouring")]
    [InlineData("iouring-threadpool")]
    [InlineData("stack")]
    public void A_64_MiB_download_and_a_64_MiB_upload_are_sha256_exact(string transport)
    {
        using var lab = new KestrelLab(transport);
        var got = lab.Dir.File("down.bin");
        var w = Curl(lab, "-o", got, "-w", "%{http_code} %{size_download}", lab.Url($"/bytes/{Big}?seed=5"));
        Assert.Equal($"200 {Big}", w);
        Assert.Equal(ExpectedBytesSha(Big, 5), ShaFile(got));

        var up = RandomFile(lab, "up.bin", Big, 9);
        var answer = Curl(lab, "--data-binary", $"@{up}", "-H", "Content-Type: application/octet-stream", lab.Url("/sha256"));
        Assert.Equal($"{ShaFile(up)} {Big}", answer);
    }

    [RootTheory("ip", "curl")]
    [InlineData("iouring")]
    [InlineData("iouring-threadpool")]
    [InlineData("stack")]
    public void Aborts_on_either_side_leave_the_server_serving(string transport)
    {
        using var lab = new KestrelLab(transport);

        // The server aborts half-way through a 1 MiB body it declared: curl sees a cut transfer.
        var cut = lab.Exec(60, "curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{size_download}", lab.Url("/abort"));
        Assert.True(cut.Code is 18 or 56, $"curl exited {cut.Code} ({cut.Err}), expected a partial transfer");
        Assert.True(long.Parse(cut.Out) < 1 << 20, cut.Out);

        // A client gives up mid-upload (rate-limited, 1 s budget): the app sees its request aborted.
        var big = RandomFile(lab, "slow.bin", 8 << 20, 3);
        var gaveUp = lab.Exec(60, "curl", "-sS", "--limit-rate", "256k", "--max-time", "1", "--data-binary", $"@{big}", lab.Url("/drain"));
        Assert.Equal(28, gaveUp.Code); // curl's timeout
        var deadline = DateTime.UtcNow.AddSeconds(20);
        string aborts;
        while ((aborts = Curl(lab, lab.Url("/aborts"))) == "0" && DateTime.UtcNow < deadline) Thread.Sleep(200);
        Assert.Equal("1", aborts);

        Assert.Equal("Hello, World!", Curl(lab, lab.Url("/plaintext")));
        Assert.False(lab.HasExited);
    }

    [RootTheory("ip", "curl")]
    [InlineData("iouring")]
    [InlineData("iouring-threadpool")]
    [InlineData("stack")]
    public void Graceful_shutdown_finishes_requests_in_flight_and_refuses_new_ones(string transport)
    {
        using var lab = new KestrelLab(transport);
        Assert.Equal("Hello, World!", Curl(lab, lab.Url("/plaintext"))); // the path is warm
        using var slow = lab.Start("curl", "-sS", "--max-time", "30", lab.Url("/slow/3000"));
        Thread.Sleep(1000); // the request is in the app's Task.Delay
        lab.Terminate();
        Thread.Sleep(500);
        var late = lab.Exec(30, "curl", "-sS", "--max-time", "5", lab.Url("/plaintext"));
        Assert.True(late.Code != 0, $"a connection after the shutdown began was served: {late.Out}");
        Assert.True(slow.WaitForExit(TimeSpan.FromSeconds(30)), "curl did not finish");
        Assert.Equal("slept 3000", slow.StandardOutput.ReadToEnd());
        Assert.Equal(0, slow.ExitCode);
        Assert.True(lab.WaitForExit(30), "the app did not exit after SIGTERM");
        Assert.Equal(0, lab.ExitCode);
    }

    [RootTheory("ip", "curl", "h2load")]
    [InlineData("iouring")]
    [InlineData("iouring-threadpool")]
    [InlineData("stack")]
    public async Task Http2_cleartext_serves_curl_h2load_and_grpc(string transport)
    {
        using var lab = new KestrelLab(transport, "--Kestrel:EndpointDefaults:Protocols", "Http2");
        Assert.Equal("Hello, World! 2", Curl(lab, "--http2-prior-knowledge", "-w", " %{http_version}", lab.Url("/plaintext")));
        var down = lab.Dir.File("h2.bin");
        Curl(lab, "--http2-prior-knowledge", "-o", down, lab.Url($"/bytes/{8 << 20}?seed=2"));
        Assert.Equal(ExpectedBytesSha(8 << 20, 2), ShaFile(down));

        var h2 = lab.Exec(120, "h2load", "-n", "4000", "-c", "4", "-m", "16", lab.Url("/plaintext"));
        Assert.True(h2.Code == 0, h2.Err + h2.Out);
        Assert.Contains("4000 succeeded, 0 failed, 0 errored", h2.Out);

        using var channel = GrpcChannel.ForAddress(lab.Url(""), new GrpcChannelOptions { HttpHandler = lab.Handler() });
        var client = new Echo.EchoClient(channel);
        var payload = new byte[100_000];
        new Random(4).NextBytes(payload);
        var reply = await client.SayAsync(new Note { Text = "hello", Payload = Google.Protobuf.ByteString.CopyFrom(payload) });
        Assert.Equal("echo: hello", reply.Text);
        Assert.Equal(Sha(payload), Sha(reply.Payload.Span));

        using var call = client.Count(new CountRequest { Count = 300, Size = 20_000 });
        int i = 0;
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
            var note = call.ResponseStream.Current;
            Assert.Equal(i.ToString(), note.Text);
            Assert.Equal(20_000, note.Payload.Length);
            Assert.True(note.Payload.Span.IndexOfAnyExcept((byte)i) < 0);
            i++;
        }
        Assert.Equal(300, i);
    }

    [RootTheory("ip")]
    [InlineData("iouring")]
    [InlineData("iouring-threadpool")]
    [InlineData("stack")]
    public async Task A_WebSocket_echo_returns_every_message(string transport)
    {
        using var lab = new KestrelLab(transport);
        using var ws = new ClientWebSocket();
        using var invoker = new HttpMessageInvoker(lab.Handler());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await ws.ConnectAsync(new Uri($"ws://{lab.Host}:{lab.Port}/ws"), invoker, cts.Token);
        var random = new Random(8);
        var buffer = new byte[1 << 20];
        foreach (int size in new[] { 1, 125, 126, 65535, 65536, 300_000 })
        {
            var message = new byte[size];
            random.NextBytes(message);
            await ws.SendAsync(message, WebSocketMessageType.Binary, true, cts.Token);
            int got = 0;
            WebSocketReceiveResult r;
            do
            {
                r = await ws.ReceiveAsync(new ArraySegment<byte>(buffer, got, buffer.Length - got), cts.Token);
                got += r.Count;
            } while (!r.EndOfMessage);
            Assert.Equal(size, got);
            Assert.True(message.AsSpan().SequenceEqual(buffer.AsSpan(0, got)), $"message of {size} bytes came back different");
        }
        await ws.SendAsync(Encoding.UTF8.GetBytes("text too"), WebSocketMessageType.Text, true, cts.Token);
        var t = await ws.ReceiveAsync(new ArraySegment<byte>(buffer), cts.Token);
        Assert.Equal(WebSocketMessageType.Text, t.MessageType);
        Assert.Equal("text too", Encoding.UTF8.GetString(buffer, 0, t.Count));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, ws.CloseStatus);
    }
}
