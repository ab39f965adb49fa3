using Netloom.Interop.Tests.Support;
using Netloom.Wire;
using Netloom.Wire.Capture;

namespace Netloom.Interop.Tests.Stack;

/// <summary>
/// Netloom's IPv6 against the Linux kernel's, through a TAP in a namespace the test makes:
/// ping -6 (with 4000-byte fragmented pings), curl -6 against `netloom host`, socat over UDP6 and
/// TCP6, `netloom get` from python's http.server on ::, SLAAC from a router advertisement scapy
/// sends, and a Linux router namespace between (hop limit, Packet Too Big from a small MTU on the
/// far link, path MTU discovery). The 64 MiB transfers run with loss on both sides.
/// </summary>
public partial class Ipv6InteropTests
{
    private static string Cli => Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll");
    private static int s_next;

    private sealed class Lab : IDisposable
    {
        public readonly string Ns, Dev, Prefix, KernelIp, HostIp, HostIp4, KernelIp4;
        public readonly TempDir Dir = new();

        public Lab(string tag)
        {
            int n = Interlocked.Increment(ref s_next);
            Ns = $"nl6{tag}{Environment.ProcessId}";
            Dev = $"nl6{tag}{Environment.ProcessId % 10000}";
            Prefix = $"fd6e:{Environment.ProcessId % 65535:x}:{n}";
            KernelIp = $"{Prefix}::1";
            HostIp = $"{Prefix}::2";
            int net = (Environment.ProcessId + n * 11) % 200 + 20;
            KernelIp4 = $"10.240.{net}.1";
            HostIp4 = $"10.240.{net}.2";
            Sh.Ok("ip", "netns", "add", Ns);
            Sh.Ok("ip", "-n", Ns, "link", "set", "lo", "up");
        }

        public Background Host(params string[] extra)
        {
            var args = new List<string> { "netns", "exec", Ns, "dotnet", Cli, "host", "--port", $"tap:{Dev}", "--ip", $"{HostIp4}/24", "--duration", "300" };
            args.AddRange(extra);
            var host = new Background("Ctrl-C to stop", "ip", args.ToArray());
            host.WaitReady(30);
            return host;
        }

        /// <summary>The kernel's address on the TAP, without DAD so it is usable at once.</summary>
        public void KernelAddress() => Sh.Ok("ip", "-n", Ns, "addr", "add", $"{KernelIp}/64", "dev", Dev, "nodad");

        public (int Code, string Out, string Err) Exec(int seconds, params string[] cmd) =>
            Sh.Run(TimeSpan.FromSeconds(seconds), "ip", ["netns", "exec", Ns, .. cmd]);

        /// <summary>Pings until the host answers (its DAD takes a second), at most 15 s.</summary>
        public void WaitReachable(string ip)
        {
            for (int i = 0; i < 30; i++)
                if (Exec(5, "ping", "-6", "-c", "1", "-W", "1", ip).Code == 0) return;
            Assert.Fail($"{ip} never answered a ping");
        }

        public string File(string name, int bytes, int seed) => Dir.RandomFile(name, bytes, seed);

        public void Dispose()
        {
            Sh.Run("ip", "netns", "del", Ns);
            Dir.Dispose();
        }
    }

    private static string Sha(string path) => TempDir.Sha256(path);

