using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Tests.Sockets;

/// <summary>
/// A ring has one user at a time. A stack's owner thread sleeps on its port between polls, and
/// a port's wait syncs the ring to see whether it is ready, while other threads may be reading
/// the ring under the stack lock (netloom run's program threads poll the stack themselves): the
/// owner's syncs must hold that lock too. Unlocked, a TAP's sync read(2) frames into slots a
/// program thread was parsing (docs/ARCHITECTURE.md, Rings).
/// </summary>
public sealed class PortSharingTests
{
    private static readonly Ipv4Address IpA = Ipv4Address.Parse("10.3.7.1"), IpB = Ipv4Address.Parse("10.3.7.2");

    /// <summary>A port that counts the RX syncs made on a thread not holding the stack's lock.</summary>
    private sealed class LockWatchingPort(PortBase inner) : PortBase(inner.Name)
    {
        public Lock? StackLock;
        public int Syncs, UnlockedSyncs;
        public override Ring Tx => inner.Tx;
        public override Ring Rx => inner.Rx;
        public override void TxSync() => inner.TxSync();

        public override void RxSync()
        {
            if (StackLock is { } l)
            {
                Interlocked.Increment(ref Syncs);
                if (!l.IsHeldByCurrentThread) Interlocked.Increment(ref UnlockedSyncs);
            }
            inner.RxSync();
        }

        protected override bool Block(bool rx, long timeoutNs, bool interruptible)
        {
            Thread.Sleep(1); // no futex of its own to sleep on: short naps, so the waits sync often
            return true;
        }

        public override void Dispose() => inner.Dispose();
    }

    [Fact]
    public async Task The_owner_thread_syncs_its_port_only_under_the_stack_lock()
    {
        var (pa, pb) = PipePort.OpenPair($"share{Guid.NewGuid():N}");
        var watched = new LockWatchingPort(pa);
        using var a = new NetStack(watched, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:07:01"), Address = IpA }, new NetStackOptions { Seed = 1 });
        using var b = new NetStack(pb, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:07:02"), Address = IpB }, new NetStackOptions { Seed = 2 });
        watched.StackLock = a.Lock;

        // B sends A 1 MiB: A's owner takes frames, and sleeps on the port between them.
        using var l = a.Listen(9);
        var accept = l.AcceptAsync().AsTask();
        await using var c = await b.ConnectAsync(IpA, 9).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        await using var s = await accept.WaitAsync(TimeSpan.FromSeconds(30));
        var data = new byte[1 << 20];
        new Random(7).NextBytes(data);
        var send = Task.Run(async () => { await c.WriteAsync(data); await c.FlushAsync(); c.ShutdownSend(); });
        var got = new MemoryStream();
        var buf = new byte[65536];
        int n;
        while ((n = await s.ReadAsync(buf).AsTask().WaitAsync(TimeSpan.FromSeconds(30))) > 0) got.Write(buf, 0, n);
        await send;
        await Task.Delay(50); // a few idle sleeps too

        Assert.Equal(data, got.ToArray());
        Assert.True(watched.Syncs > 100, $"only {watched.Syncs} syncs");
        Assert.Equal(0, watched.UnlockedSyncs);
    }
}
