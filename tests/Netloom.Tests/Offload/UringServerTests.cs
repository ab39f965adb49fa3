using System.Net;
using System.Net.Sockets;
using Netloom.Offload;
using Netloom.Offload.Kv;

namespace Netloom.Tests.Offload;

/// <summary>The io_uring server's façade and loop: failures, counters, and what it holds in native memory.</summary>
public class UringServerTests
{
    [Fact]
    public void Advance_past_the_free_space_of_an_output_buffer_is_refused_with_a_message()
    {
        var b = new OutputBuffer();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => b.Advance(10)); // nothing was asked for: no free space
        Assert.Contains("GetSpan", e.Message);
        int free = b.GetSpan(16).Length;
        Assert.Throws<ArgumentOutOfRangeException>(() => b.Advance(free + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => b.Advance(-1));
        Assert.Equal(0, b.Length);
        "hello"u8.CopyTo(b.GetSpan(5));
        b.Advance(5);
        b.Advance(free - 5); // exactly to the end is allowed
        Assert.Equal(free, b.Length);
        b.Free();
    }

    [Fact]
    public void A_loop_that_fails_rethrows_from_start_with_the_stack_trace_of_its_own_thread_and_frees_what_it_made()
    {
        // io_uring_setup refuses more than 32768 entries (EINVAL): the loop's ring cannot be made.
        var options = new UringServerOptions { RingEntries = 1 << 20 };
        var server = new UringServer(new IPEndPoint(IPAddress.Loopback, 0), new KvHandler(), 2, options);
        var e = Assert.Throws<UringUnavailableException>(server.Start);
        Assert.Same(server.Failure, e);
        // The trace goes back to where the loop's thread failed, not just to Start.
        Assert.Contains(nameof(UringRing), e.StackTrace);
        Assert.Contains("CreateRing", e.StackTrace);
        server.Dispose();
        Assert.Equal(0, server.NativeBytes);
    }

    [Fact]
    public void The_sockets_engine_frees_each_connections_output_when_it_closes()
    {
        using var server = new SocketsServer(new IPEndPoint(IPAddress.Loopback, 0), new KvHandler());
        server.Start();
        for (int i = 0; i < 20; i++) Assert.Equal("+PONG\r\n", Ping(server.LocalEndPoint, linger: i % 2 == 0));
        Assert.True(SpinWait.SpinUntil(() => server.NativeBytes == 0, 5000), $"{server.NativeBytes} native bytes held after every connection closed");
    }

    [Fact]
    public void Counters_are_a_snapshot_summed_over_the_loops()
    {
        using var server = new UringServer(new IPEndPoint(IPAddress.Loopback, 0), new KvHandler(), 2);
        server.Start();
        var before = server.Counters;
        for (int i = 0; i < 4; i++) Assert.Equal("+PONG\r\n", Ping(server.LocalEndPoint, linger: false));
        Assert.True(SpinWait.SpinUntil(() => server.Counters.Accepted == 4, 5000));
        var after = server.Counters;
        Assert.Equal(0, before.Accepted);
        Assert.Equal(4, after.Accepted);
        Assert.True(after.Requests >= 4);
        Assert.True(after.Enters > 0);
        Assert.Equal(0, before.Accepted); // a snapshot does not move
    }

    [Fact]
    public unsafe void The_loop_runs_any_handler_without_the_server_here_an_echo()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        var memory = new NativeAllocator();
        var counters = new LoopCounters();
        using var stop = new CancellationTokenSource();
        UringLoop? loop = null;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                loop = new UringLoop(new Echo(), (int)listener.SafeHandle.DangerousGetHandle(), new UringServerOptions(), SendMode.Paired, counters, memory, stop.Token);
                loop.Run();
            }
            catch (Exception e) { failure = e; }
        });
        thread.Start();
        using (var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            c.Connect(listener.LocalEndPoint!);
            c.ReceiveTimeout = 5000;
            var buf = new byte[64];
            for (int i = 0; i < 10; i++)
            {
                var msg = System.Text.Encoding.ASCII.GetBytes($"echo {i}");
                c.Send(msg);
                int got = 0;
                while (got < msg.Length) got += c.Receive(buf, got, msg.Length - got, SocketFlags.None);
                Assert.Equal(msg, buf[..got]);
            }
        }
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref loop) is not null, 5000));
        stop.Cancel();
        loop!.Interrupt();
        Assert.True(thread.Join(5000));
        Assert.Null(failure);
        Assert.Equal(1, counters.Accepted);
        Assert.Equal(0, memory.LiveBytes);
        Assert.Equal(0, memory.LiveBlocks);
    }

    private sealed class Echo : IConnectionHandler
    {
        public void OnConnected(Connection connection) { }
        public int OnData(Connection connection, ReadOnlySpan<byte> data)
        {
            connection.Output.Write(data);
            return data.Length;
        }
        public void OnClosed(Connection connection) { }
    }

    internal static string Ping(IPEndPoint server, bool linger)
    {
        using var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        c.Connect(server);
        c.Send("*1\r\n$4\r\nPING\r\n"u8);
        var buf = new byte[16];
        c.ReceiveTimeout = 5000;
        int n = 0;
        while (n < 7) { int r = c.Receive(buf, n, buf.Length - n, SocketFlags.None); if (r == 0) break; n += r; }
        if (!linger) c.LingerState = new LingerOption(true, 0);
        return System.Text.Encoding.ASCII.GetString(buf, 0, n);
    }
}