    [RootFact("ip", "ping", "curl", "socat")]
    public void The_kernel_pings_curls_and_talks_udp6_and_tcp6_to_netloom_host()
    {
        using var lab = new Lab("K");
        var file = lab.File("blob.bin", 2 << 20, 1);
        using var host = lab.Host("--ip6", $"{lab.HostIp}/64", "--serve", $"http:80:{lab.Dir.Path}", "--serve", "udp-echo:7", "--serve", "tcp-echo:9");
        lab.KernelAddress();
        lab.WaitReachable(lab.HostIp);

        var quick = lab.Exec(60, "ping", "-6", "-c", "200", "-i", "0.005", "-W", "1", "-q", lab.HostIp);
        Assert.True(quick.Code == 0, quick.Out + quick.Err);
        Assert.Contains("200 received", quick.Out);
        // The kernel learned our MAC by neighbour discovery.
        Assert.Matches(@"lladdr 02:4e:4c:\S+ (REACHABLE|STALE|DELAY|PROBE)", Sh.Ok("ip", "-n", lab.Ns, "-6", "neigh", "show", lab.HostIp, "dev", lab.Dev));

        // 4000-byte pings: fragmented by the kernel, reassembled by us, and our replies fragmented for the kernel.
        var big = lab.Exec(30, "ping", "-6", "-c", "5", "-i", "0.2", "-s", "4000", "-W", "2", "-q", lab.HostIp);
        Assert.True(big.Code == 0, big.Out + big.Err);
        Assert.Contains("5 received", big.Out);

        var got = Path.Combine(lab.Dir.Path, "got.bin");
        var curl = lab.Exec(120, "curl", "-6", "-sS", "--max-time", "100", "-o", got, "-w", "%{http_code} %{size_download}", $"http://[{lab.HostIp}]/blob.bin");
        Assert.True(curl.Code == 0, $"curl: {curl.Out} {curl.Err}\n{host.Log}");
        Assert.Equal($"200 {2 << 20}", curl.Out.Trim());
        Assert.Equal(Sha(file), Sha(got));

        // The same listener answers IPv4 (dual stack).
        Sh.Ok("ip", "-n", lab.Ns, "addr", "add", $"{lab.KernelIp4}/24", "dev", lab.Dev);
        var v4 = lab.Exec(60, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", $"http://{lab.HostIp4}/blob.bin");
        Assert.Equal("200", v4.Out);

        var echo = lab.Exec(10, "sh", "-c", $"echo netloom-udp6 | socat -t 2 - UDP6:[{lab.HostIp}]:7");
        Assert.Contains("netloom-udp6", echo.Out);
        var tcpEcho = lab.Exec(60, "sh", "-c", $"socat -t 10 - TCP6:[{lab.HostIp}]:9 < {file} | sha256sum");
        Assert.StartsWith(Sha(file).ToLowerInvariant(), tcpEcho.Out);
        // A closed UDP port answers with an ICMPv6 port unreachable, which socat reports as refused.
        var refused = lab.Exec(10, "sh", "-c", $"echo x | socat -t 1 - UDP6:[{lab.HostIp}]:9999; echo x | socat -t 1 - UDP6:[{lab.HostIp}]:9999");
        Assert.Contains("Connection refused", refused.Err + refused.Out);

        host.Stop();
        Assert.Contains("ipv6", host.Log);
        Assert.Contains("reassembled", host.Log);
    }

    [RootFact("ip", "curl", "nft", "/usr/bin/python3")]
    public void Sixty_four_MiB_each_way_over_ipv6_with_loss_arrive_sha256_equal()
    {
        using var lab = new Lab("L");
        const int size = 64 << 20;
        var down = lab.File("down.bin", size, 2);
        var up = lab.File("up.bin", size, 3);
        using var host = lab.Host("--ip6", $"{lab.HostIp}/64", "--serve", $"http:80:{lab.Dir.Path}", "--impair", "loss=0.5%,delay=1ms", "--seed", "5");
        lab.KernelAddress();
        lab.WaitReachable(lab.HostIp);
        // This kernel has no netem: the kernel side's loss is nftables' random drop (as TcpInteropTests does for IPv4).
        Sh.Ok("ip", "netns", "exec", lab.Ns, "nft", "add", "table", "inet", "loss");
        Sh.Ok("ip", "netns", "exec", lab.Ns, "nft", "add chain inet loss out { type filter hook output priority 0; }");
        Sh.Ok("ip", "netns", "exec", lab.Ns, "nft", $"add rule inet loss out ip6 daddr {lab.HostIp} meta l4proto tcp numgen random mod 1000 lt 5 counter drop");

        // netloom -> kernel: curl -6 downloads from netloom host.
        var got = Path.Combine(lab.Dir.Path, "got.bin");
        var curl = lab.Exec(300, "curl", "-6", "-sS", "--max-time", "280", "-o", got, "-w", "%{http_code} %{size_download}", $"http://[{lab.HostIp}]/down.bin");
        Assert.True(curl.Code == 0, $"curl: {curl.Out} {curl.Err}\n{host.Log}");
        Assert.Equal($"200 {size}", curl.Out.Trim());
        Assert.Equal(Sha(down), Sha(got));
        host.Stop();
        Assert.Matches(@"impairment: [1-9][\d,]* lost", host.Log);

        // kernel -> netloom: netloom get from python's http.server bound to ::, on a fresh TAP.
        string dev2 = lab.Dev + "g";
        Sh.Ok("ip", "-n", lab.Ns, "tuntap", "add", "dev", dev2, "mode", "tap");
        Sh.Ok("ip", "-n", lab.Ns, "addr", "add", $"{lab.Prefix}:1::1/64", "dev", dev2, "nodad");
        Sh.Ok("ip", "-n", lab.Ns, "link", "set", dev2, "up");
        Sh.Ok("ip", "netns", "exec", lab.Ns, "nft", $"add rule inet loss out ip6 daddr {lab.Prefix}:1::2 meta l4proto tcp numgen random mod 1000 lt 5 counter drop");
        using var server = new Background(null, "ip", "netns", "exec", lab.Ns, "/usr/bin/python3", "-m", "http.server", "8000", "--bind", "::", "-d", lab.Dir.Path);
        Thread.Sleep(1500);
        var fetched = Path.Combine(lab.Dir.Path, "fetched.bin");
        var get = lab.Exec(300, "dotnet", Cli, "get", "--port", $"tap:{dev2}", "--ip", "10.241.0.2/24", "--ip6", $"{lab.Prefix}:1::2/64",
            "--impair", "loss=0.5%,delay=1ms", $"http://[{lab.Prefix}:1::1]:8000/up.bin", "-o", fetched);
        Assert.True(get.Code == 0, $"get: {get.Out} {get.Err}");
        Assert.Contains($"{size:N0} bytes", get.Err);
        Assert.Equal(Sha(up), Sha(fetched));
        var nft = Sh.Ok("ip", "netns", "exec", lab.Ns, "nft", "list", "table", "inet", "loss");
        Assert.Equal(2, System.Text.RegularExpressions.Regex.Matches(nft, @"packets [1-9]\d*").Count);
    }

    [RootFact("ip", "ping", "/usr/bin/python3", "scapy")]
    public void A_router_advertisement_from_scapy_gives_the_host_a_SLAAC_address_the_kernel_can_ping()
    {
        using var lab = new Lab("S");
        using var host = lab.Host("--mac", "02:4e:4c:00:66:02");
        lab.KernelAddress();
        Sh.Ok("ip", "-n", lab.Ns, "link", "set", lab.Dev, "up");
        Thread.Sleep(2500); // the host's link-local DAD, then its router solicitations
        string scapy = "from scapy.all import *; conf.verb=0; " +
            $"sendp(Ether(dst='33:33:00:00:00:01')/IPv6(src='fe80::1',dst='ff02::1',hlim=255)/ICMPv6ND_RA(routerlifetime=600)/" +
            $"ICMPv6NDOptPrefixInfo(prefix='{lab.Prefix}::',prefixlen=64,L=1,A=1,validlifetime=3600,preferredlifetime=1800)/ICMPv6NDOptSrcLLAddr(lladdr='02:00:00:00:66:01'), iface='{lab.Dev}')";
        var sent = lab.Exec(60, "/usr/bin/python3", "-c", scapy);
        Assert.True(sent.Code == 0, sent.Err);
        // The prefix with the modified EUI-64 of 02:4e:4c:00:66:02: ...:4e:4cff:fe00:6602.
        string slaac = Ipv6Address.FromPrefixAndMac(Ipv6Address.Parse($"{lab.Prefix}::"), MacAddress.Parse("02:4e:4c:00:66:02")).ToString();
        Assert.EndsWith(":4e:4cff:fe00:6602", slaac);
        lab.WaitReachable(slaac);
        host.Stop();
        Assert.Contains("ipv6", host.Log);
    }

    [RootFact("ip", "ping", "curl", "tshark")]
    public void Through_a_linux_router_the_hop_limit_drops_and_packet_too_big_sets_the_path_mtu_and_shrinks_the_tcp_mss()
    {
        using var lab = new Lab("R");
        string far = $"nl6F{Environment.ProcessId}", vr = $"nl6r{Environment.ProcessId % 10000}", vf = $"nl6f{Environment.ProcessId % 10000}";
        string farPrefix = $"{lab.Prefix}:7", farIp = $"{farPrefix}::2";
        Sh.Ok("ip", "netns", "add", far);
        try
        {
            var file = lab.File("blob.bin", 1 << 20, 9);
            var pcap = Path.Combine(lab.Dir.Path, "host.pcapng");
            using var host = lab.Host("--ip6", $"{lab.HostIp}/64", "--gateway6", lab.KernelIp, "--serve", $"http:80:{lab.Dir.Path}", "--pcap", pcap);
            lab.KernelAddress(); // the router's address on the TAP side
            Sh.Ok("ip", "netns", "exec", lab.Ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding");
            Sh.Ok("ip", "link", "add", vr, "netns", lab.Ns, "type", "veth", "peer", "name", vf, "netns", far);
            Sh.Ok("ip", "-n", lab.Ns, "addr", "add", $"{farPrefix}::1/64", "dev", vr, "nodad");
            Sh.Ok("ip", "-n", far, "addr", "add", $"{farIp}/64", "dev", vf, "nodad");
            // The router's egress towards the far host is 1280; the far host's own side stays 1500, so its MSS invites 1500-byte packets.
            Sh.Ok("ip", "-n", lab.Ns, "link", "set", vr, "mtu", "1280", "up");
            Sh.Ok("ip", "-n", far, "link", "set", vf, "up");
            Sh.Ok("ip", "-n", far, "link", "set", "lo", "up");
            Sh.Ok("ip", "-n", far, "-6", "route", "add", "default", "via", $"{farPrefix}::1");
            lab.WaitReachable(lab.HostIp);

            var ping = Sh.Run(TimeSpan.FromSeconds(30), "ip", "netns", "exec", far, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", lab.HostIp);
            Assert.True(ping.Code == 0, ping.Out + ping.Err);
            Assert.Contains("ttl=63", ping.Out); // our reply left with 64 and crossed one router

            var got = Path.Combine(lab.Dir.Path, "got.bin");
            var curl = Sh.Run(TimeSpan.FromSeconds(120), "ip", "netns", "exec", far, "curl", "-6", "-sS", "--max-time", "100", "-o", got, "-w", "%{http_code}", $"http://[{lab.HostIp}]/blob.bin");
            Assert.True(curl.Code == 0, $"curl: {curl.Out} {curl.Err}\n{host.Log}");
            Assert.Equal("200", curl.Out);
            Assert.Equal(Sha(file), Sha(got));
            // A second connection, opened after the path MTU is known, starts with the smaller MSS.
            var got2 = Path.Combine(lab.Dir.Path, "got2.bin");
            var curl2 = Sh.Run(TimeSpan.FromSeconds(120), "ip", "netns", "exec", far, "curl", "-6", "-sS", "--max-time", "100", "-o", got2, "-w", "%{http_code}", $"http://[{lab.HostIp}]/blob.bin");
            Assert.True(curl2.Code == 0, $"curl: {curl2.Out} {curl2.Err}\n{host.Log}");
            Assert.Equal(Sha(file), Sha(got2));
            host.Stop();

            // tshark's reading of the same capture: after the Packet Too Big, the connection it
            // interrupted and the next one both sent segments that fit 1280 bytes whole: no
            // fragment header (the effective send MSS shrank; RFC 9293 §3.7.2), and none over 1280.
            bool ptbSeen = false;
            int segmentsAfter = 0, fragmentsAfter = 0, largestAfter = 0;
            foreach (var row in Tshark.Fields(pcap, "ipv6.dst", "icmpv6.type", "icmpv6.mtu", "ipv6.fraghdr.nxt", "tcp.len", "ipv6.plen"))
            {
                if (row["icmpv6.type"] == "2" && row["icmpv6.mtu"] == "1280") { ptbSeen = true; continue; }
                if (!ptbSeen || row["ipv6.dst"] != farIp) continue;
                if (row["ipv6.fraghdr.nxt"] != "") fragmentsAfter++;
                if (row["tcp.len"] is { Length: > 0 } l && int.Parse(l) > 0) segmentsAfter++;
                if (row["ipv6.plen"] is { Length: > 0 } pl) largestAfter = Math.Max(largestAfter, 40 + int.Parse(pl));
            }
            Assert.True(ptbSeen, "tshark saw no Packet Too Big of 1280");
            Assert.True(segmentsAfter > 100, $"only {segmentsAfter} data segments to the far host after the Packet Too Big");
            Assert.Equal(0, fragmentsAfter);
            Assert.InRange(largestAfter, 1200, 1280); // full-sized segments, at the path MTU

            // In the host's capture: the far host's packets arrived with hop limit 63, the router sent a
            // Packet Too Big of 1280, and afterwards nothing we sent to the far host exceeded 1280 bytes.
            bool sawPtb = false, sawHop63 = false;
            int afterPtb = 0, tooBig = 0;
            using (var reader = CaptureReader.Open(pcap))
            {
                while (reader.Read(out var p) == CaptureReadResult.Packet)
                {
                    var d = DecodedFrame.Decode(p.Data);
                    if (!d.Has(FrameLayers.Ipv6)) continue;
                    if (d.Ipv6.Source.ToString() == farIp && d.Ipv6.HopLimit == 63) sawHop63 = true;
                    if (d.Has(FrameLayers.Icmpv6) && d.Icmpv6.Type == (byte)Icmpv6Type.PacketTooBig && d.Icmpv6.Mtu == 1280) { sawPtb = true; continue; }
                    if (sawPtb && d.Ipv6.Destination.ToString() == farIp)
                    {
                        afterPtb++;
                        if (d.Length - d.NetworkOffset > 1280) tooBig++;
                    }
                }
            }
            Assert.True(sawHop63, "no packet from the far host with hop limit 63");
            Assert.True(sawPtb, "the router sent no Packet Too Big");
            Assert.True(afterPtb > 100, $"only {afterPtb} packets to the far host after the Packet Too Big");
            Assert.Equal(0, tooBig);
        }
        finally
        {
            Sh.Run("ip", "netns", "del", far);
        }
    }
}
