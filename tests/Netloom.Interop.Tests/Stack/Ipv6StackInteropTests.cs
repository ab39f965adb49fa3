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
}
