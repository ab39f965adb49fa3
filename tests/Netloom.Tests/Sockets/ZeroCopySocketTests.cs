using System.Collections.Concurrent;
using System.Security.Cryptography;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Tests.Sockets;

/// <summary>Zero-copy sends through the .NET socket API: two stacks with owner threads over an in-process pipe, in real time.</summary>
public sealed class ZeroCopySocketTests : IDisposable
{
    private static readonly Ipv4Address IpA = Ipv4Address.Parse("10.3.1.1"), IpB = Ipv4Address.Parse("10.3.1.2");
    private readonly NetStack _a, _b;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    public ZeroCopySocketTests()
    {
        var (pa, pb) = PipePort.OpenPair($"zc{Guid.NewGuid():N}");
        _a = new NetStack(pa, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:03:11"), Address = IpA }, new NetStackOptions { Seed = 1 });
        _b = new NetStack(pb, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:03:12"), Address = IpB }, new NetStackOptions { Seed = 2 });
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
    }

    /// <summary>An owner that poisons its buffer when the stack disposes it (as a pool would hand it to someone else).</summary>
    private sealed class PooledOwner(byte[] array, ConcurrentBag<int> released, int index) : IDisposable
    {
        public void Dispose()
        {
            array.AsSpan().Fill(0xDE);
            released.Add(index);
        }
    }

    [Fact]
    public async Task Pooled_buffers_are_returned_only_after_the_peer_has_them_and_the_stream_is_intact()
    {
        using var l = _b.Listen(9);
        var accept = l.AcceptAsync().AsTask();
        await using var c = await _a.ConnectAsync(IpB, 9).AsTask().WaitAsync(Limit);
        await using var server = await accept.WaitAsync(Limit);
        const int count = 64, size = 64 << 10;
        var buffers = new byte[count][];
        using var all = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (int i = 0; i < count; i++)
        {
            buffers[i] = new byte[size];
            new Random(i).NextBytes(buffers[i]);
            all.AppendData(buffers[i]);
        }
        var expected = all.GetHashAndReset();
        var reader = Task.Run(async () =>
        {
            using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buf = new byte[65536];
            long total = 0;
            int n;
            while ((n = await server.ReadAsync(buf)) > 0) { h.AppendData(buf, 0, n); total += n; }
            return (total, h.GetHashAndReset());
        });
        var released = new ConcurrentBag<int>();
        var completions = new List<ZeroCopyCompletion>();
        var reading = Task.Run(async () =>
        {
            long covered = 0;
            while (covered < count)
            {
                var done = await c.ReadZeroCopyCompletionAsync().AsTask().WaitAsync(Limit);
                lock (completions) completions.Add(done);
                covered += done.Count;
            }
        });
        for (int i = 0; i < count; i++)
        {
            var sent = await c.SendZeroCopyAsync(buffers[i], new PooledOwner(buffers[i], released, i)).AsTask().WaitAsync(Limit);
            Assert.Equal((uint)i, sent.Id);
            Assert.False(sent.Copied);
        }
        c.ShutdownSend();
        var (total, hash) = await reader.WaitAsync(Limit);
        await reading.WaitAsync(Limit);
        Assert.Equal((long)count * size, total);
        Assert.Equal(expected, hash); // every buffer was poisoned when released: none was released early
        Assert.Equal(count, released.Count);
        uint next = 0;
        foreach (var done in completions) { Assert.Equal(next, done.First); next = done.Last + 1; }
        Assert.Equal((uint)count, next);
    }

    [Fact]
    public async Task A_send_below_the_threshold_is_copied_and_says_so()
    {
        using var l = _b.Listen(10);
        var accept = l.AcceptAsync().AsTask();
        await using var c = await _a.ConnectAsync(IpB, 10).AsTask().WaitAsync(Limit);
        await using var server = await accept.WaitAsync(Limit);
        var small = new byte[100];
        var sent = await c.SendZeroCopyAsync(small).AsTask().WaitAsync(Limit);
        Assert.True(sent.Copied);
        var done = await c.ReadZeroCopyCompletionAsync().AsTask().WaitAsync(Limit);
        Assert.Equal(new ZeroCopyCompletion(0, 0, Copied: true), done);
        // Nothing more waits: the read waits too, until the connection is gone.
        var more = c.ReadZeroCopyCompletionAsync().AsTask();
        await Task.Delay(100);
        Assert.False(more.IsCompleted);
        c.Abort();
        await Assert.ThrowsAsync<InvalidOperationException>(() => more.WaitAsync(Limit));
    }
}
