using Netloom.Interop.Tests.Support;
using Netloom.Run;

namespace Netloom.Interop.Tests.Run;

/// <summary>
/// `netloom run` over IPv6: unmodified programs' AF_INET6 sockets on the user-level stack, against
/// the Linux kernel through a TAP in a namespace the test makes (curl -6, python3 http.server
/// --bind ::, socat UDP6, nginx listen [::]), and a C program that checks the addresses the
/// socket calls report against the kernel's own answers.
/// </summary>
public class Ipv6RunTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromSeconds(60);
    private static readonly Lazy<string> s_ipv6 = new(() => RunLab.Compile("ipv6.c", "ipv6"));

    [Fact]
    public void The_ipv6_settings_are_read_and_checked_as_the_ipv4_ones()
    {
        static EngineConfig? Read(out string? error, params (string Key, string Value)[] vars)
        {
            var env = new Dictionary<string, string> { ["NETLOOM_PORT"] = "tap:x", ["NETLOOM_IP"] = "10.0.0.2/24" };
            foreach (var (k, v) in vars) env[k] = v;
            return EngineConfig.FromEnvironment(k => env.GetValueOrDefault(k), out error);
        }
        var on = Read(out _)!;
        Assert.True(on.Ipv6);
        Assert.Null(on.Address6);
        var fixedAddress = Read(out _, ("NETLOOM_IP6", "fd00:1::2/48"), ("NETLOOM_GATEWAY6", "fd00:1::1"))!;
        Assert.Equal("fd00:1::2", fixedAddress.Address6.ToString());
        Assert.Equal(48, fixedAddress.PrefixLength6);
        Assert.Equal("fd00:1::1", fixedAddress.Gateway6.ToString());
        Assert.False(Read(out _, ("NETLOOM_IP6", "off"))!.Ipv6);
        Assert.False(Read(out _, ("NETLOOM_MTU", "576"))!.Ipv6); // below IPv6's 1280 it stays off unless asked for

        foreach (var (vars, expected) in new ((string, string)[], string)[]
        {
            ([("NETLOOM_IP6", "fd00::2")], "NETLOOM_IP6 'fd00::2' is not ADDRESS/PREFIX"),
            ([("NETLOOM_IP6", "fd00::2/129")], "NETLOOM_IP6 'fd00::2/129' is not ADDRESS/PREFIX"),
            ([("NETLOOM_IP6", "10.0.0.2/24")], "NETLOOM_IP6 '10.0.0.2/24' is not ADDRESS/PREFIX"),
            ([("NETLOOM_IP6", "::1/128")], "::1 cannot be an interface address"),
            ([("NETLOOM_IP6", "ff02::1/64")], "ff02::1 cannot be an interface address"),
            ([("NETLOOM_GATEWAY6", "bogus")], "NETLOOM_GATEWAY6 'bogus' is not a unicast IPv6 address"),
            ([("NETLOOM_IP6", "off"), ("NETLOOM_GATEWAY6", "fe80::1")], "NETLOOM_GATEWAY6 and NETLOOM_IP6=off contradict each other"),
            ([("NETLOOM_IP6", "fd00::2/64"), ("NETLOOM_MTU", "1000")], "NETLOOM_IP6 needs NETLOOM_MTU of at least 1280"),
        })
        {
            Assert.Null(Read(out var error, vars));
            Assert.Contains(expected, error);
        }
    }

    [Fact]
    public void Bad_ipv6_flags_stop_netloom_run_with_a_message_naming_the_flag()
    {
        foreach (var (flags, expected) in new (string[], string)[]
        {
            (["--ip6", "fd00::2"], "--ip6 'fd00::2' is not ADDRESS/PREFIX"),
            (["--gateway6", "10.0.0.1"], "--gateway6 '10.0.0.1' is not a unicast IPv6 address"),
            (["--no-ip6", "--ip6", "fd00::2/64"], "--no-ip6 and --ip6 contradict each other"),
            (["--ip6", "fd00::2/64", "--mtu", "1000"], "--ip6 needs --mtu of at least 1280"),
            (["--tap-peer6", "fd00::1/64"], "--tap-peer6 needs --tap-peer"),
        })
        {
            var r = Sh.Run(Minute, "dotnet", [RunLab.Cli, "run", "--port", "tap:nlnever0", "--ip", "10.0.0.2/24", .. flags, "--", "true"]);
            Assert.True(r.Code == 2, $"{string.Join(' ', flags)}: exit {r.Code} {r.Err}");
            Assert.Contains(expected, r.Err);
        }
    }

    [RootFact("ip", "gcc")]
    public void Socket_addresses_options_and_errors_are_the_kernels_exactly()
    {
        using var lab = new Tap6Namespace();
        // The peerless checks pass on the kernel first: the expectations are Linux's own answers.
        var kernel = lab.Kernel(60, s_ipv6.Value, "local");
        Assert.True(kernel.Code == 0, "on the kernel: " + kernel.Out + kernel.Err);
        var local = RunLab.Run(Minute, lab.Ns, lab.Port, lab.Ip4Flag, [s_ipv6.Value, "local"], lab.Ip6Flags);
        Assert.True(local.Code == 0, "under netloom run: " + local.Out + local.Err);
        Assert.Equal(kernel.Out, local.Out);

        var r = RunLab.Run(2 * Minute, lab.Ns, lab.Port, lab.Ip4Flag,
            [s_ipv6.Value, "remote", lab.Kernel4, lab.Kernel6, lab.Netloom4, lab.Netloom6, Tap6Namespace.KernelLinkLocal, lab.Tap, "7800"], lab.Ip6Flags);
        Assert.True(r.Code == 0, $"exit {r.Code}\n{r.Out}\n{r.Err}");
        foreach (var name in new[] { "tcp6-connect-getpeername", "tcp6-connect-getsockname", "tcp6-kernel-sees-the-same-ends", "mapped-connect-getpeername",
            "mapped-connect-getsockname", "mapped-kernel-sees-ipv4", "v6only-connect-mapped-is-enetunreach", "dual-accepts-ipv4-as-mapped",
            "dual-accepted-ipv4-getsockname", "dual-accepts-ipv6", "dual-accepted-ipv6-getsockname", "v6only-listener-refuses-ipv4",
            "v6only-listener-accepts-ipv6", "inet-listener-refuses-ipv6", "dual-listener-on-an-inet-port-is-eaddrinuse",
            "v6only-listener-shares-the-inet-port", "inet-listener-beside-it-takes-ipv4", "udp6-sendto-recvfrom", "udp4-sendto-recvfrom",
            "udp-v6only-sendto-mapped-is-enetunreach", "link-local-without-scope-is-einval", "link-local-connect-reports-the-scope", "link-local-source" })
            Assert.Contains($"ok {name}\n", r.Out);
        Assert.Contains(" 0 failed", r.Out);
    }

    [RootFact("ip", "curl", "/usr/bin/python3", "tshark")]
    public void Curl6_and_python_http_server_on_ipv6_move_files_byte_exact_and_the_server_is_dual_stack()
    {
        using var lab = new Tap6Namespace();
        using var www = new TempDir();
        string file = www.File("data.bin");
        File.WriteAllBytes(file, System.Security.Cryptography.RandomNumberGenerator.GetBytes(4 << 20));

        // Everything on the TAP, as the kernel sees it.
        string pcap = www.File("tap.pcapng");
        using var capture = new Background("Capturing on", "ip", "netns", "exec", lab.Ns, "tshark", "-i", lab.Tap, "-w", pcap, "-f", "ip6 and tcp");
        capture.WaitReady(60);

        // curl -6 under netloom run, from the kernel's python3 -m http.server --bind ::.
        using (var kernelServer = new Background("Serving HTTP", "ip", "netns", "exec", lab.Ns, "/usr/bin/python3", "-u", "-m", "http.server", "8000",
            "--bind", "::", "--directory", www.Path))
        {
            kernelServer.WaitReady();
            string got = www.File("got1.bin");
            var r = RunLab.Run(2 * Minute, lab.Ns, lab.Port, lab.Ip4Flag, ["curl", "-6", "-sS", "-o", got, $"http://[{lab.Kernel6}]:8000/data.bin"], lab.Ip6Flags);
            Assert.True(r.Code == 0, r.Out + r.Err);
            TempDir.AssertSameFile(file, got, capture.Stop, pcap);
            // The kernel's server logged the stack's IPv6 address as the client.
            Assert.Contains(lab.Netloom6, kernelServer.Log);
        }

        // python3 -m http.server --bind :: under netloom run, and the kernel's curl over both versions.
        using var server = RunLab.Start(null, lab.Ns, lab.Port, lab.Ip4Flag,
            ["/usr/bin/python3", "-u", "-m", "http.server", "8001", "--bind", "::", "--directory", www.Path], lab.Ip6Flags);
        RunLab.WaitForPort(lab.Ns, lab.Netloom4, 8001);
        string got6 = www.File("got6.bin"), got4 = www.File("got4.bin");
        var k6 = lab.Kernel(120, "curl", "-6", "-sS", "-o", got6, $"http://[{lab.Netloom6}]:8001/data.bin");
        Assert.True(k6.Code == 0, k6.Out + k6.Err + server.Log);
        TempDir.AssertSameFile(file, got6, capture.Stop, pcap);
        var k4 = lab.Kernel(120, "curl", "-4", "-sS", "-o", got4, $"http://{lab.Netloom4}:8001/data.bin");
        Assert.True(k4.Code == 0, k4.Out + k4.Err + server.Log);
        TempDir.AssertSameFile(file, got4, capture.Stop, pcap);
        // The server saw the IPv4 client IPv4-mapped, as on Linux's dual-stack sockets.
        Assert.Contains($"::ffff:{lab.Kernel4}", server.Log);
        Assert.Contains(lab.Kernel6, server.Log);

        capture.Stop();
        // The handshakes over IPv6, both directions, with valid checksums.
        var syns = Tshark.Fields(pcap, "ipv6.src", "ipv6.dst", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack", "tcp.checksum.status")
            .Where(f => f["tcp.flags.syn"] is "1" or "True").ToList();
        Assert.Contains(syns, f => f["ipv6.src"] == lab.Netloom6 && f["ipv6.dst"] == lab.Kernel6 && f["tcp.dstport"] == "8000");
        Assert.Contains(syns, f => f["ipv6.src"] == lab.Kernel6 && f["ipv6.dst"] == lab.Netloom6 && f["tcp.dstport"] == "8001");
        Assert.Contains(syns, f => f["ipv6.src"] == lab.Netloom6 && f["tcp.flags.ack"] is "1" or "True"); // the stack's SYN-ACK
        Assert.DoesNotContain(syns, f => f["tcp.checksum.status"] is "0" or "Bad");
    }

    [RootFact("curl", "/usr/bin/python3")]
    public void Two_netloom_run_programs_talk_ipv6_over_shm()
    {
        // Both ends on their own stacks, joined by a shm port: no kernel in between, and neither
        // side has a kernel interface (so no scope ids either).
        string shm = $"shm:{RunLab.Unique("nl6shm")}";
        int net = RunLab.Subnet();
        string server6 = $"fd00:231:{net:x}::1", client6 = $"fd00:231:{net:x}::2";
        using var www = new TempDir();
        string file = www.File("data.bin");
        File.WriteAllBytes(file, System.Security.Cryptography.RandomNumberGenerator.GetBytes(4 << 20));
        using var server = RunLab.Start("Serving HTTP", null, shm, $"10.231.{net}.1/24",
            ["/usr/bin/python3", "-u", "-m", "http.server", "8003", "--bind", server6, "--directory", www.Path], "--ip6", $"{server6}/64");
        server.WaitReady(60);
        string got = www.File("got.bin");
        var r = RunLab.Run(2 * Minute, null, shm, $"10.231.{net}.2/24",
            ["curl", "-6", "-sS", "--retry", "5", "--retry-connrefused", "-o", got, $"http://[{server6}]:8003/data.bin"], "--ip6", $"{client6}/64");
        Assert.True(r.Code == 0, r.Out + r.Err + server.Log);
        TempDir.AssertSameFile(file, got);
        Assert.Contains(client6, server.Log); // the server saw the client's stack address
    }

    [RootFact("ip", "socat")]
    public void Socat_talks_udp6_and_tcp6_both_ways()
    {
        using var lab = new Tap6Namespace();
        // UDP6: the kernel's socat echo server, a socat client under netloom run.
        using (var k = new Background(null, "ip", "netns", "exec", lab.Ns, "socat", $"UDP6-RECVFROM:5003,bind=[{lab.Kernel6}],fork", "SYSTEM:cat"))
        {
            Thread.Sleep(500);
            var r = RunLab.Run(Minute, lab.Ns, lab.Port, lab.Ip4Flag, ["sh", "-c", $"echo netloom-udp6-1 | socat -t 3 - UDP6:[{lab.Kernel6}]:5003"], lab.Ip6Flags);
            Assert.True(r.Out.Contains("netloom-udp6-1"), r.Out + r.Err + k.Log);
        }
        // UDP6: a socat server under netloom run (one datagram: no fork, see RunInteropTests), the kernel's client.
        using (var server = RunLab.Start(null, lab.Ns, lab.Port, lab.Ip4Flag, ["socat", $"UDP6-RECVFROM:5004,bind=[{lab.Netloom6}]", "SYSTEM:cat"], lab.Ip6Flags))
        {
            string echoed = "";
            for (int i = 0; i < 20 && !echoed.Contains("netloom-udp6-2"); i++)
                echoed = lab.Kernel(10, "sh", "-c", $"echo netloom-udp6-2 | socat -t 3 - UDP6:[{lab.Netloom6}]:5004").Out;
            Assert.True(echoed.Contains("netloom-udp6-2"), echoed + server.Log);
        }
        // TCP6 both ways.
        using (var server = RunLab.Start(null, lab.Ns, lab.Port, lab.Ip4Flag, ["socat", $"TCP6-LISTEN:5001,reuseaddr,bind=[{lab.Netloom6}]", "SYSTEM:cat"], lab.Ip6Flags))
        {
            string echoed = "";
            for (int i = 0; i < 60 && !echoed.Contains("netloom-tcp6-1"); i++, Thread.Sleep(echoed.Length == 0 ? 250 : 0))
                echoed = lab.Kernel(20, "sh", "-c", $"echo netloom-tcp6-1 | socat -t 2 - TCP6:[{lab.Netloom6}]:5001").Out;
            Assert.True(echoed.Contains("netloom-tcp6-1"), echoed + server.Log);
        }
        using (var k = new Background(null, "ip", "netns", "exec", lab.Ns, "socat", $"TCP6-LISTEN:5002,reuseaddr,bind=[{lab.Kernel6}]", "SYSTEM:cat"))
        {
            Thread.Sleep(500);
            var r = RunLab.Run(Minute, lab.Ns, lab.Port, lab.Ip4Flag, ["sh", "-c", $"echo netloom-tcp6-2 | socat -t 2 - TCP6:[{lab.Kernel6}]:5002"], lab.Ip6Flags);
            Assert.True(r.Out.Contains("netloom-tcp6-2"), r.Out + r.Err + k.Log);
        }
    }

    [RootFact("ip", "curl", "/usr/bin/python3")]
    public void Tap_peer6_gives_the_kernel_side_of_the_tap_its_ipv6_address()
    {
        using var lab = new TapNamespace(makeTap: false); // netloom run makes the TAP
        using var www = new TempDir();
        File.WriteAllText(www.File("hello.txt"), "hello over tap-peer6\n");
        using var kernelServer = new Background("Serving HTTP", "ip", "netns", "exec", lab.Ns, "/usr/bin/python3", "-u", "-m", "http.server", "8004",
            "--bind", "::", "--directory", www.Path);
        kernelServer.WaitReady();
        int net = RunLab.Subnet();
        var r = RunLab.Run(Minute, lab.Ns, lab.Port, $"{lab.NetloomIp}/24", ["curl", "-6", "-sS", $"http://[fd00:233:{net:x}::1]:8004/hello.txt"],
            "--tap-peer", $"{lab.KernelIp}/24", "--ip6", $"fd00:233:{net:x}::2/64", "--tap-peer6", $"fd00:233:{net:x}::1/64");
        Assert.True(r.Code == 0, r.Out + r.Err + kernelServer.Log);
        Assert.Contains("hello over tap-peer6", r.Out);
        Assert.Contains($"fd00:233:{net:x}::2 -", kernelServer.Log); // from the stack, over the TAP
        Assert.NotEqual(0, lab.Kernel(10, "ip", "link", "show", lab.Tap).Code); // and the TAP is gone again
    }

    [RootFact("ip", "curl", "/usr/bin/python3")]
    public void With_no_ip6_an_ipv6_program_stays_on_the_kernel()
    {
        using var lab = new Tap6Namespace();
        // Under --no-ip6, curl -6 to the kernel's own address is a kernel socket: the kernel delivers it
        // locally. On the stack it would have crossed the TAP from the stack's address.
        using var www = new TempDir();
        File.WriteAllText(www.File("hello.txt"), "hello over the kernel\n");
        using var kernelServer = new Background("Serving HTTP", "ip", "netns", "exec", lab.Ns, "/usr/bin/python3", "-u", "-m", "http.server", "8002",
            "--bind", "::", "--directory", www.Path);
        kernelServer.WaitReady();
        var r = RunLab.Run(Minute, lab.Ns, lab.Port, lab.Ip4Flag, ["curl", "-6", "-sS", $"http://[{lab.Kernel6}]:8002/hello.txt"], "--no-ip6");
        Assert.True(r.Code == 0, r.Out + r.Err);
        Assert.Contains("hello over the kernel", r.Out);
        // The kernel's server saw its own address as the client: the connection never left the kernel.
        Assert.Contains($"{lab.Kernel6} -", kernelServer.Log);
    }

    [RootFact("ip", "redis-server", "redis-cli")]
    public void Redis_with_its_default_bind_listens_on_both_versions_side_by_side()
    {
        // redis-server's default "bind * -::*" is an AF_INET listener and an IPV6_V6ONLY AF_INET6
        // one on the same port.
        using var lab = new Tap6Namespace();
        using var redis = RunLab.Start("Ready to accept connections", lab.Ns, lab.Port, lab.Ip4Flag,
            ["redis-server", "--port", "6390", "--save", "", "--appendonly", "no", "--protected-mode", "no"], lab.Ip6Flags);
        redis.WaitReady(60);
        var set = lab.Kernel(30, "redis-cli", "-h", lab.Netloom6, "-p", "6390", "SET", "family", "six");
        Assert.True(set.Out.Trim() == "OK", set.Out + set.Err + redis.Log);
        var get = lab.Kernel(30, "redis-cli", "-h", lab.Netloom4, "-p", "6390", "GET", "family");
        Assert.True(get.Out.Trim() == "six", get.Out + get.Err + redis.Log);
        var clients = lab.Kernel(30, "redis-cli", "-h", lab.Netloom6, "-p", "6390", "CLIENT", "LIST");
        // The IPv6 listener's own client, not IPv4-mapped, on the stack's address.
        Assert.Contains($"addr=[{lab.Kernel6}]:", clients.Out);
        Assert.Contains($"laddr=[{lab.Netloom6}]:6390", clients.Out);
    }

    [RootFact("ip", "nginx", "curl")]
    public void Nginx_listening_on_ipv6_answers_over_ipv6()
    {
        using var lab = new Tap6Namespace();
        using var dir = new TempDir();
        string file = dir.File("data.bin");
        File.WriteAllBytes(file, System.Security.Cryptography.RandomNumberGenerator.GetBytes(4 << 20));
        string conf = RunLab.NginxConf(dir, "[::]:8080");
        using var nginx = RunLab.Start(null, lab.Ns, lab.Port, lab.Ip4Flag, ["nginx", "-c", conf], lab.Ip6Flags);
        string got = dir.File("got.bin");
        (int Code, string Out, string Err) r = default;
        for (int i = 0; i < 60; i++, Thread.Sleep(250)) // nginx under netloom run starts in its own time
            if ((r = lab.Kernel(60, "curl", "-6", "-sS", "-o", got, $"http://[{lab.Netloom6}]:8080/data.bin")).Code == 0) break;
        Assert.True(r.Code == 0, r.Out + r.Err + nginx.Log);
        TempDir.AssertSameFile(file, got);
        // nginx sets IPV6_V6ONLY on [::] listeners by default (ipv6only=on): IPv4 is refused.
        var v4 = lab.Kernel(20, "curl", "-4", "-sS", "-o", "/dev/null", $"http://{lab.Netloom4}:8080/data.bin");
        Assert.Equal(7, v4.Code); // curl: "Failed to connect"
    }
}

