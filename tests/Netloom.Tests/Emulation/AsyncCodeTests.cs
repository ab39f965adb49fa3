using Netloom.Emulation;
using Netloom.Netem;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Emulation;

/// <summary>
/// Users' own async code on emulated hosts, in virtual time: the socket API a NetStack gives,
/// awaited on the emulator's single thread, deterministic, with faults injected under it.
/// </summary>
public class AsyncCodeTests
{
    private static readonly Impairments Lossy = new() { Delay = Duration.FromMilliseconds(15), Loss = 0.01, RateBitsPerSecond = 50_000_000, QueuePackets = 100 };

    /// <summary>An echo server as a service would write it: accept, copy each connection back, until cancelled.</summary>
    private static async Task EchoServer(SocketStack stack, ushort port)
    {
        using var listener = stack.Listen(port);
        while (true)
        {
            var c = await listener.AcceptAsync();
            _ = Copy(c);
        }

        static async Task Copy(TcpConnection c)
        {
            var buffer = new byte[8192];
            int n;
            while ((n = await c.ReadAsync(buffer)) > 0) await c.WriteAsync(buffer.AsMemory(0, n));
            c.ShutdownSend();
        }
    }

    /// <summary>A client: sends <paramref name="data"/>, reads the echo to the end, returns it.</summary>
    private static async Task<byte[]> EchoClient(SocketStack stack, Ipv4Address server, ushort port, byte[] data)
    {
        await using var c = await stack.ConnectAsync(server, port);
        var reading = ReadAll(c);
        for (int i = 0; i < data.Length; i += 10_000) await c.WriteAsync(data.AsMemory(i, Math.Min(10_000, data.Length - i))).ConfigureAwait(false);
        c.ShutdownSend();
        return await reading;

        static async Task<byte[]> ReadAll(TcpConnection c)
        {
            var all = new MemoryStream();
            var buffer = new byte[5000];
            int n;
            while ((n = await c.ReadAsync(buffer)) > 0) all.Write(buffer, 0, n);
            return all.ToArray();
        }
    }

    private static (Network Net, HostNode H1, HostNode H2, Link Wan) Wan(int seed) => NetworkTests.Wan(Lossy, seed) is var w ? (w.Net, w.H1, w.H2, w.Wan) : default;

    private static (byte[] Echo, long FinishedNs, long Hops, long Foreign) EchoOverWan(int seed, byte[] data)
    {
        var (net, h1, h2, _) = Wan(seed);
        _ = h2.Spawn(() => EchoServer(h2.Sockets, 7));
        var client = h1.Spawn(() => EchoClient(h1.Sockets, h2.Stack.Address, 7, data));
        Assert.True(net.RunUntil(() => client.IsCompleted, Duration.FromSeconds(120)), "the echo did not finish in 120 s of virtual time");
        return (client.Result, net.Elapsed.Nanoseconds, net.PacketHops, net.ForeignContinuations);
    }

    [Fact]
    public void An_async_echo_crosses_a_lossy_wan_byte_for_byte_in_virtual_time()
    {
        var data = new byte[1 << 20];
        new Random(9).NextBytes(data);
        var wall = System.Diagnostics.Stopwatch.StartNew();
        var (echo, finished, hops, foreign) = EchoOverWan(1, data);
        Assert.Equal(data, echo);
        Assert.Equal(0, foreign);
        // 2 MiB over a 50 Mbit/s link each way (one way each for the request and the echo) cannot take under 0.17 s of network time.
        Assert.True(finished > 170_000_000, $"finished after {finished / 1e6:F1} ms of virtual time");
        Assert.True(hops > 3 * 2 * (data.Length / 1460), $"{hops} packet-hops");
        // Virtual, not wall-clock, time passed: the test says so rather than timing it.
        Assert.NotEqual(finished, wall.Elapsed.Ticks * 100);
    }

    [Fact]
    public void The_same_seed_gives_the_same_run_and_another_seed_another()
    {
        var data = new byte[200_000];
        new Random(3).NextBytes(data);
        var a = EchoOverWan(5, data);
        var b = EchoOverWan(5, data);
        var c = EchoOverWan(6, data);
        Assert.Equal(a.FinishedNs, b.FinishedNs);
        Assert.Equal(a.Hops, b.Hops);
        Assert.True(a.FinishedNs != c.FinishedNs || a.Hops != c.Hops, "a different seed changed nothing");
    }

    [Fact]
    public void Delay_waits_on_the_virtual_clock()
    {
        var (net, h1, _, _) = Wan(1);
        var stamps = new List<long>();
        var t = h1.Spawn(async () =>
        {
            stamps.Add(net.Elapsed.Nanoseconds);
            await h1.Delay(Duration.FromMilliseconds(250));
            stamps.Add(net.Elapsed.Nanoseconds);
            await Task.Yield();
            stamps.Add(net.Elapsed.Nanoseconds);
            await h1.Delay(Duration.FromSeconds(3600));
            stamps.Add(net.Elapsed.Nanoseconds);
        });
        net.RunUntil(() => t.IsCompleted, Duration.FromSeconds(7200));
        Assert.True(t.IsCompletedSuccessfully);
        Assert.Equal([0, 250_000_000, 250_000_000, 3_600_250_000_000], stamps);
    }

