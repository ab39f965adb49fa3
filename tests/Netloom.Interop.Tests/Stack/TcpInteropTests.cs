using Netloom.Interop.Tests.Support;

namespace Netloom.Interop.Tests.Stack;

/// <summary>
/// Netloom's TCP against the Linux kernel's, through a TAP in a namespace the test makes: curl,
/// socat and python's http.server on the kernel side; `netloom host` and `netloom get` on ours.
/// Every transfer is checked with sha256, clean and with loss and delay on both sides.
/// </summary>
public class TcpInteropTests
{
    private static string Cli => Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll");

    /// <summary>A namespace with a TAP: the kernel at .1, netloom at .2.</summary>
    private sealed class Lab : IDisposable
    {
        private static int _next;
        public readonly string Ns, Dev, KernelIp, HostIp;
        public readonly TempDir Dir = new();

        public Lab(string tag)
        {
            int n = Interlocked.Increment(ref _next);
            Ns = $"nl{tag}{Environment.ProcessId}";
            Dev = $"nl{tag}{Environment.ProcessId % 10000}";
            int net = (Environment.ProcessId + n * 7) % 200 + 20;
            KernelIp = $"10.{219 + n % 20}.{net}.1";
            HostIp = $"10.{219 + n % 20}.{net}.2";
            Sh.Ok("ip", "netns", "add", Ns);
            Sh.Ok("ip", "-n", Ns, "link", "set", "lo", "up");
        }

        /// <summary>Starts `netloom host` on the TAP (it creates the device), then addresses the kernel's side.</summary>
        public Background Host(params string[] extra)
        {
            var args = new List<string> { "netns", "exec", Ns, "dotnet", Cli, "host", "--port", $"tap:{Dev}", "--ip", $"{HostIp}/24", "--duration", "300" };
            args.AddRange(extra);
            var host = new Background("Ctrl-C to stop", "ip", args.ToArray());
            host.WaitReady(30);
            Sh.Ok("ip", "-n", Ns, "addr", "add", $"{KernelIp}/24", "dev", Dev);
            return host;
        }

        /// <summary>Makes the TAP for a netloom process that starts later (get), with the kernel's address on it.</summary>
        public void KernelTap()
        {
            Sh.Ok("ip", "-n", Ns, "tuntap", "add", "dev", Dev, "mode", "tap");
            Sh.Ok("ip", "-n", Ns, "addr", "add", $"{KernelIp}/24", "dev", Dev);
            Sh.Ok("ip", "-n", Ns, "link", "set", Dev, "up");
        }

        /// <summary>
        /// Drops a random share of what the kernel sends to netloom. This kernel has no netem
        /// (CONFIG_NET_SCH_NETEM is off, and there are no modules to load), so the kernel side's
        /// loss comes from nftables' random number generator; the delay comes from --impair, which
        /// holds frames in both directions on netloom's side.
        /// </summary>
        public void KernelLoss(int perThousand)
        {
            Sh.Ok("ip", "netns", "exec", Ns, "nft", "add", "table", "inet", "loss");
            Sh.Ok("ip", "netns", "exec", Ns, "nft", "add chain inet loss out { type filter hook output priority 0; }");
            Sh.Ok("ip", "netns", "exec", Ns, "nft", $"add rule inet loss out ip daddr {HostIp} numgen random mod 1000 lt {perThousand} counter drop");
        }

        public long KernelDropped() =>
            long.Parse(System.Text.RegularExpressions.Regex.Match(Sh.Ok("ip", "netns", "exec", Ns, "nft", "list", "table", "inet", "loss"), @"packets (\d+)").Groups[1].Value);

        public (int Code, string Out, string Err) Exec(int seconds, params string[] cmd) =>
            Sh.Run(TimeSpan.FromSeconds(seconds), "ip", ["netns", "exec", Ns, .. cmd]);

        public string File(string name, int bytes, int seed) => Dir.RandomFile(name, bytes, seed);

        public void Dispose()
        {
            Sh.Run("ip", "netns", "del", Ns);
            Dir.Dispose();
        }
    }

