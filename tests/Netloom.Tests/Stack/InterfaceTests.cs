using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Stack;

/// <summary>Two user-level hosts on a virtual wire with a virtual clock: every run is the same.</summary>
public class InterfaceTests
{
    private static readonly Ipv4Address IpA = Ipv4Address.Parse("10.1.0.1"), IpB = Ipv4Address.Parse("10.1.0.2");
    private static readonly MacAddress MacA = MacAddress.Parse("02:00:00:00:0a:01"), MacB = MacAddress.Parse("02:00:00:00:0a:02");

    private sealed class Pair
    {
        public readonly VirtualWire Wire = new();
        public readonly Interface A, B;
        public Instant Now = Instant.FromSeconds(100);

        public Pair(Func<StackOptions, StackOptions>? tweak = null)
        {
            tweak ??= o => o;
            A = new Interface(tweak(new StackOptions { Mac = MacA, Address = IpA }), Wire.A, seed: 1);
            B = new Interface(tweak(new StackOptions { Mac = MacB, Address = IpB }), Wire.B, seed: 2);
        }

        /// <summary>Resolves each side's address at the other, as a ping would.</summary>
        public void Resolve()
        {
            Run();
            A.SendPing(IpB, 0, 0, default);
            B.SendPing(IpA, 0, 0, default);
            Run();
            while (A.TryTakePingReply(out _) || B.TryTakePingReply(out _)) { }
        }

        /// <summary>Polls both until nothing moves, advancing time by <paramref name="step"/> each round.</summary>
        public void Run(Duration? step = null, int rounds = 50)
        {
            for (int i = 0; i < rounds; i++)
            {
                int moved = A.Poll(Now) + B.Poll(Now);
                Now += step ?? Duration.FromMicroseconds(10);
                // Quiet only when nothing moved, nothing is in flight and no timer is pending.
                if (moved == 0 && Wire.A.Inbox.Count == 0 && Wire.B.Inbox.Count == 0 && A.PollAt() is null && B.PollAt() is null) break;
            }
        }
    }

    [Fact]
    public void Ping_resolves_the_neighbour_then_gets_a_reply()
    {
        var p = new Pair();
        p.Run();
        Assert.True(p.A.SendPing(IpB, 7, 1, "hello"u8));
        p.Run();
        Assert.True(p.A.TryTakePingReply(out var reply));
        Assert.Equal(new PingReply(IpB, 7, 1, 5, reply.Received), reply);
        Assert.True(p.B.Counters.ArpOut >= 1); // B answered A's request (and announced itself)
        Assert.Equal(0, p.A.Counters.TotalDrops + p.B.Counters.TotalDrops);
    }

    [Fact]
    public void Each_interface_announces_itself_with_a_gratuitous_arp_first()
    {
        var p = new Pair();
        p.A.Poll(p.Now);
        Assert.True(p.Wire.B.Inbox.TryPeek(out var frame));
        var d = DecodedFrame.Decode(frame);
        Assert.True(d.Has(FrameLayers.Arp));
        Assert.Equal(IpA, d.Arp.SenderIp);
        Assert.Equal(IpA, d.Arp.TargetIp);
        Assert.True(d.Ethernet.Destination.IsBroadcast);
    }

    [Fact]
    public void Udp_datagrams_carry_their_source_both_ways()
    {
        var p = new Pair();
        var server = p.B.OpenUdp(7);
        var client = p.A.OpenUdp();
        Assert.InRange(client.LocalPort, Interface.EphemeralFirst, (ushort)65535);
        Assert.True(client.SendTo("ping"u8, IpB, 7));
        p.Run();
        var buf = new byte[100];
        Assert.True(server.TryReceive(buf, out int n, out var from, out ushort port));
        Assert.Equal("ping"u8.ToArray(), buf[..n]);
        Assert.Equal((IpA, client.LocalPort), (from, port));
        Assert.True(server.SendTo(buf.AsSpan(0, n), from, port));
        p.Run();
        Assert.True(client.TryReceive(buf, out n, out from, out port));
        Assert.Equal((IpB, (ushort)7), (from, port));
    }

