using Xunit.Abstractions;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Netloom.Offload;
using Netloom.Offload.Kv;

namespace Netloom.Tests.Offload;

/// <summary>Runs alone: it counts the process's descriptors and resident memory, which other tests would move.</summary>
[CollectionDefinition(nameof(UringMemoryTests), DisableParallelization = true)]
public sealed class UringMemoryCollection;

/// <summary>The io_uring engine gives back every native byte and descriptor it took.</summary>
[Collection(nameof(UringMemoryTests))]
public class UringMemoryTests(ITestOutputHelper output)
{
    private static int OpenDescriptors() => Directory.GetFiles("/proc/self/fd").Length;

    private static long ResidentBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return 0;
    }

    [Fact]
    public void Two_hundred_starts_and_stops_leave_no_native_memory_and_no_descriptors_behind()
    {
        var handler = new KvHandler();
        // One cycle first, so the runtime's own one-time descriptors and memory are not counted.
        using (var warm = new UringServer(new IPEndPoint(IPAddress.Loopback, 0), handler, 2)) warm.Start();
        GC.Collect();
        int fds = OpenDescriptors();
        long rss = ResidentBytes();
        for (int cycle = 0; cycle < 200; cycle++)
        {
            var options = new UringServerOptions { SendBundles = cycle % 2 == 1, ZeroCopyThreshold = cycle % 4 == 0 ? 0 : 16 << 10 };
            var server = new UringServer(new IPEndPoint(IPAddress.Loopback, 0), handler, 2, options);
            server.Start();
            Assert.True(server.NativeBytes > 0);
            if (cycle % 10 == 0) Assert.Equal("+PONG\r\n", UringServerTests.Ping(server.LocalEndPoint, linger: cycle % 20 == 0));
            server.Dispose();
            Assert.Null(server.Failure);
            Assert.True(server.NativeBytes == 0, $"cycle {cycle}: {server.NativeBytes} native bytes still held after Dispose");
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        int fdsAfter = OpenDescriptors();
        long rssGrowth = ResidentBytes() - rss;
        output.WriteLine($"descriptors {fds} -> {fdsAfter}, resident memory grew {rssGrowth >> 20} MiB over 200 cycles");
        Assert.True(fdsAfter <= fds + 4, $"{fdsAfter - fds} descriptors more after 200 cycles");
        Assert.True(rssGrowth < 256L << 20, $"resident memory grew {rssGrowth >> 20} MiB over 200 cycles");
    }

    /// <summary>
    /// 100,000 connections against one running server, in batches of 100 (connect, a RESP PING,
    /// +PONG, close: most with a reset, which leaves no TIME_WAIT behind, one in 32 with a FIN).
    /// Between batches the server has closed every connection, so the slots are reused and its
    /// native memory must not grow past what the first batches made.
    /// </summary>
    [Fact]
    public void A_hundred_thousand_connections_keep_native_memory_flat()
    {
        const int Total = 100_000, Batch = 100;
        var handler = new Counting(new KvHandler());
        using var server = new UringServer(new IPEndPoint(IPAddress.Loopback, 0), handler, 1);
        server.Start();
        var ep = server.LocalEndPoint;
        var sockets = new Socket[Batch];
        var buf = new byte[16];
        var clock = Stopwatch.StartNew();
        long warm = 0;
        for (int done = 0; done < Total; done += Batch)
        {
            for (int i = 0; i < Batch; i++)
            {
                sockets[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000 };
                sockets[i].Connect(ep);
            }
            foreach (var s in sockets) s.Send("*1\r\n$4\r\nPING\r\n"u8);
            for (int i = 0; i < Batch; i++)
            {
                int n = 0;
                while (n < 7) { int r = sockets[i].Receive(buf, n, 7 - n, SocketFlags.None); if (r == 0) break; n += r; }
                Assert.True(n == 7 && buf.AsSpan(0, 7).SequenceEqual("+PONG\r\n"u8), $"connection {done + i}: {n} bytes");
                if ((done + i) % 32 != 0) sockets[i].LingerState = new LingerOption(true, 0);
                sockets[i].Dispose();
            }
            long target = done + Batch;
            Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref handler.Closed) == target, 10_000), $"{Volatile.Read(ref handler.Closed)} of {target} closed");
            if (done == 10 * Batch) warm = server.NativeBytes;
            else if (done > 10 * Batch) Assert.True(server.NativeBytes <= warm, $"after {target} connections {server.NativeBytes} native bytes, {warm} after the first thousand");
        }
        output.WriteLine($"{Total} connections in {clock.Elapsed.TotalSeconds:0.0} s; native bytes {server.NativeBytes} (after 1,000: {warm})");
        Assert.Equal(Total, server.Counters.Accepted);
        server.Dispose();
        Assert.Equal(0, server.NativeBytes);
    }

    private sealed class Counting(IConnectionHandler inner) : IConnectionHandler
    {
        public long Closed;
        public void OnConnected(Connection connection) => inner.OnConnected(connection);
        public int OnData(Connection connection, ReadOnlySpan<byte> data) => inner.OnData(connection, data);
        public void OnClosed(Connection connection)
        {
            inner.OnClosed(connection);
            Interlocked.Increment(ref Closed);
        }
    }
}
