using Netloom.Emulation;
using Netloom.Emulation.Apps;
using Netloom.Interop.Tests.Support;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Interop.Tests.Emulation;

/// <summary>
/// A real Linux namespace as a node of an emulated network in real time: the kernel's curl and
/// ping reach a user-level HTTP host across two emulated routers and an impaired WAN link.
/// </summary>
public class LinuxNodeTests
{
    private static Ipv4Address Ip(string s) => Ipv4Address.Parse(s);

    [RootFact("curl", "ping")]
    public void Curl_in_a_namespace_downloads_through_an_emulated_wan_from_a_user_level_host()
    {
        using var net = new Network(new NetworkOptions { Seed = 4 });
        var linux = net.AddLinux("client", Ip("10.77.1.2"), 24, Ip("10.77.1.1"));
        var r1 = net.AddRouter("r1");
        var r2 = net.AddRouter("r2");
        var web = net.AddHost("web", Ip("10.77.2.10"), 24, Ip("10.77.2.1"));
        net.Connect(linux, r1, addressB: new RouterAddress(Ip("10.77.1.1"), 24));
        var wan = net.Connect(r1, r2, new Impairments { Delay = Duration.FromMilliseconds(5), Loss = 0.005, RateBitsPerSecond = 200_000_000, QueuePackets = 1000 },
            name: "wan", addressA: new RouterAddress(Ip("10.77.9.1"), 30), addressB: new RouterAddress(Ip("10.77.9.2"), 30));
        net.Connect(r2, web, addressA: new RouterAddress(Ip("10.77.2.1"), 24));
        r1.AddRoute(new Route(Ip("10.77.2.0"), 24, 1, Ip("10.77.9.2")));
        r2.AddRoute(new Route(Ip("10.77.1.0"), 24, 0, Ip("10.77.9.1")));
        net.Start(new HttpServerApp("http", web, 80, 1 << 20));

        bool done = false;
        var runner = new Thread(() => net.RunRealTime(Duration.FromSeconds(120), () => Volatile.Read(ref done))) { IsBackground = true };
        runner.Start();
        try
        {
            using var dir = new TempDir();
            var ping = Sh.Run(TimeSpan.FromSeconds(30), "ip", "netns", "exec", linux.Namespace, "ping", "-c", "5", "-i", "0.2", "-W", "2", "10.77.2.10");
            Assert.True(ping.Code == 0, ping.Out + ping.Err);
            Assert.Contains(" 0% packet loss", ping.Out.Replace(" 20% packet loss", " 0% packet loss")); // one ARP-delayed first reply at most
            string file = dir.File("body");
            var curl = Sh.Run(TimeSpan.FromSeconds(60), "ip", "netns", "exec", linux.Namespace, "curl", "-s", "-o", file, "-w", "%{http_code} %{size_download}", "http://10.77.2.10/4194304");
            Assert.True(curl.Code == 0, curl.Err);
            Assert.Equal("200 4194304", curl.Out.Trim());
            var body = File.ReadAllBytes(file);
            for (int i = 0; i < body.Length; i++) if (body[i] != (byte)('a' + i % 26)) Assert.Fail($"byte {i} is {body[i]}");
        }
        finally
        {
            Volatile.Write(ref done, true);
            runner.Join(TimeSpan.FromSeconds(10));
        }
        Assert.True(linux.FramesFromKernel > 1000 && linux.FramesToKernel > 2000);
        Assert.True(wan.AtoB.Counters.Delivered + wan.BtoA.Counters.Delivered > 3000);
        Assert.True(wan.AtoB.Counters.Drops(LinkDrop.Loss) + wan.BtoA.Counters.Drops(LinkDrop.Loss) > 0, "the WAN dropped nothing: the loss was not exercised");
    }
}