    [Fact]
    public void Large_datagrams_are_fragmented_and_reassembled_both_ways()
    {
        var p = new Pair();
        var data = new byte[4000];
        new Random(4).NextBytes(data);
        Assert.True(p.A.SendPing(IpB, 1, 1, data));
        p.Run();
        Assert.True(p.A.TryTakePingReply(out var reply));
        Assert.Equal(4000, reply.DataLength);
        Assert.Equal(3, p.A.Counters.FragmentsOut);
        Assert.Equal(1, p.B.Counters.Reassembled);
        Assert.Equal(1, p.A.Counters.Reassembled);

        var server = p.B.OpenUdp(9);
        var client = p.A.OpenUdp();
        var big = new byte[20_000];
        new Random(5).NextBytes(big);
        Assert.True(client.SendTo(big, IpB, 9));
        p.Run();
        var got = new byte[65536];
        Assert.True(server.TryReceive(got, out int n, out _, out _));
        Assert.Equal(big, got[..n]);
    }

    [Fact]
    public void The_largest_udp_datagram_crosses_after_small_ones()
    {
        // 65507 bytes is UDP's most: 65535 less the IPv4 and UDP headers. Reassembly once refused it (it allowed 60 bytes of header, not the 20 sent).
        // The send scratch starts at the MTU and grows for the first large message; reassembly buffers are made on first use.
        var p = new Pair();
        var server = p.B.OpenUdp(9);
        var client = p.A.OpenUdp();
        var got = new byte[65536];
        foreach (int size in new[] { 100, 1472, 1473, 65507, 3000 })
        {
            var data = new byte[size];
            new Random(size).NextBytes(data);
            Assert.True(client.SendTo(data, IpB, 9));
            p.Run();
            Assert.True(server.TryReceive(got, out int n, out _, out _), $"{size} bytes did not arrive (reassembly overlaps dropped: {p.B.Counters.Drops(StackDrop.ReassemblyOverlap)})");
            Assert.Equal(data, got[..n]);
        }
        Assert.Equal(3, p.B.Counters.Reassembled); // 1473, 65507 and 3000 bytes came in fragments
    }

    [Fact]
    public void An_idle_stack_holds_no_datagram_sized_buffers()
    {
        // Scratch, reassembly and ARP-queue memory comes when it is used: an emulator with a thousand hosts pays for what they do.
        long before = GC.GetAllocatedBytesForCurrentThread();
        var stack = new Interface(new StackOptions { Mac = MacA, Address = IpA }, new VirtualWire().A, seed: 1);
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(bytes < 200_000, $"a new stack allocated {bytes:N0} bytes");
        GC.KeepAlive(stack);
    }

    [Fact]
    public void A_closed_port_answers_port_unreachable_and_the_sender_socket_gets_the_error()
    {
        var p = new Pair();
        var client = p.A.OpenUdp();
        client.SendTo("x"u8, IpB, 4444);
        p.Run();
        Assert.Equal(1, p.B.Counters.Drops(StackDrop.ClosedPort));
        Assert.True(client.TryTakeError(out var e));
        Assert.Equal(new IcmpError((byte)IcmpType.DestinationUnreachable, (byte)UnreachableCode.Port, IpB, IpB, 4444), e);
    }

    [Fact]
    public void An_address_that_never_answers_drops_its_waiting_packets_after_the_retries()
    {
        var p = new Pair();
        var nobody = Ipv4Address.Parse("10.1.0.99");
        for (ushort i = 0; i < 3; i++) p.A.SendPing(nobody, 1, i, "x"u8);
        p.Run(step: Duration.FromMilliseconds(200), rounds: 40);
        Assert.Equal(3, p.A.Counters.Drops(StackDrop.ArpTimeout));
        Assert.Null(p.A.PollAt()); // nothing left to do
    }

    [Fact]
    public void A_destination_off_the_subnet_without_a_gateway_has_no_route()
    {
        var p = new Pair();
        Assert.False(p.A.SendPing(Ipv4Address.Parse("192.0.2.1"), 1, 1, "x"u8));
        Assert.Equal(1, p.A.Counters.Drops(StackDrop.NoRoute));
    }

    [Fact]
    public void Off_subnet_traffic_goes_to_the_gateways_mac()
    {
        var p = new Pair(o => o with { Gateway = o.Address == IpA ? IpB : null });
        p.Run();
        p.A.SendPing(Ipv4Address.Parse("192.0.2.1"), 1, 1, "x"u8);
        p.Run();
        // B is A's gateway: it got the echo request (not for it, so it drops it: Stack I does not forward).
        Assert.Equal(1, p.B.Counters.Drops(StackDrop.NotForUs));
    }

