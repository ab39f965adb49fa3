using System.Text.RegularExpressions;
using Netloom.Interop.Tests.Support;

namespace Netloom.Interop.Tests.Run;

/// <summary>
/// `netloom run --offload`: unmodified servers whose TCP sockets stay kernel sockets on loopback,
/// their calls served through io_uring. Each test also reads the engine's counts (NETLOOM_STATS=1),
/// so a run that quietly fell back to plain system calls fails.
/// </summary>
public partial class OffloadTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromSeconds(60);
    // Below the kernel's ephemeral range (32768 and up here), where a parallel test's client
    // socket could already hold the port ("Address already in use" once in CI).
    private static int s_port = 10000 + Environment.ProcessId % 15000;

    private static int FreePort() => Interlocked.Add(ref s_port, 7);

    /// <summary>
    /// The flags of a test's variant: busy polling for that many microseconds ("0", "50"),
    /// "coalesce" (50 µs of minimum wait), or "single-issuer" (the owner mode, coalescing too).
    /// </summary>
    internal static string[] VariantFlags(string variant) => variant switch
    {
        "coalesce" => ["--coalesce", "50"],
        "single-issuer" => ["--single-issuer", "--coalesce", "50"],
        _ => ["--busy-poll", variant],
    };

    [GeneratedRegex(@"offload: (\d+) accepted, (\d+) receives, (\d+) sends, (\d+) completions in (\d+) io_uring_enter calls")]
    private static partial Regex Stats();

    /// <summary>The engine's counts from a log: accepted connections and completions.</summary>
    private static (long Accepted, long Completions) CountsIn(string log)
    {
        var m = Stats().Match(log);
        Assert.True(m.Success, $"the engine printed no counts (did it start?):\n{log}");
        return (long.Parse(m.Groups[1].Value), long.Parse(m.Groups[4].Value));
    }

    [ToolTheory("gcc")]
    [InlineData("0")]
    [InlineData("50")]
    [InlineData("coalesce")]
    [InlineData("single-issuer")]
    public void An_epoll_server_in_c_keeps_its_semantics(string busyPoll)
    {
        string exe = RunLab.Compile("offload.c", "offload");
        var argv = RunLab.OffloadCommand([exe, FreePort().ToString()], VariantFlags(busyPoll));
        var r = Sh.Run(2 * Minute, argv[0], argv[1..]);
        Assert.True(r.Code == 0, $"exit {r.Code}\n{r.Out}\n{r.Err}");
        foreach (var name in new[] { "epoll-mixed-with-timerfd-eventfd-pipe", "slow-reader-bounded-then-drained", "peer-reset-surfaces-on-a-later-write", "sendfile-behind-queued-bytes-close-and-dup2",
                     "sendfile-past-the-end-of-a-file-never-sends-a-wrong-byte", "blocking-recv-waits-then-write-and-fin",
                     "a-signal-ends-epoll-wait-and-handlers-read-back-as-set", "a-blocking-recv-restarts-after-an-sa-restart-handler-only",
                     "a-connection-added-to-a-sleeping-workers-set-wakes-it", "a-connection-added-to-a-workers-empty-set-wakes-it",
                     "a-poll-wakes-for-bytes-another-thread-reaped", "a-socket-closed-by-syscall-sends-its-bytes-and-frees-its-number", "a-dup-outlives-the-name-it-was-accepted-under",
                     "a-close-behind-many-waiting-completions-sends-its-fin" })
        {
            // The owner mode serves another thread's wait only when its owner calls: not checked there.
            if (busyPoll == "single-issuer" && name is "a-connection-added-to-a-sleeping-workers-set-wakes-it" or "a-connection-added-to-a-workers-empty-set-wakes-it" or "a-poll-wakes-for-bytes-another-thread-reaped") continue;
            Assert.Contains($"ok {name}\n", r.Out);
        }
        var (accepted, completions) = CountsIn(r.Err);
        Assert.Equal(busyPoll == "single-issuer" ? 111 : 116, accepted); // 100 of them in the close-behind-many check
        Assert.True(completions > 10, r.Err);
    }

    [GeneratedRegex(@"single issuer, (\d+) sends by the flusher for an absent owner")]
    private static partial Regex OwnerStats();

    /// <summary>
    /// The owner mode with threads: other threads write whole replies on blocking sockets and close
    /// them (their work handed to the owner), a reply the owner wrote leaves while it computes (sent
    /// by the flusher), and a thread that waits while the owner is away elsewhere gets a message on
    /// stderr saying why, and nothing it waited for is lost; an owner asleep in poll() beside a pipe
    /// is woken to submit another thread's send; a listener another thread closes stops listening;
    /// a signal ends another thread's epoll_wait with EINTR.
    /// </summary>
    [ToolFact("gcc")]
    public void The_owner_mode_serves_other_threads_and_says_when_its_owner_is_away()
    {
        string exe = RunLab.Compile("owner.c", "owner");
        var argv = RunLab.OffloadCommand([exe, FreePort().ToString()], ["--single-issuer"]);
        var r = Sh.Run(2 * Minute, argv[0], argv[1..]);
        Assert.True(r.Code == 0, $"exit {r.Code}\n{r.Out}\n{r.Err}");
        foreach (var name in new[] { "other-threads-write-whole-replies-and-close", "a-reply-leaves-while-the-owner-computes", "an-absent-owner-loses-nothing",
                     "an-owner-asleep-in-poll-is-woken-for-another-threads-send", "a-listener-another-thread-closes-stops-listening",
                     "a-signal-ends-another-threads-epoll-wait-with-eintr" })
            Assert.Contains($"ok {name}\n", r.Out);
        Assert.Contains("--single-issuer: a thread waits on sockets whose completions only the ring's owner thread", r.Err);
        var m = OwnerStats().Match(r.Err);
        Assert.True(m.Success && long.Parse(m.Groups[1].Value) >= 1, r.Err);
        Assert.Equal(Clients + 4, CountsIn(r.Err).Accepted);
    }

    private const int Clients = 4; // owner.c's writing threads

    [ToolTheory("redis-server", "redis-cli", "redis-benchmark")]
    [InlineData("0")]
    [InlineData("50")]
    [InlineData("coalesce")]
    [InlineData("single-issuer")]
    public void Redis_serves_every_command_family_big_values_many_clients_bgsave_and_shutdown(string busyPoll)
    {
        using var dir = new TempDir();
        int port = FreePort();
        var argv = RunLab.OffloadCommand(["redis-server", "--bind", "127.0.0.1", "--port", port.ToString(), "--save", "", "--appendonly", "no",
            "--dir", dir.Path, "--maxclients", "2000"], VariantFlags(busyPoll));
        using var redis = new Background("Ready to accept connections", argv[0], argv[1..]);
        redis.WaitReady(60);
        string Cli(params string[] args)
        {
            var r = Sh.Run(Minute, "redis-cli", ["-p", port.ToString(), .. args]);
            Assert.True(r.Code == 0, $"redis-cli {string.Join(' ', args)}: {r.Out}{r.Err}\n{redis.Log}");
            return r.Out.Trim();
        }
        RunLab.RedisCommandFamilies(a => Cli(a));
        Assert.Equal("OK", Cli("MSET", "a", "1", "b", "2"));
        Assert.Equal("1\n2", Cli("MGET", "a", "b"));
        Assert.Equal("0", Cli("PUBLISH", "channel", "message")); // no subscriber: no receiver
        // A 10 MB value, in and out (redis-cli -x reads the last argument from stdin).
        string big = dir.File("big.txt");
        File.WriteAllText(big, new string('v', 10_000_000));
        var set = Sh.Run(Minute, "bash", "-c", $"redis-cli -p {port} -x SET big < {big}");
        Assert.True(set.Code == 0 && set.Out.Trim() == "OK", set.Out + set.Err);
        Assert.Equal("10000000", Cli("STRLEN", "big"));
        var get = Sh.Run(Minute, "bash", "-c", $"redis-cli -p {port} --no-raw GET big | wc -c");
        Assert.True(long.Parse(get.Out.Trim()) >= 10_000_000, get.Out + get.Err);

        // Many clients at once, pipelined.
        var bench = Sh.Run(2 * Minute, "bash", "-c", $"ulimit -n 8192; redis-benchmark -p {port} -t set,get -n 20000 -c 1000 -P 16 -q");
        Assert.True(bench.Code == 0, bench.Out + bench.Err);
        Assert.Matches(@"SET: [\d.]+ requests per second", bench.Out);
        Assert.Matches(@"GET: [\d.]+ requests per second", bench.Out);

        // BGSAVE forks a child that writes the dataset while the parent goes on serving.
        Assert.Equal("Background saving started", Cli("BGSAVE"));
        for (int i = 0; i < 100 && !Cli("INFO", "persistence").Contains("rdb_bgsave_in_progress:0"); i++) Thread.Sleep(100);
        Assert.Contains("rdb_last_bgsave_status:ok", Cli("INFO", "persistence"));
        Assert.True(File.Exists(dir.File("dump.rdb")));
        Assert.Equal("hello", Cli("GET", "greeting"));

        Sh.Run(Minute, "redis-cli", "-p", port.ToString(), "SHUTDOWN", "NOSAVE");
        redis.Stop();
        var (accepted, _) = CountsIn(redis.Log);
        Assert.True(accepted > 1000, redis.Log);
        if (busyPoll is "coalesce" or "single-issuer") Assert.Contains("coalescing 50 us", redis.Log); // on, not refused by the kernel
        if (busyPoll == "single-issuer") Assert.Contains("; single issuer", redis.Log);
    }

    [ToolTheory("redis-server", "redis-cli")]
    [InlineData("0")]
    [InlineData("50")]
    [InlineData("coalesce")]
    [InlineData("single-issuer")]
    public void A_client_that_never_reads_leaves_the_server_bounded_and_serving_others(string busyPoll)
    {
        int port = FreePort();
        var argv = RunLab.OffloadCommand(["redis-server", "--bind", "127.0.0.1", "--port", port.ToString(), "--save", "", "--appendonly", "no",
            "--client-output-buffer-limit", "normal 0 0 0"], VariantFlags(busyPoll));
        using var redis = new Background("Ready to accept connections", argv[0], argv[1..]);
        redis.WaitReady(60);
        using var dir = new TempDir();
        File.WriteAllText(dir.File("v.txt"), new string('x', 1_000_000));
        Assert.Equal("OK", Sh.Run(Minute, "bash", "-c", $"redis-cli -p {port} -x SET v < {dir.File("v.txt")}").Out.Trim());
        // A python client asks for the 1 MB value 200 times and never reads the replies.
        using var sink = new Background("sent", "python3", "-c",
            $"import socket,time,sys\ns=socket.create_connection(('127.0.0.1',{port}))\ns.sendall(b'GET v\\r\\n'*200)\nprint('sent',flush=True)\ntime.sleep(60)");
        sink.WaitReady(30);
        Thread.Sleep(1500);
        var others = Sh.Run(Minute, "redis-cli", "-p", port.ToString(), "PING");
        Assert.Equal("PONG", others.Out.Trim());
        // The server holds what the kernel and the engine's bounded queue take, not 200 MB.
        string pid = Sh.Run(Minute, "pgrep", "-f", $"redis-server 127.0.0.1:{port}").Out.Trim().Split('\n')[0];
        long rssKb = long.Parse(Regex.Match(File.ReadAllText($"/proc/{pid}/status"), @"VmRSS:\s+(\d+)").Groups[1].Value);
        Assert.True(rssKb < 400_000, $"redis-server holds {rssKb} kB with a client that never reads");
        sink.Dispose();
        Sh.Run(Minute, "redis-cli", "-p", port.ToString(), "SHUTDOWN", "NOSAVE");
    }

    [ToolTheory("nginx", "curl")]
    [InlineData("0")]
    [InlineData("50")]
    [InlineData("coalesce")]
    [InlineData("single-issuer")]
    public void Nginx_in_one_process_serves_64_MiB_and_keeps_connections_alive(string busyPoll)
    {
        using var dir = new TempDir();
        int port = FreePort();
        string file = dir.File("big.bin");
        File.WriteAllBytes(file, System.Security.Cryptography.RandomNumberGenerator.GetBytes(64 << 20));
        string conf = RunLab.NginxConf(dir, $"127.0.0.1:{port}", 1024);
        var argv = RunLab.OffloadCommand(["nginx", "-c", conf], VariantFlags(busyPoll));
        using var nginx = new Background(null, argv[0], argv[1..]);
        for (int i = 0; i < 100 && Sh.Run(Minute, "bash", "-c", $"exec 3<>/dev/tcp/127.0.0.1/{port}").Code != 0; i++) Thread.Sleep(200);
        string got = dir.File("got.bin");
        var r = Sh.Run(2 * Minute, "curl", "-sS", "-o", got, $"http://127.0.0.1:{port}/big.bin");
        Assert.True(r.Code == 0, r.Out + r.Err + nginx.Log);
        TempDir.AssertSameFile(file, got);
        var many = Sh.Run(Minute, "curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n",
            $"http://127.0.0.1:{port}/big.bin", $"http://127.0.0.1:{port}/big.bin", $"http://127.0.0.1:{port}/nothing");
        Assert.Contains("200 1\n200 0\n404 0\n", many.Out);
        // Many connections at once.
        var par = Sh.Run(2 * Minute, "bash", "-c", $"for i in $(seq 100); do curl -s -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:{port}/nothing & done; wait");
        Assert.Equal(100, par.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l == "404"));
        Sh.Run(Minute, "kill", "-QUIT", File.ReadAllText(dir.File("nginx.pid")).Trim());
        nginx.Stop();
        // nginx points its stderr at its error log once it runs: the engine's counts land there.
        var (accepted, _) = CountsIn(nginx.Log + File.ReadAllText(dir.File("error.log")));
        Assert.True(accepted >= 102, $"{accepted} accepted"); // the 64 MiB download, the keep-alive one, the hundred at once (and the readiness probes)
    }

    [ToolTheory("python3")]
    [InlineData("0")]
    [InlineData("50")]
    [InlineData("coalesce")]
    [InlineData("single-issuer")]
    public void A_python_asyncio_echo_server_serves_many_connections_byte_exact(string busyPoll)
    {
        int port = FreePort();
        const string server = """
            import asyncio, sys
            async def echo(r, w):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
                w.close()
            async def main():
                s = await asyncio.start_server(echo, '127.0.0.1', int(sys.argv[1]))
                print('serving', flush=True)
                async with s:
                    await asyncio.sleep(float(sys.argv[2]))
            asyncio.run(main())
            """;
        const string client = """
            import asyncio, os, sys, hashlib
            async def one(i):
                r, w = await asyncio.open_connection('127.0.0.1', int(sys.argv[1]))
                data = os.urandom(100000 + i)
                w.write(data); await w.drain(); w.write_eof()
                back = await r.read()
                w.close()
                return back == data
            async def main():
                ok = await asyncio.gather(*(one(i) for i in range(200)))
                print('exact', sum(ok))
            asyncio.run(main())
            """;
        var argv = RunLab.OffloadCommand(["python3", "-c", server, port.ToString(), "20"], VariantFlags(busyPoll));
        using var srv = new Background("serving", argv[0], argv[1..]);
        srv.WaitReady(60);
        var r = Sh.Run(2 * Minute, "python3", "-c", client, port.ToString());
        Assert.True(r.Code == 0, r.Out + r.Err + srv.Log);
        Assert.Contains("exact 200", r.Out);
    }

    [Fact]
    public void Bad_offload_flags_get_a_clear_message()
    {
        var a = RunLab.OffloadCommand(["true"], "--port", "tap:x");
        var r = Sh.Run(Minute, a[0], a[1..]);
        Assert.NotEqual(0, r.Code);
        Assert.Contains("--offload keeps the program's sockets on the kernel", r.Err);
        a = RunLab.OffloadCommand(["true"], "--ring-entries", "100");
        r = Sh.Run(Minute, a[0], a[1..]);
        Assert.NotEqual(0, r.Code);
        Assert.Contains("--ring-entries 100: a power of two", r.Err);
        a = RunLab.OffloadCommand(["true"], "--coalesce", "20000");
        r = Sh.Run(Minute, a[0], a[1..]);
        Assert.NotEqual(0, r.Code);
        Assert.Contains("--coalesce 20000: microseconds from 0 to 10000", r.Err);
        a = RunLab.Command(null, "shm:nlcoalesce", "10.9.9.2/24", ["true"], "--coalesce", "50");
        r = Sh.Run(Minute, a[0], a[1..]);
        Assert.NotEqual(0, r.Code);
        Assert.Contains("--coalesce applies to --offload", r.Err);
        a = RunLab.Command(null, "shm:nlsingle", "10.9.9.2/24", ["true"], "--single-issuer");
        r = Sh.Run(Minute, a[0], a[1..]);
        Assert.NotEqual(0, r.Code);
        Assert.Contains("--single-issuer applies to --offload", r.Err);
    }
}