    private static string Sha(string path) => TempDir.Sha256(path);

    [RootTheory("ip", "curl", "socat", "nft")]
    [InlineData(false)]
    [InlineData(true)]
    public void Curl_downloads_from_the_http_server_and_socat_echoes_through_the_user_level_stack(bool impaired)
    {
        using var lab = new Lab(impaired ? "Ci" : "Cc");
        const int size = 64 << 20;
        var file = lab.File("big.bin", size, 1);
        var echoIn = lab.File("echo.bin", 8 << 20, 2);
        var extra = new List<string> { "--serve", $"http:80:{lab.Dir.Path}", "--serve", "tcp-echo:7" };
        if (impaired) extra.AddRange(["--impair", "loss=0.5%,delay=1ms", "--seed", "3"]);
        using var host = lab.Host(extra.ToArray());
        if (impaired) lab.KernelLoss(5);

        var got = Path.Combine(lab.Dir.Path, "got.bin");
        var curl = lab.Exec(300, "curl", "-sS", "--max-time", "240", "-o", got, "-w", "%{http_code} %{size_download}", $"http://{lab.HostIp}/big.bin");
        Assert.True(curl.Code == 0, $"curl: {curl.Out} {curl.Err}\n{host.Log}");
        Assert.Equal($"200 {size}", curl.Out.Trim());
        Assert.Equal(Sha(file), Sha(got));

        var echoOut = Path.Combine(lab.Dir.Path, "echo.out");
        var socat = lab.Exec(300, "sh", "-c", $"socat -b 65536 -t 30 - TCP:{lab.HostIp}:7 < {echoIn} > {echoOut}");
        Assert.True(socat.Code == 0, socat.Err);
        Assert.Equal(Sha(echoIn), Sha(echoOut));

        // A keep-alive connection carries two requests, and a missing file is a 404.
        var two = lab.Exec(60, "curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n",
            $"http://{lab.HostIp}/echo.bin", $"http://{lab.HostIp}/echo.bin");
        Assert.Equal(["200 1", "200 0"], two.Out.Trim().Split('\n'));
        var missing = lab.Exec(60, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", $"http://{lab.HostIp}/nope");
        Assert.Equal("404", missing.Out);

        host.Stop();
        Assert.Contains("bytes echoed", host.Log);
        if (impaired)
        {
            Assert.Matches(@"impairment: [1-9][\d,]* lost", host.Log);
            Assert.True(lab.KernelDropped() > 0, "the kernel side dropped nothing");
        }
    }

    [RootTheory("ip", "nft", "/usr/bin/python3")]
    [InlineData(false)]
    [InlineData(true)]
    public void Netloom_get_downloads_from_the_kernels_http_server(bool impaired)
    {
        using var lab = new Lab(impaired ? "Gi" : "Gc");
        const int size = 64 << 20;
        var file = lab.File("big.bin", size, 4);
        lab.KernelTap();
        if (impaired) lab.KernelLoss(5);
        using var server = new Background(null, "ip", "netns", "exec", lab.Ns, "/usr/bin/python3", "-m", "http.server", "8000", "--bind", lab.KernelIp, "-d", lab.Dir.Path);
        Thread.Sleep(1500); // python binds
        var got = Path.Combine(lab.Dir.Path, "got.bin");
        var args = new List<string> { "dotnet", Cli, "get", "--port", $"tap:{lab.Dev}", "--ip", $"{lab.HostIp}/24", $"http://{lab.KernelIp}:8000/big.bin", "-o", got };
        if (impaired) args.AddRange(["--impair", "loss=0.5%,delay=1ms"]);
        var get = lab.Exec(300, args.ToArray());
        Assert.True(get.Code == 0, $"get: {get.Out} {get.Err}");
        Assert.Contains($"{size:N0} bytes", get.Err);
        Assert.Equal(Sha(file), Sha(got));
        if (impaired) Assert.True(lab.KernelDropped() > 0, "the kernel side dropped nothing");

        var missing = lab.Exec(60, "dotnet", Cli, "get", "--port", $"tap:{lab.Dev}", "--ip", $"{lab.HostIp}/24", $"http://{lab.KernelIp}:8000/nope", "-o", got);
        Assert.Equal(1, missing.Code);
        Assert.Contains("404", missing.Err);
        var refused = lab.Exec(60, "dotnet", Cli, "get", "--port", $"tap:{lab.Dev}", "--ip", $"{lab.HostIp}/24", $"http://{lab.KernelIp}:8001/", "-o", got);
        Assert.Equal(1, refused.Code);
        Assert.Contains("refused", refused.Err);
    }

    [RootFact("ip", "curl", "hping3")]
    public void A_syn_flood_from_random_sources_leaves_curl_answered_and_memory_bounded()
    {
        using var lab = new Lab("F");
        lab.File("small.bin", 100_000, 5);
        using var host = lab.Host("--serve", $"http:80:{lab.Dir.Path}");
        int pid = HostPid(lab);
        long rssBefore = Rss(pid);
        using var flood = new Background(null, "ip", "netns", "exec", lab.Ns, "hping3", "-S", "--flood", "--rand-source", "-p", "80", lab.HostIp);
        Thread.Sleep(1000);
        int ok = 0;
        for (int i = 0; i < 10; i++)
        {
            var curl = lab.Exec(30, "curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", $"http://{lab.HostIp}/small.bin");
            if (curl.Out == "200") ok++;
        }
        long rssDuring = Rss(pid);
        flood.Stop();
        Assert.Equal(10, ok);
        Assert.True(rssDuring - rssBefore < 64 << 20, $"RSS grew from {rssBefore >> 20} MiB to {rssDuring >> 20} MiB under the flood");
        host.Stop();
        Assert.Matches(@"[1-9][\d,]* syn cookies", host.Log);
    }

    [RootFact("ip", "scapy")]
    public void A_blind_in_window_reset_gets_a_challenge_ack_and_the_connection_lives_on()
    {
        using var lab = new Lab("R");
        using var host = lab.Host("--serve", "tcp-echo:7");
        var script = Path.Combine(lab.Dir.Path, "rst.py");
        System.IO.File.WriteAllText(script, $$"""
            import socket, threading, time
            from scapy.all import IP, TCP, sniff, send, conf
            conf.verb = 0
            seen = []
            def watch():
                sniff(iface="{{lab.Dev}}", filter="tcp and src host {{lab.HostIp}} and src port 7", prn=lambda p: seen.append(p), timeout=6)
            t = threading.Thread(target=watch); t.start(); time.sleep(1)
            s = socket.create_connection(("{{lab.HostIp}}", 7))
            s.sendall(b"hello"); assert s.recv(100) == b"hello"
            time.sleep(0.3)
            last = seen[-1][TCP]
            rcv_nxt = last.ack                      # what netloom expects next from us
            n_before = len(seen)
            send(IP(src="{{lab.KernelIp}}", dst="{{lab.HostIp}}") / TCP(sport=s.getsockname()[1], dport=7, flags="R", seq=rcv_nxt + 1000))
            time.sleep(0.5)
            acks = [p[TCP] for p in seen[n_before:] if p[TCP].flags == "A" and p[TCP].ack == rcv_nxt and len(p[TCP].payload) == 0]
            print("challenge-acks", len(acks))
            s.sendall(b"still-alive"); print("echo", s.recv(100).decode())
            s.close(); t.join()
            """);
        var run = lab.Exec(60, "/usr/bin/python3", script);
        Assert.True(run.Code == 0, run.Out + run.Err);
        Assert.Matches("challenge-acks [1-9]", run.Out);
        Assert.Contains("echo still-alive", run.Out);
        host.Stop();
        Assert.Matches(@"[1-9][\d,]* challenge acks", host.Log);
    }

    private static int HostPid(Lab lab)
    {
        var pids = Sh.Run("pgrep", "-f", $"tap:{lab.Dev} ").Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse);
        return pids.First(p => System.IO.File.ReadAllText($"/proc/{p}/comm").Trim() == "dotnet");
    }

    private static long Rss(int pid)
    {
        var line = System.IO.File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:"));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }
}
