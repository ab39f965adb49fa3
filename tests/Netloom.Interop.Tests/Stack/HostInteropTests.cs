using System.Diagnostics;
using Netloom.Interop.Tests.Support;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Interop.Tests.Stack;

/// <summary>The user-level stack on a TAP in a namespace this test makes, against the Linux kernel's own stack.</summary>
public class HostInteropTests
{
    private static string Cli => Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll");

    [RootFact("ip", "ping", "socat")]
    public void The_kernel_pings_and_talks_udp_to_netloom_host()
    {
        string ns = $"nlH{Environment.ProcessId}", dev = $"nlh{Environment.ProcessId % 100000}";
        int net = Environment.ProcessId % 200 + 30;
        string kernelIp = $"10.217.{net}.1", hostIp = $"10.217.{net}.2";
        Sh.Ok("ip", "netns", "add", ns);
        try
        {
            using var host = new Background("Ctrl-C to stop", "ip", "netns", "exec", ns, "dotnet", Cli, "host",
                "--port", $"tap:{dev}", "--ip", $"{hostIp}/24", "--serve", "udp-echo:7", "--duration", "60");
            host.WaitReady(30);
            Sh.Ok("ip", "-n", ns, "addr", "add", $"{kernelIp}/24", "dev", dev);

            // The kernel's ARP resolves the host, and 300 quick pings all come back.
            var quick = Sh.Run(TimeSpan.FromSeconds(60), "ip", "netns", "exec", ns, "ping", "-c", "300", "-i", "0.002", "-W", "1", "-q", hostIp);
            Assert.True(quick.Code == 0, quick.Out + quick.Err);
            Assert.Contains("300 received", quick.Out);
            Assert.Contains(hostIp, Sh.Ok("ip", "-n", ns, "neigh", "show", "dev", dev));

            // 4000-byte pings: fragmented by the kernel, reassembled by us; our reply fragmented and reassembled by the kernel.
            var big = Sh.Run(TimeSpan.FromSeconds(30), "ip", "netns", "exec", ns, "ping", "-c", "5", "-i", "0.2", "-s", "4000", "-W", "2", "-q", hostIp);
            Assert.True(big.Code == 0, big.Out + big.Err);
            Assert.Contains("5 received", big.Out);

            // UDP echo through socat.
            var echo = Sh.Run(TimeSpan.FromSeconds(10), "ip", "netns", "exec", ns, "sh", "-c", $"echo netloom-udp-echo | socat -t 2 - UDP:{hostIp}:7");
            Assert.Contains("netloom-udp-echo", echo.Out);

            // A closed port answers with ICMP port unreachable, which socat reports as refused.
            var refused = Sh.Run(TimeSpan.FromSeconds(10), "ip", "netns", "exec", ns, "sh", "-c", $"echo x | socat -t 1 - UDP:{hostIp}:9999; echo x | socat -t 1 - UDP:{hostIp}:9999");
            Assert.Contains("Connection refused", refused.Err + refused.Out);

            host.Stop(); // SIGINT: the host prints its counters
            Assert.Contains("icmp", host.Log);
            Assert.Contains("echoed", host.Log);
            Assert.Contains("reassembled", host.Log);
        }
        finally
        {
            Sh.Run("ip", "netns", "del", ns);
        }
    }

    [RootFact("ip")]
    public void The_stack_pings_the_kernel()
    {
        string ns = $"nlP{Environment.ProcessId}", dev = $"nlp{Environment.ProcessId % 100000}";
        int net = Environment.ProcessId % 200 + 30;
        var kernelIp = Ipv4Address.Parse($"10.218.{net}.1");
        var ourIp = Ipv4Address.Parse($"10.218.{net}.2");
        Sh.Ok("ip", "netns", "add", ns);
        try
        {
            using var port = InNamespace.Run(ns, () => Ports.Open($"tap:{dev}"));
            Sh.Ok("ip", "-n", ns, "addr", "add", $"{kernelIp}/24", "dev", dev);
            var iface = new Interface(new StackOptions { Mac = MacAddress.Parse("02:4e:4c:00:11:02"), Address = ourIp }, new PortDevice(port), seed: 5);
            var loop = new HostLoop(iface, port);
            var payload = new byte[3000]; // fragmented both ways
            int replies = 0;
            ushort sent = 0;
            var sw = Stopwatch.StartNew();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            loop.Run(cts.Token, WaitMode.Block, now =>
            {
                if (sent < 10 && sw.ElapsedMilliseconds > sent * 100) iface.SendPing(kernelIp, 0x4e4c, sent++, payload);
                while (iface.TryTakePingReply(out var r)) if (r.From == kernelIp && r.DataLength == payload.Length) replies++;
                if (replies == 10) cts.Cancel();
            });
            Assert.Equal(10, replies);
            Assert.True(iface.Counters.Reassembled >= 10);
        }
        finally
        {
            Sh.Run("ip", "netns", "del", ns);
        }
    }
}
