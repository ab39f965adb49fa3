using Netloom.Netem;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Stack.Devices;
using Netloom.Tests.Support;
using Netloom.Time;
using Netloom.Wire;
using Netloom.Wire.Capture;

namespace Netloom.Tests.Stack;

/// <summary>Two stacks over an in-process pipe (the ring path the hosts use), driven by a virtual clock.</summary>
public class PipeStackTests
{
    private static readonly Ipv4Address IpA = Ipv4Address.Parse("10.2.0.1"), IpB = Ipv4Address.Parse("10.2.0.2");

    private sealed class Pair : IDisposable
    {
        public readonly PipePort PortA, PortB;
        public readonly Interface A, B;
        public Instant Now = Instant.FromSeconds(10);

        public Pair(Func<IFrameDevice, IFrameDevice>? wrapA = null)
        {
            (PortA, PortB) = PipePort.OpenPair($"stk{Guid.NewGuid():N}");
            IFrameDevice da = new PortDevice(PortA);
            if (wrapA is not null) da = wrapA(da);
            A = new Interface(new StackOptions { Mac = MacAddress.Parse("02:00:00:00:0b:01"), Address = IpA }, da, seed: 1);
            B = new Interface(new StackOptions { Mac = MacAddress.Parse("02:00:00:00:0b:02"), Address = IpB }, new PortDevice(PortB), seed: 2);
        }

        public void Run(int rounds = 20, Duration? step = null)
        {
            for (int i = 0; i < rounds; i++)
            {
                A.Poll(Now);
                B.Poll(Now);
                Now += step ?? Duration.FromMicroseconds(5);
            }
        }

        public void Dispose()
        {
            PortA.Dispose();
            PortB.Dispose();
        }
    }

    [Fact]
    public void Udp_echo_over_a_pipe_allocates_nothing_per_packet()
    {
        using var p = new Pair();
        var server = p.B.OpenUdp(7);
        var client = p.A.OpenUdp();
        var buf = new byte[2048];
        var payload = new byte[64];
        client.SendTo(payload, IpB, 7); // resolves ARP both ways
        p.Run(40);
        while (server.TryReceive(buf, out _, out _, out _)) { }
        long echoed = 0;
        void Run(int packets)
        {
            for (int i = 0; i < packets; i++)
            {
                client.SendTo(payload, IpB, 7);
                p.A.Poll(p.Now);
                p.B.Poll(p.Now);
                while (server.TryReceive(buf, out int n, out var from, out ushort port)) server.SendTo(buf.AsSpan(0, n), from, port);
                p.B.Poll(p.Now);
                p.A.Poll(p.Now);
                while (client.TryReceive(buf, out _, out _, out _)) echoed++;
                p.Now += Duration.FromMicroseconds(1);
            }
        }
        Allocations.AssertFlat(Run, 100_000);
        Assert.True(echoed >= 100_000);
        Assert.Equal(0, p.A.Counters.TotalDrops + p.B.Counters.TotalDrops);
    }

    [Fact]
    public void A_tcp_transfer_over_a_pipe_allocates_nothing_per_segment()
    {
        using var p = new Pair();
        p.Run(1); // the stacks' clocks start at their first poll
        var listener = p.B.Listen(9);
        var client = p.A.Connect(IpB, 9);
        TcpSocket? server = null;
        for (int i = 0; i < 200 && !(client.State == TcpState.Established && listener.TryAccept(out server)); i++) p.Run(1);
        Assert.NotNull(server);
        var chunk = new byte[16384];
        var buf = new byte[65536];
        long received = 0;
        void Run(int segments)
        {
            long target = received + (long)segments * client.MaxSegmentSize;
            while (received < target)
            {
                client.Send(chunk);
                p.A.Poll(p.Now);
                p.B.Poll(p.Now);
                int n;
                while ((n = server!.Receive(buf)) > 0) received += n;
                p.Now += Duration.FromMicroseconds(20);
            }
        }
        Allocations.AssertFlat(Run, 100_000);
        Assert.Equal(0, client.Retransmits);
        Assert.True(p.A.Counters.TotalDrops + p.B.Counters.TotalDrops == 0, $"drops {string.Join(",", p.A.Counters.NonZeroDrops())} / {string.Join(",", p.B.Counters.NonZeroDrops())}");
    }

