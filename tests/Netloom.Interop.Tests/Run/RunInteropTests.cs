using Netloom.Interop.Tests.Support;

namespace Netloom.Interop.Tests.Run;

/// <summary>
/// Unmodified programs under `netloom run`, as users run them: against the Linux kernel through a
/// TAP in a namespace the test makes, and between two `netloom run` programs joined by a shm port.
/// </summary>
public partial class RunInteropTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromSeconds(60);

    private static void AllChecksPassed((int Code, string Out, string Err) r)
    {
        Assert.True(r.Code == 0, $"exit {r.Code}\n{r.Out}\n{r.Err}");
        foreach (var name in new[] { "connect-refused-blocking", "connect-refused-nonblocking", "eagain", "epoll-edge-triggered", "epoll-mixed-kernel-and-netloom", "epoll-mixed-wakes-while-asleep", "eintr-without-sa-restart", "sa-restart-resumes-a-blocking-recv", "connect-again-reports-the-handshake-once", "a-handler-that-rearms-itself-inside-a-call",
            "shutdown-half-close", "msg-peek", "so-linger-zero-sends-rst", "select-fd-above-64", "dup2-onto-socket", "close-by-syscall", "fork-then-exec",
            "forked-child-gets-ebadf", "close-while-another-thread-blocks", "peer-resets-mid-transfer", "emfile", "udp-echo", "socket-options" })
            Assert.Contains($"ok {name}\n", r.Out);
        Assert.Contains("0 failed", r.Out);
    }

    [RootFact("ip", "gcc")]
    public void The_socket_semantics_hold_against_the_kernel_through_a_tap()
    {
        using var lab = new TapNamespace();
        using var peer = new Background("peer listening", "ip", "netns", "exec", lab.Ns, RunLab.Semantics, "peer", lab.KernelIp, "7700");
        peer.WaitReady();
        var r = RunLab.Run(2 * Minute, lab.Ns, lab.Port, $"{lab.NetloomIp}/24", [RunLab.Semantics, "check", lab.KernelIp, "7700"]);
        AllChecksPassed(r);
        // The forked child that touched its parent's socket was told why, once.
        Assert.Contains("a forked child cannot use it", r.Err);
    }

    [RootFact("gcc")]
    public void The_socket_semantics_hold_between_two_netloom_run_programs_over_shm()
    {
        string shm = $"shm:{RunLab.Unique("nlsem")}";
        int net = RunLab.Subnet();
        using var peer = RunLab.Start("peer listening", null, shm, $"10.231.{net}.1/24", [RunLab.Semantics, "peer", $"10.231.{net}.1", "7700"]);
        peer.WaitReady(60);
        var r = RunLab.Run(2 * Minute, null, shm, $"10.231.{net}.2/24", [RunLab.Semantics, "check", $"10.231.{net}.1", "7700"]);
        AllChecksPassed(r);
    }

    [RootFact("ip", "curl", "/usr/bin/python3", "tshark")]
    public void Curl_and_a_python_server_move_64_MiB_each_way_byte_exact()
    {
        using var lab = new TapNamespace(makeTap: false);
        using var www = new TempDir();
        string file = www.File("big.bin");
        File.WriteAllBytes(file, System.Security.Cryptography.RandomNumberGenerator.GetBytes(64 << 20));

        // curl under netloom run, from a kernel http.server; --tap-peer makes and addresses the TAP.
        using var kernelServer = new Background("Serving HTTP", "ip", "netns", "exec", lab.Ns, "/usr/bin/python3", "-u", "-m", "http.server", "8000", "--bind", "0.0.0.0", "--directory", www.Path);
        kernelServer.WaitReady();
        string got = www.File("got1.bin"), pcap = www.File("curl.pcapng");
        var r = RunLab.Run(2 * Minute, lab.Ns, lab.Port, $"{lab.NetloomIp}/24",
            ["curl", "-sS", "-o", got, $"http://{lab.KernelIp}:8000/big.bin"], "--tap-peer", $"{lab.KernelIp}/24", "--pcap", pcap);
        Assert.True(r.Code == 0, r.Out + r.Err);
        TempDir.AssertSameFile(file, got, null, pcap);
        // The TAP it made is gone again, and the capture decodes as TCP from the stack's address.
        Assert.NotEqual(0, lab.Kernel(10, "ip", "link", "show", lab.Tap).Code);
        // The handshake is in the first frames; a loaded machine takes minutes to dissect all 64 MiB.
        var frames = Sh.Ok("tshark", "-r", pcap, "-c", "20", "-Y", $"ip.src == {lab.NetloomIp} && tcp.dstport == 8000", "-T", "fields", "-e", "tcp.flags.syn");
        Assert.NotEmpty(frames.Trim());

        // A python http.server under netloom run, and the kernel's curl.
        using var server = RunLab.Start(null, lab.Ns, lab.Port, $"{lab.NetloomIp}/24",
            ["/usr/bin/python3", "-m", "http.server", "8001", "--bind", lab.NetloomIp, "--directory", www.Path], "--tap-peer", $"{lab.KernelIp}/24");
        RunLab.WaitForPort(lab.Ns, lab.NetloomIp, 8001);
        string got2 = www.File("got2.bin");
        var k = lab.Kernel(120, "curl", "-sS", "-o", got2, $"http://{lab.NetloomIp}:8001/big.bin");
        Assert.True(k.Code == 0, k.Out + k.Err + server.Log);
        TempDir.AssertSameFile(file, got2);
    }

    [RootFact("ip", "socat")]
    public void Socat_talks_tcp_and_udp_both_ways()
    {
        using var lab = new TapNamespace();
        string ip = $"{lab.NetloomIp}/24";
        // TCP: a socat server under netloom run, the kernel's socat as client.
        // (It serves one connection: socat's fork option would hand the connection to a child, and
        // a forked child cannot use its parent's Netloom sockets. So no probe; the client retries
        // until the server listens.)
        using (var server = RunLab.Start(null, lab.Ns, lab.Port, ip, ["socat", $"TCP-LISTEN:5001,reuseaddr,bind={lab.NetloomIp}", "SYSTEM:cat"]))
        {
            string echoed = "";
            for (int i = 0; i < 60 && !echoed.Contains("netloom-tcp-1"); i++, Thread.Sleep(echoed.Length == 0 ? 250 : 0))
                echoed = lab.Kernel(20, "sh", "-c", $"echo netloom-tcp-1 | socat -t 2 - TCP:{lab.NetloomIp}:5001").Out;
            Assert.Contains("netloom-tcp-1", echoed);
        }
        // TCP: the kernel's socat server, a socat client under netloom run.
        using (var k = new Background(null, "ip", "netns", "exec", lab.Ns, "socat", $"TCP-LISTEN:5002,reuseaddr,bind={lab.KernelIp}", "SYSTEM:cat"))
        {
            Thread.Sleep(500);
            var r = RunLab.Run(Minute, lab.Ns, lab.Port, ip, ["sh", "-c", $"echo netloom-tcp-2 | socat -t 2 - TCP:{lab.KernelIp}:5002"]);
            Assert.True(r.Code == 0, r.Out + r.Err);
            Assert.Contains("netloom-tcp-2", r.Out);
        }
        // UDP both ways.
        using (var k = new Background(null, "ip", "netns", "exec", lab.Ns, "socat", $"UDP-RECVFROM:5003,bind={lab.KernelIp},fork", "SYSTEM:cat"))
        {
            Thread.Sleep(500);
            var r = RunLab.Run(Minute, lab.Ns, lab.Port, ip, ["sh", "-c", $"echo netloom-udp-1 | socat -t 2 - UDP:{lab.KernelIp}:5003"]);
            Assert.Contains("netloom-udp-1", r.Out);
        }
        using (var server = RunLab.Start(null, lab.Ns, lab.Port, ip, ["socat", $"UDP-RECVFROM:5004,bind={lab.NetloomIp}", "SYSTEM:cat"]))
        {
            string echoed = "";
            for (int i = 0; i < 20 && !echoed.Contains("netloom-udp-2"); i++) // the server may still be starting (one datagram, no fork: see above)
                echoed = lab.Kernel(10, "sh", "-c", $"echo netloom-udp-2 | socat -t 3 - UDP:{lab.NetloomIp}:5004").Out;
            Assert.Contains("netloom-udp-2", echoed);
        }
    }

    [RootFact("ip", "nginx", "curl")]
    public void Nginx_in_one_process_serves_64_MiB()
    {
        using var lab = new TapNamespace();
        using var dir = new TempDir();
        string file = dir.File("big.bin");
        File.WriteAllBytes(file, System.Security.Cryptography.RandomNumberGenerator.GetBytes(64 << 20));
        string conf = RunLab.NginxConf(dir, lab.NetloomIp + ":8080");
        using var nginx = RunLab.Start(null, lab.Ns, lab.Port, $"{lab.NetloomIp}/24", ["nginx", "-c", conf]);
        RunLab.WaitForPort(lab.Ns, lab.NetloomIp, 8080);
        string got = dir.File("got.bin");
        var r = lab.Kernel(120, "curl", "-sS", "-o", got, $"http://{lab.NetloomIp}:8080/big.bin");
        Assert.True(r.Code == 0, r.Out + r.Err + nginx.Log);
        TempDir.AssertSameFile(file, got);
        // Keep-alive: several requests on one connection.
        var many = lab.Kernel(60, "curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n",
            $"http://{lab.NetloomIp}:8080/big.bin", $"http://{lab.NetloomIp}:8080/big.bin", $"http://{lab.NetloomIp}:8080/nothing");
        Assert.Contains("200 1\n200 0\n404 0\n", many.Out);
    }

    [RootFact("redis-server", "redis-cli", "redis-benchmark")]
    public void Redis_under_netloom_run_serves_redis_cli_and_redis_benchmark_under_netloom_run()
    {
        string shm = $"shm:{RunLab.Unique("nlrds")}";
        int net = RunLab.Subnet();
        string server = $"10.232.{net}.1", client = $"10.232.{net}.2/24";
        using var redis = RunLab.Start("Ready to accept connections", null, shm, $"{server}/24",
            ["redis-server", "--bind", server, "--port", "6379", "--save", "", "--appendonly", "no", "--protected-mode", "no"]);
        redis.WaitReady(60);
        string Cli(params string[] args)
        {
            var r = RunLab.Run(Minute, null, shm, client, ["redis-cli", "-h", server, .. args]);
            Assert.True(r.Code == 0, $"redis-cli {string.Join(' ', args)}: {r.Out}{r.Err}");
            return r.Out.Trim();
        }
        RunLab.RedisCommandFamilies(a => Cli(a));
        // A 100 kB value round-trips (about the most one argument of a command line may hold).
        string big = new('v', 100_000);
        Assert.Equal("OK", Cli("SET", "big", big));
        Assert.Equal("100000", Cli("STRLEN", "big"));
        Assert.Equal(big, Cli("GET", "big"));

        var bench = RunLab.Run(2 * Minute, null, shm, client, ["redis-benchmark", "-h", server, "-t", "set,get", "-n", "20000", "-c", "50", "-P", "16", "-q"]);
        Assert.True(bench.Code == 0, bench.Out + bench.Err);
        Assert.Matches(@"SET: [\d.]+ requests per second", bench.Out);
        Assert.Matches(@"GET: [\d.]+ requests per second", bench.Out);
    }

    [RootFact("iperf3")]
    public void Iperf3_runs_both_directions()
    {
        foreach (var reverse in new[] { false, true })
        {
            string shm = $"shm:{RunLab.Unique("nlip")}";
            int net = RunLab.Subnet();
            string server = $"10.233.{net}.1";
            using var s = RunLab.Start("Server listening", null, shm, $"{server}/24", ["iperf3", "-s", "-1", "--forceflush", "-B", server]);
            s.WaitReady(60);
            string[] client = reverse ? ["iperf3", "-c", server, "-t", "2", "-R"] : ["iperf3", "-c", server, "-t", "2"];
            var r = RunLab.Run(Minute, null, shm, $"10.233.{net}.2/24", client);
            Assert.True(r.Code == 0, r.Out + r.Err + s.Log);
            Assert.Matches(@"sec\s+[\d.]+ [KMG]Bytes\s+[\d.]+ [KMG]bits/sec.*receiver", r.Out);
        }
    }

    [RootFact("sockperf")]
    public void Sockperf_ping_pong_over_tcp_and_udp()
    {
        foreach (var tcp in new[] { true, false })
        {
            string shm = $"shm:{RunLab.Unique("nlsp")}";
            int net = RunLab.Subnet();
            string server = $"10.234.{net}.1";
            string[] proto = tcp ? ["--tcp"] : [];
            using var s = RunLab.Start("Ready", null, shm, $"{server}/24", ["sockperf", "sr", .. proto, "-i", server, "-p", "11111"]);
            Thread.Sleep(3000);
            var r = RunLab.Run(Minute, null, shm, $"10.234.{net}.2/24", ["sockperf", "pp", .. proto, "-i", server, "-p", "11111", "-t", "2", "-m", "64"]);
            Assert.True(r.Code == 0, r.Out + r.Err + s.Log);
            Assert.Contains("Summary: Latency is", r.Out + r.Err);
            Assert.DoesNotContain("ERROR", r.Out + r.Err);
        }
    }

    [RootFact("ip", "curl", "/usr/bin/python3", "socat")]
    public void Loopback_and_unix_sockets_stay_on_the_kernel_and_the_exit_status_is_the_programs()
    {
        using var lab = new TapNamespace();
        using var www = new TempDir();
        File.WriteAllText(www.File("hello.txt"), "from the kernel's loopback");
        using var local = new Background("Serving HTTP", "ip", "netns", "exec", lab.Ns, "/usr/bin/python3", "-u", "-m", "http.server", "8090", "--bind", "127.0.0.1", "--directory", www.Path);
        local.WaitReady();
        var r = RunLab.Run(Minute, lab.Ns, lab.Port, $"{lab.NetloomIp}/24", ["curl", "-sS", "http://127.0.0.1:8090/hello.txt"]);
        Assert.True(r.Code == 0, r.Out + r.Err);
        Assert.Equal("from the kernel's loopback", r.Out);
        var unix = RunLab.Run(Minute, lab.Ns, lab.Port, $"{lab.NetloomIp}/24",
            ["/usr/bin/python3", "-c", "import socket,sys; a,b=socket.socketpair(); a.sendall(b'unix'); sys.exit(0 if b.recv(4)==b'unix' else 1)"]);
        Assert.True(unix.Code == 0, unix.Out + unix.Err);
        Assert.Equal(7, RunLab.Run(Minute, lab.Ns, lab.Port, $"{lab.NetloomIp}/24", ["sh", "-c", "exit 7"]).Code);
        // A datagram socket whose first datagram goes to loopback is handed to the kernel too.
        using var echo = new Background(null, "ip", "netns", "exec", lab.Ns, "socat", "UDP-RECVFROM:9091,bind=127.0.0.1,fork", "SYSTEM:cat");
        Thread.Sleep(500);
        var udp = RunLab.Run(Minute, lab.Ns, lab.Port, $"{lab.NetloomIp}/24",
            ["/usr/bin/python3", "-c", "import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(5); s.sendto(b'loop',('127.0.0.1',9091)); sys.exit(0 if s.recv(16)==b'loop' else 1)"]);
        Assert.True(udp.Code == 0, udp.Out + udp.Err);
    }

    [RootFact("gcc", "/usr/bin/python3")]
    public void Data_written_just_before_exit_arrives_and_the_shm_file_goes()
    {
        string name = RunLab.Unique("nlexit");
        int net = RunLab.Subnet();
        string server = $"10.235.{net}.1";
        string exe = RunLab.Compile("exitwrite.c", "exitwrite");
        using var reader = RunLab.Start("listening", null, $"shm:{name}", $"{server}/24", ["/usr/bin/python3", "-u", "-c",
            $"import socket; l=socket.socket(); l.bind(('{server}',7800)); l.listen(); print('listening'); c,_=l.accept(); n=0\nwhile True:\n d=c.recv(65536)\n if not d: break\n n+=len(d)\nprint('got', n)"]);
        reader.WaitReady(60);
        var w = RunLab.Run(Minute, null, $"shm:{name}", $"10.235.{net}.2/24", [exe, server, "7800", "3000000"]);
        Assert.True(w.Code == 0, w.Out + w.Err);
        for (int i = 0; i < 100 && !reader.Log.Contains("got "); i++) Thread.Sleep(100);
        Assert.Contains("got 3000000", reader.Log);
        Assert.True(reader.WaitForExit(30_000), "the reader did not exit after it printed its count");
        // The port's shared file goes with its creator's exit.
        for (int i = 0; i < 50 && File.Exists($"/dev/shm/netloom-{name}"); i++) Thread.Sleep(100);
        Assert.False(File.Exists($"/dev/shm/netloom-{name}"));
    }

    [RootFact("/usr/bin/python3")]
    public void A_SIGTERM_to_netloom_run_reaches_the_program_which_leaves_through_its_exit_path()
    {
        // A service manager stops `netloom run` with SIGTERM: the program gets it (not a SIGKILL),
        // its handler runs, and the engine's exit path removes the shm file it created.
        string name = RunLab.Unique("nlterm");
        int net = RunLab.Subnet();
        var argv = RunLab.Command(null, $"shm:{name}", $"10.236.{net}.1/24", ["/usr/bin/python3", "-u", "-c",
            "import signal,socket,sys,time\ndef bye(*_):\n print('got TERM'); sys.exit(5)\nsignal.signal(signal.SIGTERM, bye)\n" +
            $"s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('10.236.{net}.1',7900)); print('ready')\nwhile True: time.sleep(1)"]);
        var psi = new System.Diagnostics.ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in argv[1..]) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        Assert.Equal("ready", p.StandardOutput.ReadLine());
        Assert.True(File.Exists($"/dev/shm/netloom-{name}"));
        Sh.Ok("kill", "-TERM", p.Id.ToString());
        Assert.True(p.WaitForExit(30_000), "netloom run did not end after SIGTERM");
        Assert.Equal("got TERM", p.StandardOutput.ReadLine());
        Assert.True(p.ExitCode == 5, $"exit {p.ExitCode}: {err.Result}");
        Assert.False(File.Exists($"/dev/shm/netloom-{name}"));
    }

    [RootFact("gcc")]
    public void Bad_flags_missing_and_static_programs_get_clear_answers()
    {
        var bad = RunLab.Run(Minute, null, "shm:x", "10.0.0.300/24", ["true"]);
        Assert.Equal(2, bad.Code);
        Assert.Contains("--ip", bad.Err);
        var port = RunLab.Run(Minute, null, "bogus:x", "10.0.0.2/24", ["true"]);
        Assert.Equal(2, port.Code);
        Assert.Contains("--port", port.Err);
        var missing = RunLab.Run(Minute, null, "shm:x", "10.0.0.2/24", ["no-such-program-netloom"]);
        Assert.Equal(127, missing.Code);
        Assert.Contains("command not found", missing.Err);
        var peerWithoutTap = RunLab.Run(Minute, null, "shm:x", "10.0.0.2/24", ["true"], "--tap-peer", "10.0.0.1/24");
        Assert.Equal(2, peerWithoutTap.Code);

        // A statically linked program cannot be preloaded: it runs on the kernel, with a warning.
        using var dir = new TempDir();
        File.WriteAllText(dir.File("static.c"), "int main(void) { return 3; }\n");
        Sh.Ok("gcc", "-static", "-O2", "-o", dir.File("static"), dir.File("static.c"));
        var st = RunLab.Run(Minute, null, "shm:x", "10.0.0.2/24", [dir.File("static")]);
        Assert.Equal(3, st.Code);
        Assert.Contains("statically linked", st.Err);
    }
}
