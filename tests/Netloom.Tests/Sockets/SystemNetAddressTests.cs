using System.Net;
using System.Text;
using Netloom.Emulation;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Sockets;

/// <summary>
/// System.Net's IPAddress and IPEndPoint are accepted wherever the public API takes an address or
/// an endpoint; on a stack without IPv6, an IPv6 address is refused with an ArgumentException that says IPv6 is off.
/// </summary>
public sealed class SystemNetAddressTests : IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);
    private static readonly IPAddress IpA = IPAddress.Parse("10.4.0.1"), IpB = IPAddress.Parse("10.4.0.2");
    private readonly NetStack _a, _b;

    public SystemNetAddressTests()
    {
        var (pa, pb) = PipePort.OpenPair($"sysnet{Guid.NewGuid():N}");
        _a = new NetStack(pa, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:04:01"), Address = (Ipv4Address)IpA }, new NetStackOptions { Seed = 1 });
        _b = new NetStack(pb, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:04:02"), Address = Ipv4Address.FromIPAddress(IpB) }, new NetStackOptions { Seed = 2 });
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
    }

    [Fact]
    public void An_IPv4_address_converts_both_ways()
    {
        var a = Ipv4Address.FromIPAddress(IPAddress.Parse("192.168.1.20"));
        Assert.Equal(new Ipv4Address(192, 168, 1, 20), a);
        Assert.Equal(IPAddress.Parse("192.168.1.20"), a.ToIPAddress());
        Assert.Equal(IPAddress.Parse("10.0.0.1"), (IPAddress)new Ipv4Address(10, 0, 0, 1));
        Assert.Equal(Ipv4Address.Any, (Ipv4Address)IPAddress.Any);
        Assert.Equal(Ipv4Address.Broadcast, (Ipv4Address)IPAddress.Broadcast);
    }

    [Fact]
    public void An_IPv4_mapped_IPv6_address_counts_as_IPv4()
    {
        Assert.Equal(new Ipv4Address(10, 1, 2, 3), Ipv4Address.FromIPAddress(IPAddress.Parse("::ffff:10.1.2.3")));
    }

    [Fact]
    public void An_IPv6_address_is_refused_with_a_clear_message()
    {
        var e = Assert.Throws<ArgumentException>(() => Ipv4Address.FromIPAddress(IPAddress.IPv6Loopback));
        Assert.Contains("where an IPv4 address is needed", e.Message);
        Assert.Throws<ArgumentException>(() => (Ipv4Address)IPAddress.Parse("fe80::1"));
        Assert.Throws<ArgumentNullException>(() => Ipv4Address.FromIPAddress(null!));
    }

    [Fact]
    public async Task Tcp_listens_and_connects_by_IPEndPoint_and_reports_endpoints()
    {
        using var listener = _b.Listen(new IPEndPoint(IPAddress.Any, 7));
        var accepting = listener.AcceptAsync().AsTask();
        await using var c = await _a.ConnectAsync(new IPEndPoint(IpB, 7)).AsTask().WaitAsync(Limit);
        await using var s = await accepting.WaitAsync(Limit);

        Assert.Equal(new IPEndPoint(IpB, 7), c.RemoteEndPoint);
        Assert.Equal(new IPEndPoint(IpA, c.LocalPort), c.LocalEndPoint);
        Assert.Equal(c.LocalEndPoint, s.RemoteEndPoint);
        Assert.Equal(new IPEndPoint(IpB, 7), s.LocalEndPoint);

        await c.WriteAsync("hello"u8.ToArray());
        var buf = new byte[16];
        int n = await s.ReadAsync(buf).AsTask().WaitAsync(Limit);
        Assert.Equal("hello", Encoding.ASCII.GetString(buf, 0, n));
    }

    [Fact]
    public async Task Tcp_connects_by_IPAddress_and_through_the_static_helper()
    {
        using var listener = _b.Listen(new IPEndPoint(IpB, 8));
        var accepting = listener.AcceptAsync().AsTask();
        await using var c1 = await _a.ConnectAsync(IpB, 8).AsTask().WaitAsync(Limit);
        await using var s1 = await accepting.WaitAsync(Limit);
        accepting = listener.AcceptAsync().AsTask();
        await using var c2 = await TcpConnection.ConnectAsync(_a, new IPEndPoint(IpB, 8)).AsTask().WaitAsync(Limit);
        await using var s2 = await accepting.WaitAsync(Limit);
        Assert.Equal(IpB, c1.RemoteEndPoint.Address);
        Assert.Equal(IpB, c2.RemoteEndPoint.Address);
    }

    [Fact]
    public void Tcp_on_a_stack_without_IPv6_refuses_IPv6_peers_and_foreign_listen_addresses()
    {
        var e = Assert.Throws<ArgumentException>(() => _a.ConnectAsync(new IPEndPoint(IPAddress.IPv6Loopback, 7)));
        Assert.Contains("IPv6 is off on this stack", e.Message);
        Assert.Equal("remote", e.ParamName);
        Assert.Throws<ArgumentException>(() => _a.ConnectAsync(IPAddress.IPv6Loopback, 7));
        using (_a.Listen(new IPEndPoint(IPAddress.IPv6Any, 7))) { } // dual stack: :: takes the port on every address
        Assert.Throws<ArgumentException>(() => _a.Listen(new IPEndPoint(IPAddress.Parse("2001:db8::1"), 7)));
        var foreign = Assert.Throws<ArgumentException>(() => _a.Listen(new IPEndPoint(IpB, 7)));
        Assert.Contains("10.4.0.1", foreign.Message);
    }

    [Fact]
    public async Task Udp_sends_to_an_IPEndPoint()
    {
        using var server = _b.OpenUdp(53);
        using var client = _a.OpenUdp();
        var pending = server.ReceiveFromAsync(new byte[100]).AsTask();
        Assert.True(client.SendTo("ping"u8, new IPEndPoint(IpB, 53)));
        var (n, from, port) = await pending.WaitAsync(Limit);
        Assert.Equal(4, n);
        Assert.Equal(IpA, from.ToIPAddress());
        Assert.Equal(client.LocalPort, port);
        var e = Assert.Throws<ArgumentException>(() => client.SendTo("x"u8, new IPEndPoint(IPAddress.IPv6Loopback, 53)));
        Assert.Contains("IPv6 is off on this stack", e.Message);
    }

    [Fact]
    public async Task The_emulator_takes_System_Net_addresses_for_hosts_routers_and_routes()
    {
        using var net = new Network(new NetworkOptions { Seed = 1 });
        var h1 = net.AddHost("h1", IPAddress.Parse("10.1.0.10"), gateway: IPAddress.Parse("10.1.0.1"));
        var h2 = net.AddHost("h2", IPAddress.Parse("10.2.0.10"), gateway: IPAddress.Parse("10.2.0.1"));
        var r1 = net.AddRouter("r1");
        var r2 = net.AddRouter("r2");
        net.Connect(h1, r1, addressB: new RouterAddress(IPAddress.Parse("10.1.0.1"), 24));
        net.Connect(r1, r2, addressA: new RouterAddress(IPAddress.Parse("10.9.0.1"), 30), addressB: new RouterAddress(IPAddress.Parse("10.9.0.2"), 30));
        net.Connect(r2, h2, addressA: new RouterAddress(IPAddress.Parse("10.2.0.1"), 24));
        r1.AddRoute(new Route(IPAddress.Parse("10.2.0.0"), 24, 1, IPAddress.Parse("10.9.0.2")));
        r2.AddRoute(new Route(IPAddress.Parse("10.1.0.0"), 24, 0, IPAddress.Parse("10.9.0.1")));
        Assert.Equal(new Ipv4Address(10, 1, 0, 10), h1.Sockets.Address);

        _ = h2.Spawn(async () =>
        {
            using var l = h2.Sockets.Listen(new IPEndPoint(IPAddress.Any, 80));
            await using var s = await l.AcceptAsync();
            await s.WriteAsync("hi"u8.ToArray());
            s.ShutdownSend();
            await s.FlushAsync();
        });
        var got = h1.Spawn(async () =>
        {
            await using var c = await h1.Sockets.ConnectAsync(new IPEndPoint(IPAddress.Parse("10.2.0.10"), 80));
            var buf = new byte[8];
            int n = await c.ReadAsync(buf);
            return Encoding.ASCII.GetString(buf, 0, n);
        });
        Assert.True(net.RunUntil(() => got.IsCompleted, Duration.FromSeconds(30)));
        Assert.Equal("hi", await got);

        // The emulator's hosts and routers are IPv4 only.
        var e = Assert.Throws<ArgumentException>(() => net.AddHost("h3", IPAddress.Parse("2001:db8::1")));
        Assert.Contains("where an IPv4 address is needed", e.Message);
        Assert.Throws<ArgumentException>(() => new RouterAddress(IPAddress.IPv6Loopback, 64));
    }
}