    [Fact]
    public void Zero_copy_sends_over_a_pipe_allocate_nothing_per_segment()
    {
        using var p = new Pair();
        p.Run(1);
        var listener = p.B.Listen(10);
        var client = p.A.Connect(IpB, 10);
        TcpSocket? server = null;
        for (int i = 0; i < 200 && !(client.State == TcpState.Established && listener.TryAccept(out server)); i++) p.Run(1);
        Assert.NotNull(server);
        // Eight lent buffers, each reused once its send completed.
        var buffers = Enumerable.Range(0, 8).Select(_ => (ReadOnlyMemory<byte>)new byte[16384]).ToArray();
        var busy = new bool[8];
        var buf = new byte[65536];
        long received = 0, completions = 0;
        uint next = 0;
        void Run(int segments)
        {
            long target = received + (long)segments * client.MaxSegmentSize;
            while (received < target)
            {
                while (client.TryTakeZeroCopyCompletion(out var done))
                    for (uint id = done.First; id != done.Last + 1; id++) { busy[id % 8] = false; completions++; }
                int slot = (int)(next % 8);
                if (!busy[slot] && client.SendReferenced(buffers[slot], copy: false) == 16384)
                {
                    if (client.EndZeroCopySend(copied: false) != next) throw new InvalidOperationException("send numbers skipped");
                    busy[slot] = true;
                    next++;
                }
                p.A.Poll(p.Now);
                p.B.Poll(p.Now);
                int n;
                while ((n = server!.Receive(buf)) > 0) received += n;
                p.Now += Duration.FromMicroseconds(20);
            }
        }
        Allocations.AssertFlat(Run, 100_000);
        Assert.True(completions > 1000);
        Assert.Equal(0, client.Retransmits);
    }

    [Fact]
    public void The_same_seed_gives_the_same_run()
    {
        string Trace(int seed)
        {
            using var p = new Pair(d => new ImpairedDevice(d, new Impairments { Loss = 0.2, Duplicate = 0.1 }, Impairments.None, () => Instant.Zero, seed));
            var got = new List<ushort>();
            for (ushort i = 0; i < 50; i++)
            {
                p.A.SendPing(IpB, 1, i, "x"u8);
                p.Run(10);
                while (p.A.TryTakePingReply(out var r)) got.Add(r.Sequence);
            }
            return string.Join(',', got);
        }
        Assert.Equal(Trace(7), Trace(7));
        Assert.NotEqual(Trace(7), Trace(8));
    }

    [Fact]
    public void The_capture_decorator_records_both_directions()
    {
        var ms = new MemoryStream();
        var writer = new PcapNgWriter(ms);
        using (var p = new Pair(d => new CaptureDevice(d, writer, () => Instant.FromSeconds(1), "a")))
        {
            p.A.SendPing(IpB, 1, 1, "cap"u8);
            p.Run();
            writer.Flush();
        }
        using var r = CaptureReader.Open(new MemoryStream(ms.ToArray()));
        var seen = new List<(PacketDirection, string)>();
        while (r.Read(out var pkt) == CaptureReadResult.Packet)
        {
            var d = DecodedFrame.Decode(pkt.Data);
            seen.Add((pkt.Direction, d.Has(FrameLayers.Arp) ? "arp" : d.Has(FrameLayers.Icmp) ? $"icmp{d.Icmp.Type}" : "?"));
        }
        Assert.Contains((PacketDirection.Outbound, "icmp8"), seen);
        Assert.Contains((PacketDirection.Inbound, "icmp0"), seen);
        Assert.Contains((PacketDirection.Inbound, "arp"), seen);
    }
}

public class ImpairedDeviceTests
{
    /// <summary>A device that records what reaches it and hands out what it is given.</summary>
    private sealed class Recorder : IFrameDevice
    {
        public readonly List<(byte Tag, long At)> Sent = [];
        public readonly Queue<byte[]> Incoming = new();
        private readonly byte[] _tx = new byte[1514];
        private byte[]? _rx;
        public Func<long> Clock = () => 0;
        public int MaxFrameSize => 1514;
        public bool TryReceive(out ReadOnlySpan<byte> frame) { frame = default; if (!Incoming.TryDequeue(out _rx)) return false; frame = _rx; return true; }
        public void ReleaseReceived() { }
        public Span<byte> TryAllocateTransmit(int length) => _tx.AsSpan(0, length);
        public void CommitTransmit(int length) => Sent.Add((_tx[0], Clock()));
        public void Flush() { }
    }