    [Fact]
    public void Overlapping_fragments_drop_the_whole_datagram_and_a_duplicate_only_itself()
    {
        var p = new Pair();
        p.Run();
        byte[] Frag(int offset8, bool more, int len, ushort id)
        {
            var f = new byte[14 + 20 + len];
            new EthernetRepr(MacA, MacB, EtherType.Ipv4).Emit(f);
            new Ipv4Repr(IpA, IpB, IpProtocol.Udp, len) { Identification = id, FragmentOffset = (ushort)offset8, MoreFragments = more }.Emit(f.AsSpan(14));
            return f;
        }
        p.Wire.B.Inject(Frag(0, true, 16, 1));
        p.Wire.B.Inject(Frag(1, true, 16, 1)); // bytes 8..24 overlap 0..16
        p.Run();
        Assert.Equal(1, p.B.Counters.Drops(StackDrop.ReassemblyOverlap));
        Assert.Equal(0, p.B.ReassembliesInProgress);

        p.Wire.B.Inject(Frag(0, true, 16, 2));
        p.Wire.B.Inject(Frag(0, true, 16, 2)); // the same fragment again
        p.Run();
        Assert.Equal(1, p.B.Counters.Drops(StackDrop.ReassemblyOverlap));
        Assert.Equal(1, p.B.ReassembliesInProgress);
        p.Run(step: Duration.FromSeconds(5), rounds: 10); // then it times out
        Assert.Equal(1, p.B.Counters.Drops(StackDrop.ReassemblyTimeout));
        Assert.Equal(0, p.B.ReassembliesInProgress);
    }

    [Fact]
    public void A_flood_of_incomplete_datagrams_keeps_memory_bounded_and_ping_answered()
    {
        var p = new Pair();
        p.Run();
        var rng = new Random(11);
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            var src = new Ipv4Address((uint)(0x0A010000 | rng.Next(3, 60000)));
            var f = new byte[14 + 20 + 1000];
            new EthernetRepr(MacA, MacB, EtherType.Ipv4).Emit(f);
            new Ipv4Repr(src, IpB, IpProtocol.Udp, 1000) { Identification = (ushort)i, MoreFragments = true }.Emit(f.AsSpan(14));
            p.Wire.B.Inject(f);
            if (i % 500 == 0)
            {
                p.A.SendPing(IpB, 9, (ushort)i, new byte[3000]); // a fragmented ping mixed into the flood
            }
            if (i % 100 == 0) p.Run(rounds: 3);
        }
        p.Run();
        Assert.True(p.B.ReassemblyBytesHeld <= p.B.Options.ReassemblyBytes);
        Assert.True(p.B.ReassembliesInProgress <= p.B.Options.ReassemblySlots);
        int replies = 0;
        while (p.A.TryTakePingReply(out _)) replies++;
        Assert.Equal(20, replies); // every fragmented ping was still reassembled and answered
        Assert.True(p.B.Counters.Drops(StackDrop.ReassemblyFull) > 5000);
    }

    [Fact]
    public void Icmp_errors_are_rate_limited()
    {
        var p = new Pair(o => o with { IcmpErrorsPerSecond = 10 });
        p.Resolve();
        var client = p.A.OpenUdp();
        for (int i = 0; i < 100; i++) client.SendTo("x"u8, IpB, 5000);
        p.Run();
        Assert.Equal(100, p.B.Counters.Drops(StackDrop.ClosedPort));
        Assert.Equal(90, p.B.Counters.Drops(StackDrop.IcmpRateLimited));
    }

    [Fact]
    public void A_full_socket_queue_drops_and_counts()
    {
        var p = new Pair();
        p.Resolve();
        var server = p.B.OpenUdp(7, receiveCount: 4);
        var client = p.A.OpenUdp();
        for (int i = 0; i < 10; i++) client.SendTo("x"u8, IpB, 7);
        p.Run();
        Assert.Equal(4, server.QueuedDatagrams);
        Assert.Equal(6, p.B.Counters.Drops(StackDrop.SocketQueueFull));
    }

    [Fact]
    public void Garbage_frames_are_dropped_and_counted_and_traffic_goes_on()
    {
        var p = new Pair();
        p.Run();
        var rng = new Random(12);
        foreach (var hex in Wire.GoldenFrameTests.All)
        {
            var good = Convert.FromHexString(hex);
            for (int i = 0; i < 2000; i++)
            {
                var f = (byte[])good.Clone();
                MacB.Write(f); // addressed to B so it is looked at
                for (int k = 0; k < 3; k++) f[rng.Next(14, f.Length)] = (byte)rng.Next(256);
                p.Wire.B.Inject(f[..rng.Next(1, f.Length + 1)]);
            }
            p.Run(rounds: 200);
        }
        Assert.True(p.B.Counters.TotalDrops > 0);
        p.A.SendPing(IpB, 3, 3, "still there"u8);
        p.Run();
        Assert.True(p.A.TryTakePingReply(out _));
    }
}
