using System.Buffers;
using System.Text;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Tests.Sockets;

/// <summary>The .NET socket API: two stacks with owner threads over an in-process pipe, in real time.</summary>
public sealed class SocketApiTests : IDisposable
{
    private static readonly Ipv4Address IpA = Ipv4Address.Parse("10.3.0.1"), IpB = Ipv4Address.Parse("10.3.0.2");
    private readonly NetStack _a, _b;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    public SocketApiTests()
    {
        var (pa, pb) = PipePort.OpenPair($"api{Guid.NewGuid():N}");
        _a = new NetStack(pa, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:03:01"), Address = IpA }, new NetStackOptions { Seed = 1 });
        _b = new NetStack(pb, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:03:02"), Address = IpB }, new NetStackOptions { Seed = 2 });
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
    }

    private static async Task Echo(TcpListener l)
    {
        await using var c = await l.AcceptAsync();
        var buf = new byte[8192];
        int n;
        while ((n = await c.ReadAsync(buf)) > 0) await c.WriteAsync(buf.AsMemory(0, n));
        c.ShutdownSend();
        await c.FlushAsync();
    }

    [Fact]
    public async Task A_stream_echoes_a_megabyte_through_a_listener()
    {
        using var l = _b.Listen(7);
        var server = Echo(l);
        await using var c = await _a.ConnectAsync(IpB, 7).AsTask().WaitAsync(Limit);
        var data = new byte[1 << 20];
        new Random(1).NextBytes(data);
        var s = c.Stream;
        var reader = Task.Run(async () =>
        {
            var got = new MemoryStream();
            await s.CopyToAsync(got);
            return got.ToArray();
        });
        await s.WriteAsync(data);
        c.ShutdownSend();
        var echoed = await reader.WaitAsync(Limit);
        Assert.Equal(data, echoed);
        await server.WaitAsync(Limit);
    }

    [Fact]
    public async Task A_duplex_pipe_carries_lines_both_ways()
    {
        using var l = _b.Listen(8);
        var server = Task.Run(async () =>
        {
            await using var c = await l.AcceptAsync();
            var pipe = c.Pipe;
            while (true)
            {
                var r = await pipe.Input.ReadAsync();
                var buf = r.Buffer;
                while (buf.PositionOf((byte)'\n') is { } nl)
                {
                    var line = Encoding.ASCII.GetString(buf.Slice(0, nl).ToArray());
                    await pipe.Output.WriteAsync(Encoding.ASCII.GetBytes(line.ToUpperInvariant() + "\n"));
                    buf = buf.Slice(buf.GetPosition(1, nl));
                }
                pipe.Input.AdvanceTo(buf.Start, buf.End);
                if (r.IsCompleted) break;
            }
            await pipe.Output.CompleteAsync();
        });
        await using var client = await TcpConnection.ConnectAsync(_a, IpB, 8).AsTask().WaitAsync(Limit);
        await client.Pipe.Output.WriteAsync(Encoding.ASCII.GetBytes("hello\nnetloom\n"));
        await client.Pipe.Output.CompleteAsync();
        var all = new StringBuilder();
        while (true)
        {
            var r = await client.Pipe.Input.ReadAsync().AsTask().WaitAsync(Limit);
            all.Append(Encoding.ASCII.GetString(r.Buffer.ToArray()));
            client.Pipe.Input.AdvanceTo(r.Buffer.End);
            if (r.IsCompleted) break;
        }
        Assert.Equal("HELLO\nNETLOOM\n", all.ToString());
        await server.WaitAsync(Limit);
    }

    [Fact]
    public async Task Connecting_to_a_port_nobody_listens_on_throws_refused()
    {
        var e = await Assert.ThrowsAsync<TcpException>(() => _a.ConnectAsync(IpB, 9).AsTask().WaitAsync(Limit));
        Assert.Equal(TcpError.Refused, e.Error);
        Assert.Contains("refused", e.Message);
    }

    [Fact]
    public async Task A_reset_surfaces_as_an_exception_on_the_reader()
    {
        using var l = _b.Listen(10);
        var accept = l.AcceptAsync();
        await using var c = await _a.ConnectAsync(IpB, 10).AsTask().WaitAsync(Limit);
        var s = await accept.AsTask().WaitAsync(Limit);
        var read = c.ReadAsync(new byte[10]).AsTask();
        s.LingerZero = true;
        s.Dispose();
        var e = await Assert.ThrowsAsync<TcpException>(() => read.WaitAsync(Limit));
        Assert.Equal(TcpError.Reset, e.Error);
    }

    [Fact]
    public async Task Reads_can_be_cancelled()
    {
        using var l = _b.Listen(11);
        var accept = l.AcceptAsync();
        await using var c = await _a.ConnectAsync(IpB, 11).AsTask().WaitAsync(Limit);
        await using var s = await accept.AsTask().WaitAsync(Limit);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c.ReadAsync(new byte[10], cts.Token).AsTask());
        await s.WriteAsync("late"u8.ToArray());
        var buf = new byte[10];
        Assert.Equal(4, await c.ReadAsync(buf).AsTask().WaitAsync(Limit)); // the connection is still usable
    }

    [Fact]
    public async Task Many_connections_from_many_threads_each_get_their_own_bytes()
    {
        using var l = _b.Listen(12, backlog: 64);
        var servers = Task.Run(async () =>
        {
            var all = new List<Task>();
            for (int i = 0; i < 20; i++)
            {
                var c = await l.AcceptAsync();
                all.Add(Task.Run(async () =>
                {
                    await using (c)
                    {
                        var buf = new byte[4096];
                        int n;
                        while ((n = await c.ReadAsync(buf)) > 0) await c.WriteAsync(buf.AsMemory(0, n));
                        c.ShutdownSend();
                        await c.FlushAsync();
                    }
                }));
            }
            await Task.WhenAll(all);
        });
        var clients = Enumerable.Range(0, 20).Select(i => Task.Run(async () =>
        {
            await using var c = await _a.ConnectAsync(IpB, 12);
            var data = new byte[50_000 + i];
            new Random(i).NextBytes(data);
            var reading = Task.Run(async () => { var m = new MemoryStream(); await c.Stream.CopyToAsync(m); return m.ToArray(); });
            await c.WriteAsync(data);
            c.ShutdownSend();
            Assert.Equal(data, await reading);
        })).ToArray();
        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(60));
        await servers.WaitAsync(Limit);
    }