    private static (ImpairedDevice Device, Recorder Inner, Func<long> Now, Action<long> Advance) Make(Impairments tx, int seed = 1)
    {
        long now = 0;
        var inner = new Recorder { Clock = () => now };
        var dev = new ImpairedDevice(inner, tx, Impairments.None, () => new Instant(now), seed);
        return (dev, inner, () => now, d => now += d);
    }

    private static void Send(ImpairedDevice d, byte tag)
    {
        d.TryAllocateTransmit(60)[0] = tag;
        d.CommitTransmit(60);
    }

    [Fact]
    public void Loss_and_duplication_happen_at_about_the_configured_rates()
    {
        var (dev, inner, _, _) = Make(new Impairments { Loss = 0.1, Duplicate = 0.05 });
        for (int i = 0; i < 100_000; i++) Send(dev, 1);
        dev.Flush();
        Assert.InRange(dev.Lost, 9_000, 11_000);
        Assert.InRange(dev.Duplicated, 4_000, 5_000);
        Assert.Equal(100_000 - dev.Lost + dev.Duplicated, inner.Sent.Count);
    }

    [Fact]
    public void Delay_holds_frames_until_due_and_jitter_stays_within_its_bound()
    {
        var (dev, inner, now, advance) = Make(new Impairments { Delay = Duration.FromMilliseconds(10), Jitter = Duration.FromMilliseconds(2) });
        for (byte i = 0; i < 100; i++) Send(dev, i);
        dev.Flush();
        Assert.Empty(inner.Sent);
        Assert.InRange(dev.NextDue()!.Value.Nanoseconds, 8_000_000, 12_000_000); // no frame is due before delay - jitter
        for (int ms = 0; ms <= 12; ms++) { advance(1_000_000); dev.Flush(); }
        Assert.Equal(100, inner.Sent.Count);
        Assert.All(inner.Sent, s => Assert.InRange(s.At, 8_000_000, 13_000_000));
    }

    [Fact]
    public void A_rate_limit_spaces_frames_by_their_time_on_the_wire_as_an_emulated_link_does()
    {
        // 8 Mbit/s: a 60-byte frame takes 60 µs on the wire; its queue holds 3 frames.
        var (dev, inner, _, advance) = Make(new Impairments { RateBitsPerSecond = 8_000_000, QueuePackets = 3 });
        for (byte i = 0; i < 5; i++) Send(dev, i);
        Assert.Equal(2, dev.Dropped); // the fourth and fifth found the queue full
        for (int k = 0; k < 4; k++) { advance(60_000); dev.Flush(); }
        Assert.Equal([(0, 60_000L), (1, 120_000L), (2, 180_000L)], inner.Sent.Select(s => ((int)s.Tag, s.At)));
    }

    [Fact]
    public void The_device_and_an_emulated_link_draw_the_same_fates_from_the_same_seed()
    {
        // One engine: a NetemEngine run by hand with the device's seed admits, loses and duplicates
        // the same frames, so --impair and a topology's link mean the same thing.
        var imp = new Impairments { Loss = 0.2, Duplicate = 0.1 };
        var (dev, inner, _, _) = Make(imp, seed: 5);
        var engine = new Netloom.Netem.NetemEngine(new Random(5));
        int expected = 0;
        for (int i = 0; i < 10_000; i++)
        {
            Send(dev, 1);
            var a = engine.Admit(imp, 60);
            expected += a == Netloom.Netem.Admission.Twice ? 2 : a == Netloom.Netem.Admission.Once ? 1 : 0;
            engine.Launch(imp, new byte[60], 0);
            if (a == Netloom.Netem.Admission.Twice) engine.Launch(imp, new byte[60], 0);
        }
        Assert.Equal(expected, inner.Sent.Count);
    }

    [Fact]
    public void Reordering_lets_some_frames_overtake_the_delayed_ones()
    {
        var (dev, inner, _, advance) = Make(new Impairments { Delay = Duration.FromMilliseconds(5), Reorder = 0.25 });
        for (byte i = 0; i < 200; i++) Send(dev, i);
        advance(10_000_000);
        dev.Flush();
        var order = inner.Sent.Select(s => s.Tag).ToList();
        Assert.Equal(200, order.Count);
        Assert.NotEqual(order.OrderBy(x => x).ToList(), order);  // something overtook
        Assert.InRange(dev.Reordered, 30, 70);
    }
}
