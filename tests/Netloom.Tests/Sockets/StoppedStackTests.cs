using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Tests.Sockets;

/// <summary>
/// Sockets outlive their stack in ordinary code (a using block around a socket inside a using
/// block around the stack, disposed in the wrong order, or a stack torn down by a failure): closing
/// them afterwards must be quiet and must not touch the port the stack has already released.
/// </summary>
public sealed class StoppedStackTests
{
    private static readonly Ipv4Address IpA = Ipv4Address.Parse("10.6.0.1"), IpB = Ipv4Address.Parse("10.6.0.2");
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    private static (NetStack A, NetStack B) Pair()
    {
        var (pa, pb) = PipePort.OpenPair($"stop{Guid.NewGuid():N}");
        return (new NetStack(pa, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:06:01"), Address = IpA }, new NetStackOptions { Seed = 1 }),
                new NetStack(pb, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:06:02"), Address = IpB }, new NetStackOptions { Seed = 2 }));
    }

    [Fact]
    public void A_udp_socket_disposes_quietly_after_its_stack_stopped()
    {
        var (a, b) = Pair();
        using (b)
        {
            var u = a.OpenUdp(5353);
            a.Dispose();
            u.Dispose(); // threw ObjectDisposedException before
            u.Dispose();
            Assert.Throws<ObjectDisposedException>(() => u.SendTo("late"u8, IpB, 9));
        }
    }

    [Fact]
    public async Task Tcp_connections_and_listeners_dispose_quietly_after_their_stack_stopped()
    {
        var (a, b) = Pair();
        using (b)
        {
            var l = a.Listen(80);
            var accept = l.AcceptAsync();
            var client = await b.ConnectAsync(IpA, 80).AsTask().WaitAsync(Limit);
            var server = await accept.AsTask().WaitAsync(Limit);
            var aborted = await b.ConnectAsync(IpA, 80).AsTask().WaitAsync(Limit);
            await server.WriteAsync("unread"u8.ToArray()); // makes the peer's close a reset, which sends
            a.Dispose();
            // Graceful close (a FIN), abort (a RST) and listener close: none may reach the released port.
            server.Dispose();
            l.Dispose();
            await Assert.ThrowsAsync<ObjectDisposedException>(() => l.AcceptAsync().AsTask());
            client.Dispose();
            aborted.Abort();
            aborted.Dispose();
        }
    }

    [Fact]
    public async Task A_connection_disposed_after_its_stack_stopped_sends_nothing()
    {
        var (a, b) = Pair();
        using (b)
        {
            var l = b.Listen(81);
            var accept = l.AcceptAsync();
            var c = await a.ConnectAsync(IpB, 81).AsTask().WaitAsync(Limit);
            await using var s = await accept.AsTask().WaitAsync(Limit);
            long framesOut = a.GetCounters().FramesOut;
            a.Dispose();
            c.Dispose();
            c.Abort();
            Assert.Equal(framesOut, a.GetCounters().FramesOut);
        }
    }
}
