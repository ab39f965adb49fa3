using Netloom.Emulation;
using Netloom.Emulation.Apps;
using Netloom.Netem;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Emulation;

public class NetworkTests
{
    private static Ipv4Address Ip(string s) => Ipv4Address.Parse(s);

    /// <summary>h1 - s1 - h2 on one LAN.</summary>
    private static (Network Net, HostNode H1, HostNode H2) Lan(Impairments? imp = null, int seed = 1)
    {
        var net = new Network(new NetworkOptions { Seed = seed });
        var h1 = net.AddHost("h1", Ip("10.0.0.1"));
        var h2 = net.AddHost("h2", Ip("10.0.0.2"));
        var s1 = net.AddSwitch("s1");
        net.Connect(h1, s1, imp);
        net.Connect(h2, s1, imp);
        return (net, h1, h2);
    }

    /// <summary>Two LANs joined by two routers over a WAN link: h1 - r1 - r2 - h2.</summary>
    internal static (Network Net, HostNode H1, HostNode H2, RouterNode R1, RouterNode R2, Link Wan) Wan(Impairments? wan = null, int seed = 1)
    {
        var net = new Network(new NetworkOptions { Seed = seed });
        var h1 = net.AddHost("h1", Ip("10.1.0.10"), gateway: Ip("10.1.0.1"));
        var h2 = net.AddHost("h2", Ip("10.2.0.10"), gateway: Ip("10.2.0.1"));
        var r1 = net.AddRouter("r1");
        var r2 = net.AddRouter("r2");
        net.Connect(h1, r1, addressB: new RouterAddress(Ip("10.1.0.1"), 24));
        var link = net.Connect(r1, r2, wan, name: "wan", addressA: new RouterAddress(Ip("10.9.0.1"), 30), addressB: new RouterAddress(Ip("10.9.0.2"), 30));
        net.Connect(r2, h2, addressA: new RouterAddress(Ip("10.2.0.1"), 24));
        r1.AddRoute(new Route(Ip("10.2.0.0"), 24, 1, Ip("10.9.0.2")));
        r2.AddRoute(new Route(Ip("10.1.0.0"), 24, 0, Ip("10.9.0.1")));
        return (net, h1, h2, r1, r2, link);
    }

    [Fact]
    public void Ping_crosses_a_switch()
    {
        var (net, h1, h2) = Lan(new Impairments { Delay = Duration.FromMilliseconds(1) });
        var ping = net.Start(new PingApp("p", h1, h2.Stack.Address, Duration.FromMilliseconds(100), 10, 56, net.NextPingIdentifier()));
        net.Run(Duration.FromSeconds(2));
        var r = ping.Report(net.Now);
        Assert.Equal(10, r.Sent);
        Assert.Equal(10, r.Received);
        // Two links each way at 1 ms: 4 ms round trip (the first ping waits for ARP too).
        Assert.Equal(4000, r.Latency!.P50Us, 0);
        Assert.True(net.Switch("s1").Forwarded > 0);
    }

    [Fact]
    public void Bulk_transfer_through_routers_over_a_lossy_wan()
    {
        var (net, h1, h2, r1, _, wan) = Wan(new Impairments { Delay = Duration.FromMilliseconds(10), Loss = 0.01, RateBitsPerSecond = 100_000_000, QueuePackets = 200 });
        var sink = net.Start(new TcpSinkApp("sink", h2, 5001));
        var bulk = net.Start(new BulkSendApp("bulk", h1, new Endpoint(h2.Stack.Address, 5001), 4 << 20, default), Duration.FromMilliseconds(100));
        Assert.True(net.RunUntil(() => bulk.Done, Duration.FromSeconds(120)), bulk.Error ?? bulk.Socket?.Describe());
        Assert.Equal(4 << 20, sink.BytesReceived);
        Assert.True(bulk.Socket!.Retransmits > 0);
        Assert.True(wan.AtoB.Counters.Drops(LinkDrop.Loss) > 0);
        Assert.True(r1.Counters.Forwarded > 1000);
    }

    [Fact]
    public void Router_sends_time_exceeded_and_unreachable()
    {
        var (net, h1, h2, r1, r2, _) = Wan();
        var udp = h1.Stack.OpenUdp();
        net.Run(Duration.FromMilliseconds(10));
        // No route: r1 answers Destination Unreachable (net).
        udp.SendTo("x"u8, Ip("192.168.5.5"), 9);
        net.Run(Duration.FromSeconds(2));
        Assert.True(udp.TryTakeError(out var e1));
        Assert.Equal((byte)IcmpType.DestinationUnreachable, e1.Type);
        Assert.Equal(0, e1.Code);
        Assert.Equal(Ip("10.1.0.1"), e1.From);
        Assert.Equal(1, r1.Counters.NoRoute);
        // Protocol unreachable from r2's own address? UDP to a router port: the router has no UDP.
        udp.SendTo("x"u8, Ip("10.9.0.2"), 9);
        net.Run(Duration.FromSeconds(2));
        Assert.True(udp.TryTakeError(out var e2));
        Assert.Equal((byte)IcmpType.DestinationUnreachable, e2.Type);
        Assert.Equal((byte)UnreachableCode.Protocol, e2.Code);
        Assert.Equal(Ip("10.9.0.2"), e2.From);
        // Host unreachable: nobody answers ARP for 10.2.0.99 behind r2.
        udp.SendTo("x"u8, Ip("10.2.0.99"), 9);
        net.Run(Duration.FromSeconds(5));
        Assert.True(udp.TryTakeError(out var e3));
        Assert.Equal((byte)UnreachableCode.Host, e3.Code);
        Assert.Equal(1, r2.Counters.HostUnreachable);
    }
}
