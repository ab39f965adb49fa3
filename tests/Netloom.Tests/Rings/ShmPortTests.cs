using System.Diagnostics;
using Netloom.Rings;
using Netloom.Tests.Support;
using Netloom.Time;

namespace Netloom.Tests.Rings;

/// <summary>Shared-memory ports between this test process and real child processes.</summary>
public class ShmPortTests
{
    private static string Unique(string name) => $"{name}{Guid.NewGuid():N}"[..24];

    private static bool WaitUntil(Func<bool> condition, int ms)
    {
        var sw = Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < ms)
        {
            if (condition()) return true;
            Thread.Sleep(5);
        }
        return condition();
    }

    /// <summary>Receives for a while and returns how many packets arrived.</summary>
    private static long Drain(IPort port, int ms)
    {
        long got = 0;
        var sw = Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < ms)
        {
            if (!port.WaitRx(Duration.FromMilliseconds(50))) continue;
            got += port.Rx.Space;
            port.Rx.Release(port.Rx.Space);
        }
        port.RxSync();
        return got;
    }

    [Fact]
    public void Packets_from_a_child_process_arrive_and_a_sigkilled_peer_is_noticed_within_a_second_then_replaced()
    {
        string name = Unique("kill");
        using var port = (ShmPort)Ports.Open($"shm:{name}");
        Assert.True(port.IsServer);
        port.WaitMode = WaitMode.Block;

        using (var child = ChildProcess.Netloom("pktgen", "--port", $"shm:{name}", "--mode", "tx", "--rate", "200000", "--duration", "30"))
        {
            Assert.True(WaitUntil(() => port.Connected, 10_000), "the child never connected: " + child.Output);
            Assert.Equal(child.Id, port.PeerPid);
            Assert.True(Drain(port, 500) > 0, "no packets from the child");
            Assert.Null(port.Failure);

            child.Kill9();
            var sw = Stopwatch.StartNew();
            Assert.True(WaitUntil(() => port.Failure is not null, 2_000));
            Assert.True(sw.ElapsedMilliseconds < 1000, $"noticed after {sw.ElapsedMilliseconds} ms");
            Assert.Contains($"peer pid {child.Id} is gone", port.Failure);
            Drain(port, 100); // what the child sent before it died is still delivered
            Assert.False(port.WaitRx(Duration.FromMilliseconds(10))); // then a wait reports the loss instead of hanging
            // A wait on the port while it has no peer sleeps like a quiet port's, so a loop of
            // waits (a stack's, a program's under netloom run) does not spin until the next peer.
            var slept = Stopwatch.StartNew();
            for (int i = 0; i < 5; i++) Assert.False(port.WaitRx(Duration.FromMilliseconds(20)));
            Assert.True(slept.ElapsedMilliseconds >= 80, $"5 waits of 20 ms on the failed port took {slept.ElapsedMilliseconds} ms");
        }

        // The survivor takes a new peer, and the rings start clean.
        using var second = ChildProcess.Netloom("pktgen", "--port", $"shm:{name}", "--mode", "tx", "--rate", "200000", "--duration", "30");
        Assert.True(WaitUntil(() => port.Connected && port.Failure is null, 10_000), "no second peer: " + second.Output);
        Assert.True(Drain(port, 500) > 0);
        Assert.Equal(0, port.Rx.Counters.Invalid);
    }

    [Fact]
    public void The_child_pktgen_names_the_lost_peer_and_exits_non_zero()
    {
        string name = Unique("lost");
        var port = Ports.Open($"shm:{name}");
        using var child = ChildProcess.Netloom("pktgen", "--port", $"shm:{name}", "--mode", "rx", "--duration", "30");
        Assert.True(WaitUntil(() => ((ShmPort)port).Connected, 10_000), child.Output);
        port.Dispose(); // the server goes away
        Assert.True(child.WaitForExit(5_000), "pktgen kept running after its peer left");
        string output = child.Output;
        Assert.True(child.ExitCode != 0 && output.Contains($"server pid {Environment.ProcessId} is gone"), $"exit {child.ExitCode}: {output}");
    }

    [Fact]
    public void A_third_process_is_told_the_name_is_in_use()
    {
        string name = Unique("busy");
        using var server = Ports.Open($"shm:{name}");
        using var client = Ports.Open($"shm:{name}");
        Assert.True(WaitUntil(() => ((ShmPort)server).Connected, 5_000));
        var e = Assert.Throws<IOException>(() => Ports.Open($"shm:{name}"));
        Assert.Contains("in use", e.Message);
        Assert.Contains(Environment.ProcessId.ToString(), e.Message);
    }

    [Fact]
    public void A_region_left_by_a_dead_process_is_reclaimed()
    {
        string name = Unique("stale");
        string path = $"/dev/shm/netloom-{name}";
        File.WriteAllBytes(path, new byte[100]); // what a crashed server leaves behind
        using (var port = (ShmPort)Ports.Open($"shm:{name}"))
        {
            Assert.True(port.IsServer);
            Assert.True(new FileInfo(path).Length > 100);
        }
        Assert.False(File.Exists(path)); // and the server removes it when done
    }

    [Fact]
    public void Both_directions_carry_data_in_order_between_two_ports()
    {
        string name = Unique("dup");
        using var a = Ports.Open($"shm:{name}");
        using var b = Ports.Open($"shm:{name}");
        Assert.True(WaitUntil(() => ((ShmPort)a).Connected, 5_000));
        foreach (var (from, to) in new[] { (a, b), (b, a) })
        {
            uint seq = 0, expected = 0;
            for (int round = 0; round < 200; round++)
            {
                RingTraffic.SendNumbered(from, ref seq, 37);
                from.TxSync();
                Assert.True(to.WaitRx(Duration.FromSeconds(5)));
                RingTraffic.ReceiveNumbered(to, ref expected, int.MaxValue);
                to.RxSync();
            }
            Assert.True(from.Flush(Duration.FromSeconds(5)));
            to.RxSync();
            Assert.Equal(seq, expected + (uint)to.Rx.Space);
        }
    }

    [Fact]
    public void A_peer_writing_garbage_into_the_rings_is_counted_or_failed_never_followed()
    {
        string name = Unique("evil");
        using var port = (ShmPort)Ports.Open($"shm:{name}", new PortOptions { RingSize = 256 });
        // A separate process completes the handshake, then scribbles over both directions'
        // indexes and slots (everything between the region header and the buffers) for a while.
        string script = $$"""
import socket, mmap, os, random, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\0netloom-shm-{{name}}")
hello = s.recv(256).decode()
path = [f.split("=",1)[1] for f in hello.split() if f.startswith("path=")][0]
s.sendall(("OK pid=%d\n" % os.getpid()).encode())
fd = os.open(path, os.O_RDWR)
m = mmap.mmap(fd, 0)
rnd = random.Random(7)
end = time.time() + 2.0
while time.time() < end:
    for _ in range(2000):
        off = rnd.randrange(4096, 4096 + 2 * (192 + 256 * 8))
        m[off] = rnd.randrange(256)
print("done", flush=True)
time.sleep(0.5)
""";
        using var evil = ChildProcess.Python(script);
        Assert.True(WaitUntil(() => port.Connected, 10_000), evil.Output);
        var sw = Stopwatch.StartNew();
        long seen = 0;
        while (sw.ElapsedMilliseconds < 2500 && port.Failure is null)
        {
            port.RxSync();
            var rx = port.Rx;
            // Every slot the port hands over points into the region's buffers with a sane length.
            for (uint h = rx.Head; h != rx.Tail; h = rx.Next(h))
            {
                Assert.True(port.Rx.Pool.IsValid(rx[h].BufferIndex));
                Assert.InRange(rx[h].Length, 1, port.Rx.Pool.BufferSize);
                Assert.True(rx.Packet(h).Length <= rx.Pool.BufferSize);
                seen++;
            }
            rx.Release(rx.Space);
            var tx = port.Tx;
            if (tx.Space > 0) { tx[tx.Head].Length = 60; tx.Release(1); }
            port.TxSync();
        }
        // Garbage ends either in a clear failure naming what was wrong, or in dropped, counted slots.
        Assert.True(port.Failure is not null || port.Rx.Counters.Invalid > 0, $"nothing noticed (seen {seen})");
        if (port.Failure is not null) Assert.Matches("peer wrote (producer|consumer) index \\d+; the ring has 256 slots|peer pid", port.Failure);
    }
}