/// <summary>
/// A namespace with a TAP whose kernel side has an IPv4 address, an IPv6 address and the
/// link-local fe80::1, all without duplicate address detection, so the kernel answers the
/// stack at once.
/// </summary>
internal sealed class Tap6Namespace : IDisposable
{
    public const string KernelLinkLocal = "fe80::1";
    public string Ns { get; } = RunLab.Unique("nl6R");
    public string Tap { get; } = RunLab.Unique("nl6r");
    public string Kernel4 { get; }
    public string Netloom4 { get; }
    public string Kernel6 { get; }
    public string Netloom6 { get; }
    public string Port => $"tap:{Tap}";
    public string Ip4Flag => $"{Netloom4}/24";
    public string[] Ip6Flags => ["--ip6", $"{Netloom6}/64"];

    public Tap6Namespace()
    {
        int net = RunLab.Subnet();
        Kernel4 = $"10.232.{net}.1";
        Netloom4 = $"10.232.{net}.2";
        Kernel6 = $"fd00:232:{net:x}::1";
        Netloom6 = $"fd00:232:{net:x}::2";
        Sh.Ok("ip", "netns", "add", Ns);
        try
        {
            Sh.Ok("ip", "-n", Ns, "link", "set", "lo", "up");
            Sh.Ok("ip", "-n", Ns, "tuntap", "add", "dev", Tap, "mode", "tap");
            Sh.Ok("ip", "netns", "exec", Ns, "sysctl", "-qw", $"net.ipv6.conf.{Tap}.accept_dad=0");
            Sh.Ok("ip", "-n", Ns, "addr", "add", $"{Kernel4}/24", "dev", Tap);
            Sh.Ok("ip", "-n", Ns, "-6", "addr", "add", $"{Kernel6}/64", "dev", Tap, "nodad");
            Sh.Ok("ip", "-n", Ns, "-6", "addr", "add", $"{KernelLinkLocal}/64", "dev", Tap, "nodad");
            Sh.Ok("ip", "-n", Ns, "link", "set", Tap, "up");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public (int Code, string Out, string Err) Kernel(int seconds, params string[] argv) =>
        Sh.Run(TimeSpan.FromSeconds(seconds), "ip", ["netns", "exec", Ns, .. argv]);

    public void Dispose() => Sh.Run("ip", "netns", "del", Ns);
}