    [Fact]
    public async Task Udp_sockets_exchange_datagrams_with_their_sources()
    {
        using var server = _b.OpenUdp(53);
        using var client = _a.OpenUdp();
        var pending = server.ReceiveFromAsync(new byte[100]).AsTask();
        Assert.True(client.SendTo("query"u8, IpB, 53));
        var (n, from, port) = await pending.WaitAsync(Limit);
        Assert.Equal((5, IpA, client.LocalPort), (n, from, port));
        server.SendTo("answer"u8, from, port);
        var buf = new byte[100];
        var (m, _, _) = await client.ReceiveFromAsync(buf).AsTask().WaitAsync(Limit);
        Assert.Equal("answer", Encoding.ASCII.GetString(buf, 0, m));
    }
}

/// <summary>
/// Allocation of the awaited path. Process-wide counts are polluted by the test host's own work
/// (it serialises results on other threads), so this measures per thread: both owner threads
/// over the whole run, and on the callers' side every call up to the point it returns its
/// ValueTask (where a non-pooled await would allocate its box).
/// </summary>
public sealed class SocketAllocationTests
{
    [Fact]
    public async Task Awaited_reads_and_writes_allocate_nothing_in_steady_state()
    {
        var (pa, pb) = PipePort.OpenPair($"alloc{Guid.NewGuid():N}");
        using var a = new NetStack(pa, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:04:01"), Address = Ipv4Address.Parse("10.4.0.1") }, new NetStackOptions { Seed = 1 });
        using var b = new NetStack(pb, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:04:02"), Address = Ipv4Address.Parse("10.4.0.2") }, new NetStackOptions { Seed = 2 });
        using var l = b.Listen(7);
        var accept = l.AcceptAsync();
        await using var c = await a.ConnectAsync(Ipv4Address.Parse("10.4.0.2"), 7, new TcpSocketOptions { NoDelay = true });
        await using var s = await accept;
        s.NoDelay = true;
        long callerBytes = 0;
        var server = Task.Run(async () =>
        {
            var buf = new byte[64];
            while (true)
            {
                long t = GC.GetAllocatedBytesForCurrentThread();
                var read = s.ReadAsync(buf);
                Interlocked.Add(ref callerBytes, GC.GetAllocatedBytesForCurrentThread() - t);
                int n = await read;
                if (n == 0) break;
                t = GC.GetAllocatedBytesForCurrentThread();
                var write = s.WriteAsync(buf.AsMemory(0, n));
                Interlocked.Add(ref callerBytes, GC.GetAllocatedBytesForCurrentThread() - t);
                await write;
            }
        });
        var msg = new byte[64];
        var reply = new byte[64];
        async Task PingPong(int count)
        {
            for (int i = 0; i < count; i++)
            {
                long t = GC.GetAllocatedBytesForCurrentThread();
                var write = c.WriteAsync(msg);
                Interlocked.Add(ref callerBytes, GC.GetAllocatedBytesForCurrentThread() - t);
                await write;
                int got = 0;
                while (got < 64)
                {
                    t = GC.GetAllocatedBytesForCurrentThread();
                    var read = c.ReadAsync(reply.AsMemory(got));
                    Interlocked.Add(ref callerBytes, GC.GetAllocatedBytesForCurrentThread() - t);
                    got += await read;
                }
            }
        }
        await PingPong(3000);
        long ownerA = a.OwnerAllocatedBytes, ownerB = b.OwnerAllocatedBytes;
        Interlocked.Exchange(ref callerBytes, 0);
        await PingPong(20_000);
        long callers = Interlocked.Read(ref callerBytes);
        long owners = a.OwnerAllocatedBytes - ownerA + b.OwnerAllocatedBytes - ownerB;
        c.ShutdownSend();
        await server.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(owners < 20_000, $"owner threads allocated {owners} bytes over 20,000 round trips");
        Assert.True(callers < 20_000, $"calls allocated {callers} bytes over 20,000 round trips (80,000 calls)");
    }
}

public sealed class SocketLingerTests
{
    [Fact]
    public async Task Linger_waits_for_the_acknowledgment_then_closes_gracefully()
    {
        var (pa, pb) = PipePort.OpenPair($"linger{Guid.NewGuid():N}");
        using var a = new NetStack(pa, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:05:01"), Address = Ipv4Address.Parse("10.5.0.1") }, new NetStackOptions { Seed = 1 });
        using var b = new NetStack(pb, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:05:02"), Address = Ipv4Address.Parse("10.5.0.2") }, new NetStackOptions { Seed = 2 });
        using var l = b.Listen(7);
        var accept = l.AcceptAsync();
        var c = await a.ConnectAsync(Ipv4Address.Parse("10.5.0.2"), 7);
        await using var s = await accept;
        c.Linger = TimeSpan.FromSeconds(5);
        await c.WriteAsync(new byte[300_000]);
        var reading = Task.Run(async () => { var m = new MemoryStream(); await s.Stream.CopyToAsync(m); return m.Length; });
        await c.DisposeAsync();
        using (a.Lock.EnterScope()) Assert.Equal(0, c.Socket.SendQueued); // all acknowledged before the close
        Assert.Equal(TcpError.None, c.Socket.Error);
        Assert.Equal(300_000, await reading.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
