using System.Net;
using System.Net.Sockets;
using System.Text;
using Netloom.Interop.Tests.Support;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Interop.Tests.Stack;

/// <summary>
/// The IPv6 stack pieces behind sockets, against the kernel through a TAP: connected UDP
/// sockets of both IP versions and the ICMP errors the kernel answers them with.
/// </summary>
public partial class Ipv6InteropTests
{
    /// <summary>A <see cref="NetStack"/> in this process on the lab's TAP, with IPv6 on; its DAD is done when this returns.</summary>
    private static NetStack InProcessStack(Lab lab, string mac)
    {
        var port = InNamespace.Run(lab.Ns, () => Ports.Open($"tap:{lab.Dev}"));
        var stack = new NetStack(port, new StackOptions
        {
            Mac = MacAddress.Parse(mac), Address = Ipv4Address.Parse(lab.HostIp4),
            Ipv6 = true, Ipv6Address = Ipv6Address.Parse(lab.HostIp),
        });
        lab.KernelAddress();
        Sh.Ok("ip", "-n", lab.Ns, "addr", "add", $"{lab.KernelIp4}/24", "dev", lab.Dev);
        lab.WaitReachable(lab.HostIp);
        return stack;
    }

    private static async Task<string> ReceiveText(UdpSocket u, int seconds)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var buf = new byte[2048];
        var (n, _) = await u.ReceiveAsync(buf, cts.Token);
        return Encoding.ASCII.GetString(buf, 0, n);
    }

    [RootFact("ip", "ping", "/usr/bin/python3")]
    public async Task A_connected_udp_socket_over_either_ip_version_talks_to_its_peer_and_hears_port_unreachable_as_connection_refused()
    {
        using var lab = new Lab("U");
        using var stack = InProcessStack(lab, "02:4e:4c:00:75:02");
        // The kernel's echo: first a stray datagram from another port (a connected socket must not take it), then the echo.
        string echo = "import socket,sys\n" +
            "s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); s.bind(('::',7007))\n" +
            "o=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); o.bind(('::',7008))\n" +
            "print('ready',flush=True)\n" +
            "while True:\n d,a=s.recvfrom(2048); o.sendto(b'stray',a); s.sendto(b'echo:'+d,a)\n";
        using var server = new Background("ready", "ip", "netns", "exec", lab.Ns, "/usr/bin/python3", "-c", echo);
        server.WaitReady(20);

        foreach (var (peer, family) in new[] { (IPAddress.Parse(lab.KernelIp), "6"), (IPAddress.Parse(lab.KernelIp4), "4") })
        {
            using var u = stack.OpenUdp();
            u.Connect(new IPEndPoint(peer, 7007));
            Assert.True(u.Send(Encoding.ASCII.GetBytes($"hello{family}")));
            Assert.Equal($"echo:hello{family}", await ReceiveText(u, 10)); // the stray came first and was refused

            using var closed = stack.OpenUdp();
            closed.Connect(new IPEndPoint(peer, 7999)); // nothing listens there
            Assert.True(closed.Send("knock"u8));
            var e = await Assert.ThrowsAsync<SocketException>(() => ReceiveText(closed, 10));
            Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
            // Reported once: the next send goes out (and meets the next refusal).
            Assert.True(closed.Send("again"u8));
        }
        var c = stack.GetCounters();
        Assert.True(c.Drops(StackDrop.ClosedPort) >= 2, "the stray datagrams were not refused");
    }

    /// <summary>Every MLD message in a capture, as tshark decodes it (all occurrences of repeated fields, comma-joined).</summary>
    private static List<Dictionary<string, string>> MldReports(string capture) =>
        Tshark.Fields(capture, "icmpv6.type == 143", true, "eth.src", "ipv6.src", "ipv6.dst", "ipv6.hlim", "ipv6.opt.router_alert", "icmpv6.checksum.status",
            "icmpv6.mldr.nb_mcast_records", "icmpv6.mldr.mar.record_type", "icmpv6.mldr.mar.multicast_address", "_ws.malformed");

    [RootFact("ip", "ping", "tshark", "/usr/bin/python3", "scapy")]
    public void The_host_reports_its_solicited_node_groups_by_mldv2_and_answers_general_and_address_specific_queries()
    {
        using var lab = new Lab("M");
        const string mac = "02:4e:4c:00:4d:02";
        var ll = Ipv6Address.LinkLocalFromMac(MacAddress.Parse(mac));
        string llGroup = ll.SolicitedNode.ToString(), globalGroup = Ipv6Address.Parse(lab.HostIp).SolicitedNode.ToString();
        Assert.NotEqual(llGroup, globalGroup);
        var pcap = Path.Combine(lab.Dir.Path, "host.pcapng");
        using var host = lab.Host("--mac", mac, "--ip6", $"{lab.HostIp}/64", "--pcap", pcap);
        lab.KernelAddress();
        lab.WaitReachable(lab.HostIp);

        // The kernel side of the TAP, captured by tshark while scapy plays an MLDv2 querier.
        var wire = Path.Combine(lab.Dir.Path, "wire.pcapng");
        using (var capture = new Background("Capturing on", "ip", "netns", "exec", lab.Ns, "tshark", "-i", lab.Dev, "-w", wire, "-f", "ip6"))
        {
            capture.WaitReady(60);
            Thread.Sleep(500);
            string ra = "IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])";
            string scapy = "from scapy.all import *; import time; conf.verb=0\n" +
                // A General Query with a Maximum Response Delay of 1500 ms; once it is answered, an address-specific one (500 ms).
                $"sendp(Ether(dst='33:33:00:00:00:01')/IPv6(src='fe80::99',dst='ff02::1',hlim=1)/{ra}/ICMPv6MLQuery2(mrd=1500), iface='{lab.Dev}')\n" +
                "time.sleep(2.5)\n" +
                $"sendp(Ether(dst=in6_getnsmac(inet_pton(socket.AF_INET6,'{globalGroup}')))/IPv6(src='fe80::99',dst='{globalGroup}',hlim=1)/{ra}/ICMPv6MLQuery2(mrd=500,mladdr='{globalGroup}'), iface='{lab.Dev}')\n" +
                "time.sleep(1.5)\n" +
                // A query from a global source must be ignored (RFC 3810 §5.1.14).
                $"sendp(Ether(dst='33:33:00:00:00:01')/IPv6(src='{lab.KernelIp}',dst='ff02::1',hlim=1)/{ra}/ICMPv6MLQuery2(mrd=100), iface='{lab.Dev}')\n" +
                "time.sleep(1.5)\n";
            var sent = lab.Exec(60, "/usr/bin/python3", "-c", scapy);
            Assert.True(sent.Code == 0, sent.Err);
            capture.Stop();
        }
        host.Stop();

        // Unsolicited: each group joined by a Change-to-Exclude record, sent twice (robustness 2),
        // to ff02::16 with hop limit 1 and a Router Alert, the first ones from :: (DAD was running).
        var ours = MldReports(pcap).Where(r => r["eth.src"] == mac).ToList();
        Assert.NotEmpty(ours);
        foreach (var r in ours)
        {
            Assert.Equal("ff02::16", r["ipv6.dst"]);
            Assert.Equal("1", r["ipv6.hlim"]);
            Assert.NotEqual("", r["ipv6.opt.router_alert"]);
            Assert.Equal("1", r["icmpv6.checksum.status"]); // tshark: good
            Assert.Equal("", r["_ws.malformed"]);
            Assert.DoesNotContain("ff02::1,", r["icmpv6.mldr.mar.multicast_address"] + ",");
            Assert.True(r["ipv6.src"] == "::" || r["ipv6.src"] == ll.ToString(), r["ipv6.src"]);
        }
        int Changes(string group) => ours.Count(r => r["icmpv6.mldr.mar.record_type"].Split(',').Zip(r["icmpv6.mldr.mar.multicast_address"].Split(','))
            .Any(p => p.First == "4" && p.Second == group));
        Assert.True(Changes(llGroup) >= 2, $"the link-local address's group was announced {Changes(llGroup)} times");
        Assert.True(Changes(globalGroup) >= 2, $"the global address's group was announced {Changes(globalGroup)} times");
        Assert.Equal("::", ours[0]["ipv6.src"]);

        // Answers on the wire: the General Query gets one Mode-is-Exclude report of both groups,
        // the address-specific one a report of that group alone; the global-source query nothing more.
        var answers = MldReports(wire).Where(r => r["eth.src"] == mac && r["icmpv6.mldr.mar.record_type"].Split(',').All(t => t == "2")).ToList();
        Assert.Equal(2, answers.Count);
        Assert.Equal(ll.ToString(), answers[0]["ipv6.src"]);
        Assert.Equal(new[] { llGroup, globalGroup }.Order(), answers[0]["icmpv6.mldr.mar.multicast_address"].Split(',').Order());
        Assert.Equal(globalGroup, answers[1]["icmpv6.mldr.mar.multicast_address"]);
        Assert.Equal("1", answers[1]["icmpv6.checksum.status"]);
    }

    [RootFact("ip", "tshark", "/usr/bin/python3", "scapy")]
    public void A_linux_router_redirects_the_stack_to_an_on_link_host_and_crafted_bad_redirects_are_dropped()
    {
        // The link: a bridge in the router namespace joins the stack's TAP and a veth to host D.
        // The router (forwarding on) owns the stack's prefix and, on the same bridge, D's prefix;
        // the stack only knows the router. Its packets to D come in and go back out the bridge, so
        // the kernel sends a Redirect naming D itself as the better first hop (RFC 4861 §8.2).
        using var lab = new Lab("D");
        string d = $"nl6H{Environment.ProcessId}", vr = $"nl6v{Environment.ProcessId % 10000}", vd = $"nl6w{Environment.ProcessId % 10000}";
        const string routerMac = "02:00:00:00:72:01", dMac = "02:00:00:00:72:05", ourMac = "02:4e:4c:00:72:02";
        string dIp = $"{lab.Prefix}:9::5";
        var routerLl = Ipv6Address.LinkLocalFromMac(MacAddress.Parse(routerMac));
        Sh.Ok("ip", "netns", "add", d);
        try
        {
            var port = InNamespace.Run(lab.Ns, () => Ports.Open($"tap:{lab.Dev}"));
            void R(params string[] a) => Sh.Ok("ip", ["-n", lab.Ns, .. a]);
            R("link", "add", "br0", "address", routerMac, "type", "bridge");
            Sh.Ok("ip", "netns", "exec", lab.Ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/br0/accept_dad; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding");
            R("link", "set", lab.Dev, "master", "br0");
            Sh.Ok("ip", "link", "add", vr, "netns", lab.Ns, "type", "veth", "peer", "name", vd, "netns", d);
            R("link", "set", vr, "master", "br0");
            R("link", "set", vr, "up");
            R("link", "set", "br0", "up");
            R("addr", "add", $"{lab.KernelIp}/64", "dev", "br0", "nodad");
            R("addr", "add", $"{lab.Prefix}:9::1/64", "dev", "br0", "nodad");
            Sh.Ok("ip", "-n", d, "link", "set", vd, "address", dMac);
            Sh.Ok("ip", "-n", d, "link", "set", vd, "up");
            Sh.Ok("ip", "-n", d, "addr", "add", $"{dIp}/64", "dev", vd, "nodad");
            Sh.Ok("ip", "-n", d, "-6", "route", "add", $"{lab.Prefix}::/64", "dev", vd); // D answers the stack directly

            var wire = Path.Combine(lab.Dir.Path, "wire.pcapng");
            using var capture = new Background("Capturing on", "ip", "netns", "exec", lab.Ns, "tshark", "-i", lab.Dev, "-w", wire, "-f", "ip6");
            capture.WaitReady(60);
            using var stack = new NetStack(port, new StackOptions
            {
                Mac = MacAddress.Parse(ourMac), Address = Ipv4Address.Parse(lab.HostIp4),
                Ipv6 = true, Ipv6Address = Ipv6Address.Parse(lab.HostIp), Ipv6Gateway = routerLl,
            });
            var iface = stack.Interface;
            Ipv6Address? HopOf(string a) { using (stack.Lock.EnterScope()) return iface.NextHopOf(Ipv6Address.Parse(a)); }
            Thread.Sleep(1500); // DAD
            Assert.Equal(routerLl, HopOf(dIp));

            // Pings to D: the first ones through the router, which redirects; then straight to D.
            int replies = 0;
            for (ushort i = 0; i < 20 && replies < 8; i++)
            {
                using (stack.Lock.EnterScope())
                {
                    iface.SendPing6(Ipv6Address.Parse(dIp), 0x72, i, "redirect-me"u8);
                    iface.FlushOutput();
                }
                Thread.Sleep(250);
                using (stack.Lock.EnterScope()) while (iface.TryTakePingReply6(out var r)) if (r.From.ToString() == dIp) replies++;
            }
            Assert.True(replies >= 8, $"{replies} replies from D");
            Assert.Equal(1, iface.RedirectsAccepted);
            Assert.Equal(Ipv6Address.Parse(dIp), HopOf(dIp));

            // Crafted redirects (scapy, on the router's side of the TAP) for three destinations the
            // stack reaches through the router: from a link-local source that is not its router,
            // with hop limit 254, and with a target link-layer option of length 0. All dropped,
            // while the same message done right is followed.
            long invalidBefore = stack.GetCounters().Drops(StackDrop.NdpInvalid);
            string[] dest = [$"{lab.Prefix}:8::1", $"{lab.Prefix}:8::2", $"{lab.Prefix}:8::3", $"{lab.Prefix}:8::4"];
            string Redirect(string src, int hlim, string dst, string opt) =>
                $"sendp(Ether(src='{routerMac}',dst='{ourMac}')/IPv6(src='{src}',dst='{lab.HostIp}',hlim={hlim})/ICMPv6ND_Redirect(tgt='{dst}',dst='{dst}')/{opt}, iface='{lab.Dev}')\n";
            string tlla = "ICMPv6NDOptDstLLAddr(lladdr='02:00:00:00:72:99')";
            string scapy = "from scapy.all import *; conf.verb=0\n" +
                Redirect("fe80::bad", 255, dest[0], tlla) +
                Redirect(routerLl.ToString(), 254, dest[1], tlla) +
                Redirect(routerLl.ToString(), 255, dest[2], "ICMPv6NDOptDstLLAddr(len=0,lladdr='02:00:00:00:72:99')") +
                Redirect(routerLl.ToString(), 255, dest[3], tlla);
            var sent = lab.Exec(60, "/usr/bin/python3", "-c", scapy);
            Assert.True(sent.Code == 0, sent.Err);
            Thread.Sleep(1000);
            Assert.Equal(routerLl, HopOf(dest[0]));
            Assert.Equal(routerLl, HopOf(dest[1]));
            Assert.Equal(routerLl, HopOf(dest[2]));
            Assert.Equal(Ipv6Address.Parse(dest[3]), HopOf(dest[3]));
            Assert.Equal(2, iface.RedirectsAccepted);
            Assert.Equal(3, stack.GetCounters().Drops(StackDrop.NdpInvalid) - invalidBefore);
            capture.Stop();

            // On the wire, as tshark reads it: the kernel's redirect named D; echo requests to D
            // went to the router's MAC before it and to D's MAC after it.
            bool redirected = false;
            int viaRouter = 0, direct = 0, directBefore = 0;
            foreach (var row in Tshark.Fields(wire, "eth.dst", "ipv6.src", "ipv6.dst", "icmpv6.type", "icmpv6.nd.rd.target_address", "icmpv6.checksum.status"))
            {
                if (row["icmpv6.type"] == "137" && row["ipv6.src"] == routerLl.ToString() && row["icmpv6.nd.rd.target_address"] == dIp) { redirected = true; continue; }
                if (row["icmpv6.type"] != "128" || row["ipv6.dst"] != dIp) continue;
                if (row["eth.dst"] == routerMac) { if (redirected) Assert.Fail("an echo request went through the router after the redirect"); viaRouter++; }
                else if (row["eth.dst"] == dMac) { if (redirected) direct++; else directBefore++; }
            }
            Assert.True(redirected, "tshark saw no redirect from the router naming D");
            Assert.True(viaRouter >= 1, "no echo request went through the router first");
            Assert.Equal(0, directBefore);
            Assert.True(direct >= 7, $"only {direct} echo requests went straight to D");
        }
        finally
        {
            Sh.Run("ip", "netns", "del", d);
        }
    }
}