    [Fact]
    public void A_refused_connection_throws_a_tcp_exception()
    {
        var (net, h1, h2, _) = Wan(1);
        var t = h1.Spawn(async () => { await h1.Sockets.ConnectAsync(h2.Stack.Address, 9999); });
        net.RunUntil(() => t.IsCompleted, Duration.FromSeconds(10));
        var e = Assert.IsType<TcpException>(t.Exception?.InnerException);
        Assert.Equal(TcpError.Refused, e.Error);
    }

    [Fact]
    public async Task A_crash_fails_what_waits_on_the_host_and_a_restart_serves_again()
    {
        var (net, h1, h2, _) = Wan(1);
        var accept = h2.Spawn(async () => { using var l = h2.Sockets.Listen(7); await l.AcceptAsync(); });
        net.Run(Duration.FromMilliseconds(10));
        net.At(Duration.FromMilliseconds(20), h2.Crash);
        net.Run(Duration.FromMilliseconds(20));
        Assert.True(accept.IsFaulted);
        Assert.Contains("crashed", accept.Exception!.InnerException!.Message);
        Assert.Throws<IOException>(() => h2.Sockets.Listen(8));

        h2.Restart();
        _ = h2.Spawn(() => EchoServer(h2.Sockets, 7));
        var data = new byte[50_000];
        var client = h1.Spawn(() => EchoClient(h1.Sockets, h2.Stack.Address, 7, data));
        Assert.True(net.RunUntil(() => client.IsCompleted, Duration.FromSeconds(60)));
        Assert.Equal(data, await client);
    }

    [Fact]
    public async Task A_link_failure_under_a_transfer_delays_it_and_it_recovers()
    {
        var (net, h1, h2, wan) = Wan(2);
        _ = h2.Spawn(() => EchoServer(h2.Sockets, 7));
        var data = new byte[400_000];
        new Random(1).NextBytes(data);
        var client = h1.Spawn(() => EchoClient(h1.Sockets, h2.Stack.Address, 7, data));
        net.At(Duration.FromMilliseconds(100), wan.Down);
        net.At(Duration.FromSeconds(3), wan.Up);
        Assert.True(net.RunUntil(() => client.IsCompleted, Duration.FromSeconds(120)));
        Assert.Equal(data, await client);
        Assert.True(net.Elapsed > Duration.FromSeconds(3));
        Assert.True(wan.AtoB.Counters.Drops(LinkDrop.Down) + wan.BtoA.Counters.Drops(LinkDrop.Down) > 0);
    }

    [Fact]
    public async Task Udp_request_and_reply()
    {
        var (net, h1, h2, _) = Wan(1);
        _ = h2.Spawn(async () =>
        {
            using var s = h2.Sockets.OpenUdp(53);
            var buffer = new byte[1500];
            while (true)
            {
                var (n, from, port) = await s.ReceiveFromAsync(buffer);
                Array.Reverse(buffer, 0, n);
                s.SendTo(buffer.AsSpan(0, n), from, port);
            }
        });
        var client = h1.Spawn(async () =>
        {
            using var s = h1.Sockets.OpenUdp();
            var got = new List<string>();
            var buffer = new byte[1500];
            foreach (var word in new[] { "emulated", "virtual", "time" })
            {
                s.SendTo(System.Text.Encoding.ASCII.GetBytes(word), h2.Stack.Address, 53);
                var (n, _, _) = await s.ReceiveFromAsync(buffer);
                got.Add(System.Text.Encoding.ASCII.GetString(buffer, 0, n));
            }
            return got;
        });
        // Loss could drop a datagram (UDP does not retry): this seed does not.
        Assert.True(net.RunUntil(() => client.IsCompleted, Duration.FromSeconds(10)));
        Assert.Equal(["detalume", "lautriv", "emit"], await client);
    }

    [Fact]
    public void Blocking_calls_say_why_they_cannot_run()
    {
        var (net, h1, h2, _) = Wan(1);
        _ = h2.Spawn(() => EchoServer(h2.Sockets, 7));
        var t = h1.Spawn(async () =>
        {
            var c = await h1.Sockets.ConnectAsync(h2.Stack.Address, 7);
            _ = c.Stream.Read(new byte[10], 0, 10);
        });
        net.RunUntil(() => t.IsCompleted, Duration.FromSeconds(10));
        var e = Assert.IsType<NotSupportedException>(t.Exception?.InnerException);
        Assert.Contains("ReadAsync", e.Message);
    }

    [Fact]
    public void Awaiting_outside_the_emulator_is_counted()
    {
        var (net, h1, _, _) = Wan(1);
        var outside = new TaskCompletionSource(); // completed by another thread, as a timer or real I/O would
        var t = h1.Spawn(async () => await outside.Task);
        net.Run(Duration.FromMilliseconds(1)); // the code starts and waits
        Assert.False(t.IsCompleted);
        var other = new Thread(() => outside.SetResult());
        other.Start();
        other.Join();
        net.Run(Duration.FromMilliseconds(1)); // the continuation posted from that thread runs here, on the host
        Assert.True(t.IsCompletedSuccessfully);
        Assert.Equal(1, net.ForeignContinuations);
    }
}
