using Netloom.Rings;
using Netloom.Switching;
using Netloom.Tests.Support;
using Netloom.Time;
using Netloom.Wire;
using Netloom.Wire.Capture;

namespace Netloom.Tests.Switching;

/// <summary>A switch over pipe ports; each test holds the far ends ("hosts") and talks through them.</summary>
public class SwitchTests
{
    private static MacAddress Mac(int i) => MacAddress.FromUInt64(0x0200_0000_0000UL | (uint)i);
    private static readonly Instant T0 = Instant.FromSeconds(1000);

    private sealed class Lab : IDisposable
    {
        public readonly Switch Switch;
        public readonly List<PipePort> Hosts = [];
        public readonly PacketPool? Shared;

        public Lab(int ports, bool sharedPool = false, int ringSize = 64, ILookup? lookup = null)
        {
            Switch = new Switch(lookup, batch: 64);
            if (sharedPool) Shared = new PacketPool(ports * 4 * ringSize + 1);
            var options = new PortOptions { RingSize = ringSize, SharedPool = Shared };
            string tag = Guid.NewGuid().ToString("N")[..12];
            for (int i = 0; i < ports; i++)
            {
                var (host, sw) = PipePort.OpenPair($"sw{tag}-{i}", options);
                Hosts.Add(host);
                Switch.AddPort(sw, $"p{i}");
            }
        }

        /// <summary>Host <paramref name="from"/> sends a frame; returns its sequence tag.</summary>
        public void Send(int from, MacAddress dst, MacAddress src, byte tag = 0, int length = 64)
        {
            var h = Hosts[from];
            var tx = h.Tx;
            var buf = tx.Buffer(tx.Head);
            buf[..length].Clear();
            dst.Write(buf);
            src.Write(buf[6..]);
            buf[12] = 0x88; buf[13] = 0xb5; // local experimental ethertype
            buf[14] = tag;
            tx[tx.Head].Length = (ushort)length;
            tx.Release(1);
            h.TxSync();
        }

        /// <summary>Lets the switch learn that <paramref name="mac"/> lives behind port <paramref name="port"/>; every host's inbox is left empty.</summary>
        public void Teach(int port, MacAddress mac)
        {
            Send(port, MacAddress.Broadcast, mac);
            Switch.Forward(T0);
            for (int i = 0; i < Hosts.Count; i++) if (i != port) Received(i);
        }

        /// <summary>What host <paramref name="at"/> has received: each frame's tag.</summary>
        public List<byte> Received(int at)
        {
            var h = Hosts[at];
            h.RxSync();
            var tags = new List<byte>();
            var rx = h.Rx;
            for (uint s = rx.Head; s != rx.Tail; s = rx.Next(s)) tags.Add(rx.Packet(s)[14]);
            rx.Release(rx.Space);
            h.RxSync();
            return tags;
        }

        public void Dispose()
        {
            foreach (var h in Hosts) h.Dispose();
            Switch.Dispose();
            Shared?.Dispose();
        }
    }

    [Fact]
    public void Unknown_unicast_floods_then_learned_stations_get_unicast()
    {
        using var lab = new Lab(4);
        lab.Send(0, Mac(2), Mac(0), tag: 1);          // nobody knows Mac(2) yet
        lab.Switch.Forward(T0);
        Assert.Equal([1], lab.Received(1));
        Assert.Equal([1], lab.Received(2));
        Assert.Equal([1], lab.Received(3));
        Assert.Empty(lab.Received(0));                // never back out of the source port

        lab.Send(2, Mac(0), Mac(2), tag: 2);          // the switch learned Mac(0) on port 0
        lab.Switch.Forward(T0);
        Assert.Equal([2], lab.Received(0));
        Assert.Empty(lab.Received(1));
        Assert.Empty(lab.Received(3));

        lab.Send(0, Mac(2), Mac(0), tag: 3);          // and Mac(2) on port 2
        lab.Switch.Forward(T0);
        Assert.Equal([3], lab.Received(2));
        Assert.Empty(lab.Received(1));
        Assert.Equal(1, lab.Switch.Counters(1).Flooded);
    }

    [Fact]
    public void Broadcast_and_multicast_are_flooded_and_never_learned()
    {
        using var lab = new Lab(3);
        lab.Send(0, MacAddress.Broadcast, Mac(0), tag: 1);
        lab.Send(0, MacAddress.Parse("01:00:5e:00:00:fb"), Mac(0), tag: 2);
        lab.Switch.Forward(T0);
        Assert.Equal([1, 2], lab.Received(1));
        Assert.Equal([1, 2], lab.Received(2));
        // A frame claiming a multicast source teaches nothing.
        lab.Send(1, Mac(9), MacAddress.Parse("01:00:5e:00:00:01"), tag: 3);
        lab.Switch.Forward(T0);
        Assert.Equal(ILookup.Flood, lab.Switch.Lookup.Lookup(MacAddress.Parse("01:00:5e:00:00:01"), T0));
    }

    [Fact]
    public void Frames_keep_their_order_through_mixed_unicast_and_flood()
    {
        using var lab = new Lab(3);
        lab.Send(1, Mac(0), Mac(1), tag: 0);          // teach Mac(1) on port 1 (flooded: Mac(0) is unknown)
        lab.Switch.Forward(T0);
        lab.Received(0);
        lab.Received(2);
        for (byte t = 1; t <= 30; t++) lab.Send(0, t % 3 == 0 ? MacAddress.Broadcast : Mac(1), Mac(0), tag: t);
        lab.Switch.Forward(T0);
        Assert.Equal(Enumerable.Range(1, 30).Select(i => (byte)i), lab.Received(1));
        Assert.Equal(Enumerable.Range(1, 30).Where(i => i % 3 == 0).Select(i => (byte)i), lab.Received(2));
    }

    [Fact]
    public void Frames_for_the_segment_they_came_from_and_runts_are_dropped_and_counted()
    {
        using var lab = new Lab(2);
        lab.Send(0, Mac(5), Mac(5), tag: 1);          // learns Mac(5) on port 0, then targets port 0
        lab.Send(0, Mac(1), Mac(0), tag: 2, length: 10);
        lab.Switch.Forward(T0);
        Assert.Empty(lab.Received(1));
        Assert.Equal(1, lab.Switch.Counters(0).Drops(DropReason.SameSegment));
        Assert.Equal(1, lab.Switch.Counters(0).Drops(DropReason.TooShort));
    }

    [Fact]
    public void Slots_with_an_impossible_length_or_buffer_are_dropped_and_counted_not_followed()
    {
        // A port whose ring lives in shared memory can hand the switch anything: here the
        // switch's own RX slots are overwritten between the pipe's sync and the forwarding pass.
        using var lab = new Lab(2);
        lab.Teach(1, Mac(1));
        for (byte t = 0; t < 3; t++) lab.Send(0, Mac(1), Mac(0), tag: t);
        var port = lab.Switch.Port(0);
        port.RxSync();
        var rx = port.Rx;
        uint s1 = rx.Next(rx.Head), s2 = rx.Next(s1);
        uint goodBuffer = rx[s1].BufferIndex;
        rx[s1].BufferIndex = (uint)rx.Pool.Count + 5; // past the pool
        rx[s2].Length = 60000;                       // longer than any buffer
        lab.Switch.Forward(T0);
        Assert.Equal([0], lab.Received(1));
        Assert.Equal(2, lab.Switch.Counters(0).Drops(DropReason.Invalid));
        rx[s1].BufferIndex = goodBuffer; // give the pipe its buffer back
    }

    [Fact]
    public void Learning_inside_a_batch_takes_effect_for_the_very_next_frame()
    {
        using var lab = new Lab(2);
        lab.Send(0, Mac(1), Mac(0), tag: 1); // Mac(1) unknown: flooded to port 1
        lab.Send(0, Mac(0), Mac(1), tag: 2); // Mac(1) now lives on port 0; Mac(0) too: same segment
        lab.Send(0, Mac(1), Mac(0), tag: 3); // the same bytes as frame 1, but now for port 0: dropped
        lab.Send(0, Mac(1), Mac(0), tag: 4); // the same again, straight after: the same answer
        lab.Switch.Forward(T0);              // one batch
        Assert.Equal([1], lab.Received(1));
        Assert.Equal(3, lab.Switch.Counters(0).Drops(DropReason.SameSegment));
    }

    [Fact]
    public void A_frame_longer_than_the_output_ports_buffers_is_dropped_and_counted()
    {
        using var sw = new Switch();
        string tag = Guid.NewGuid().ToString("N")[..12];
        var (bigHost, bigSw) = PipePort.OpenPair($"swbig{tag}", new PortOptions { RingSize = 16, BufferSize = 4096 });
        var (smallHost, smallSw) = PipePort.OpenPair($"swsmall{tag}", new PortOptions { RingSize = 16, BufferSize = 2048 });
        using (bigHost)
        using (smallHost)
        {
            sw.AddPort(bigSw);
            sw.AddPort(smallSw);
            foreach (int length in new[] { 3000, 1500 })
            {
                var tx = bigHost.Tx;
                var buf = tx.Buffer(tx.Head);
                MacAddress.Broadcast.Write(buf);
                Mac(9).Write(buf[6..]);
                tx[tx.Head].Length = (ushort)length;
                tx.Release(1);
            }
            bigHost.TxSync();
            sw.Forward(T0);
            smallHost.RxSync();
            Assert.Equal(1, smallHost.Rx.Space);
            Assert.Equal(1500, smallHost.Rx[smallHost.Rx.Head].Length);
            Assert.Equal(1, sw.Counters(1).Drops(DropReason.TooLong));
        }
    }

    [Fact]
    public void A_port_that_stops_reading_drops_and_counts_while_the_others_keep_flowing()
    {
        using var lab = new Lab(3, ringSize: 16);
        // Host 2 never reads: its pipe fills, then the switch's TX ring to it fills.
        int delivered = 0;
        for (int round = 0; round < 20; round++)
        {
            for (int i = 0; i < 8; i++) lab.Send(0, MacAddress.Broadcast, Mac(0), tag: (byte)round);
            lab.Switch.Forward(T0);
            delivered += lab.Received(1).Count;
        }
        Assert.Equal(160, delivered);
        Assert.True(lab.Switch.Counters(2).Drops(DropReason.TxRingFull) > 100);
        Assert.Equal(0, lab.Switch.Counters(1).TotalDrops);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Ports_sharing_a_pool_forward_by_swapping_buffers_others_copy(bool shared)
    {
        using var lab = new Lab(2, sharedPool: shared);
        lab.Teach(1, Mac(1));
        for (byte t = 0; t < 50; t++) lab.Send(0, Mac(1), Mac(0), tag: t);
        lab.Switch.Forward(T0);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (byte)i), lab.Received(1));
        Assert.Equal(shared ? 50 : 0, lab.Switch.Counters(1).ZeroCopy);
    }

    [Fact]
    public void A_batch_for_one_port_that_only_partly_fits_sends_its_first_frames_in_order_and_counts_the_rest()
    {
        using var lab = new Lab(2, sharedPool: true, ringSize: 16);
        lab.Teach(1, Mac(1));
        byte tag = 0;
        for (int round = 0; round < 4; round++) // host 1 does not read: its pipe, then the switch's ring to it, fill up
        {
            for (int i = 0; i < 12; i++) lab.Send(0, Mac(1), Mac(0), tag: tag++);
            lab.Switch.Forward(T0);
        }
        var got = new List<byte>();
        for (int i = 0; i < 3; i++) { got.AddRange(lab.Received(1)); lab.Switch.Forward(T0); }
        var c = lab.Switch.Counters(1);
        Assert.Equal(Enumerable.Range(0, got.Count).Select(i => (byte)i), got); // a prefix, in order
        Assert.Equal(got.Count, c.TxPackets);
        Assert.Equal(c.TxPackets, c.ZeroCopy);
        Assert.True(c.Drops(DropReason.TxRingFull) > 0);
        Assert.Equal(48, c.TxPackets + c.Drops(DropReason.TxRingFull));
    }

    [Fact]
    public void Frames_handed_straight_to_a_pipe_never_overtake_frames_waiting_in_its_tx_ring()
    {
        using var lab = new Lab(2, sharedPool: true, ringSize: 16);
        lab.Teach(1, Mac(1));
        byte tag = 0;
        void Round(int frames)
        {
            for (int i = 0; i < frames; i++) lab.Send(0, Mac(1), Mac(0), tag: tag++);
            lab.Switch.Forward(T0);
        }
        Round(15);                      // straight into host 1's RX ring, which is then full
        Round(10);                      // these wait in the switch's TX ring to host 1
        var got = lab.Received(1);      // host 1 makes room...
        Round(5);                       // ...and these must queue behind the waiting ten
        for (int i = 0; i < 3; i++) { got.AddRange(lab.Received(1)); lab.Switch.Forward(T0); }
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (byte)i), got);
        Assert.Equal(30, lab.Switch.Counters(1).ZeroCopy);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Capture_records_each_watched_port_both_ways(bool sharedPool)
    {
        using var lab = new Lab(2, sharedPool);
        var ms = new MemoryStream();
        lab.Switch.Capture(new PcapNgWriter(ms), 0, 1);
        lab.Send(0, MacAddress.Broadcast, Mac(0), tag: 7);
        lab.Switch.Forward(T0);
        lab.Received(1);
        lab.Send(1, Mac(0), Mac(1), tag: 8);  // a batch all for one port: the straight run
        lab.Send(1, Mac(0), Mac(1), tag: 9);
        lab.Switch.Forward(T0);
        Assert.Equal([8, 9], lab.Received(0));
        lab.Switch.Dispose(); // flushes the capture
        using var r = CaptureReader.Open(new MemoryStream(ms.ToArray()));
        var seen = new List<(int, PacketDirection, byte)>();
        while (r.Read(out var p) == CaptureReadResult.Packet) seen.Add((p.InterfaceId, p.Direction, p.Data[14]));
        Assert.Equal([(0, PacketDirection.Inbound, 7), (1, PacketDirection.Outbound, 7),
            (1, PacketDirection.Inbound, 8), (1, PacketDirection.Inbound, 9), (0, PacketDirection.Outbound, 8), (0, PacketDirection.Outbound, 9)], seen);
    }

    [Fact]
    public void Capture_keeps_runts_the_switch_drops()
    {
        using var lab = new Lab(2);
        var ms = new MemoryStream();
        lab.Switch.Capture(new PcapNgWriter(ms), 0);
        lab.Send(0, Mac(1), Mac(0), length: 10);
        lab.Switch.Forward(T0);
        lab.Switch.Dispose();
        using var r = CaptureReader.Open(new MemoryStream(ms.ToArray()));
        Assert.Equal(CaptureReadResult.Packet, r.Read(out var p));
        Assert.Equal(10, p.Data.Length);
        Assert.Equal(PacketDirection.Inbound, p.Direction);
        Assert.Equal(1, lab.Switch.Counters(0).Drops(DropReason.TooShort));
    }

    [Fact]
    public void Forwarding_allocates_nothing_in_steady_state()
    {
        using var lab = new Lab(3, sharedPool: true);
        lab.Teach(1, Mac(1));
        int[] readers = [1, 2];
        void Run(int frames)
        {
            for (int sent = 0; sent < frames; sent += 32)
            {
                for (int i = 0; i < 32; i++) lab.Send(0, i % 4 == 0 ? MacAddress.Broadcast : Mac(1), Mac(0));
                lab.Switch.Forward(T0);
                foreach (int h in readers)
                {
                    var p = lab.Hosts[h];
                    p.RxSync();
                    p.Rx.Release(p.Rx.Space);
                    p.RxSync();
                }
            }
        }
        Allocations.AssertFlat(Run, 100_000);
    }

    /// <summary>A port that passes everything to a pipe end but has none of its capabilities.</summary>
    private sealed class PlainPort(IPort inner) : IPort
    {
        public string Name => inner.Name;
        public Ring Tx => inner.Tx;
        public Ring Rx => inner.Rx;
        public WaitMode WaitMode { get => inner.WaitMode; set => inner.WaitMode = value; }
        public string? Failure => inner.Failure;
        public void TxSync() => inner.TxSync();
        public void RxSync() => inner.RxSync();
        public bool WaitRx(Duration timeout) => inner.WaitRx(timeout);
        public bool WaitTx(Duration timeout) => inner.WaitTx(timeout);
        public bool Flush(Duration timeout) => inner.Flush(timeout);
        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public void A_port_without_direct_delivery_gets_zero_copy_frames_through_its_tx_ring_in_order()
    {
        using var pool = new PacketPool(2 * 4 * 64 + 1);
        var options = new PortOptions { RingSize = 64, SharedPool = pool };
        string tag = Guid.NewGuid().ToString("N")[..12];
        var (h0, s0) = PipePort.OpenPair($"plain{tag}-0", options);
        var (h1, s1) = PipePort.OpenPair($"plain{tag}-1", options);
        using var sw = new Switch(batch: 64);
        sw.AddPort(s0);
        sw.AddPort(new PlainPort(s1));
        try
        {
            void Send(IPort h, MacAddress dst, MacAddress src, byte t)
            {
                var tx = h.Tx;
                var buf = tx.Buffer(tx.Head);
                buf[..64].Clear();
                dst.Write(buf);
                src.Write(buf[6..]);
                buf[14] = t;
                tx[tx.Head].Length = 64;
                tx.Release(1);
                h.TxSync();
            }
            Send(h1, MacAddress.Broadcast, Mac(1), 0); // the switch learns Mac(1) behind the plain port
            sw.Forward(T0);
            h0.RxSync();
            h0.Rx.Release(h0.Rx.Space);
            for (byte t = 1; t <= 5; t++) Send(h0, Mac(1), Mac(0), t);
            sw.Forward(T0);
            h1.RxSync();
            var rx = h1.Rx;
            var tags = new List<byte>();
            for (uint s = rx.Head; s != rx.Tail; s = rx.Next(s)) tags.Add(rx.Packet(s)[14]);
            Assert.Equal([1, 2, 3, 4, 5], tags);
            Assert.Equal(5, sw.Counters(1).ZeroCopy); // swapped through the TX ring: no direct delivery to ask for
        }
        finally
        {
            h0.Dispose();
            h1.Dispose();
        }
    }

    [Fact]
    public void A_static_table_sends_known_stations_to_their_port_and_floods_the_rest()
    {
        var table = new StaticTable();
        table.Add(Mac(7), 2);
        using var lab = new Lab(3, lookup: table);
        lab.Send(0, Mac(7), Mac(0), tag: 1);
        lab.Send(0, Mac(8), Mac(0), tag: 2);
        lab.Switch.Forward(T0);
        Assert.Equal([2], lab.Received(1));
        Assert.Equal([1, 2], lab.Received(2));
    }
}

public class LearningTableTests
{
    private static readonly Instant T0 = Instant.FromSeconds(1000);

    [Fact]
    public void A_million_random_sources_neither_grow_the_table_nor_lock_out_a_busy_station()
    {
        var table = new LearningTable(capacity: 4096, seed: 42);
        var busy = MacAddress.Parse("02:aa:bb:cc:dd:ee");
        var rng = new Random(9);
        long before = GC.GetAllocatedBytesForCurrentThread();
        int missed = 0;
        for (int i = 0; i < 1_000_000; i++)
        {
            var now = T0 + Duration.FromMicroseconds(i);
            table.Learn(MacAddress.FromUInt64((ulong)rng.NextInt64() & 0xFEFF_FFFF_FFFFUL), 1 + i % 7, now); // unicast sources
            if (i % 100 == 0) table.Learn(busy, 0, now);
            if (i % 100 == 50 && table.Lookup(busy, now) != 0) missed++;
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 1_000_000, $"{allocated} bytes over a million sources"); // nothing grows (the runtime's occasional ~8 KB aside: see Allocations.AssertFlat)
        Assert.Equal(4096, table.Capacity);
        Assert.Equal(0, missed);                                           // the busy station is always found
        Assert.True(table.Evictions > 900_000);                            // the flood kept evicting idle entries
    }

    [Fact]
    public void Entries_age_out()
    {
        var table = new LearningTable(ageTime: Duration.FromSeconds(10));
        var m = MacAddress.Parse("02:00:00:00:00:01");
        table.Learn(m, 3, T0);
        Assert.Equal(3, table.Lookup(m, T0 + Duration.FromSeconds(9)));
        Assert.Equal(ILookup.Flood, table.Lookup(m, T0 + Duration.FromSeconds(11)));
    }

    [Fact]
    public void A_station_that_moves_is_found_on_its_new_port()
    {
        var table = new LearningTable();
        var m = MacAddress.Parse("02:00:00:00:00:01");
        table.Learn(m, 1, T0);
        table.Learn(m, 2, T0 + Duration.FromMilliseconds(1));
        Assert.Equal(2, table.Lookup(m, T0 + Duration.FromMilliseconds(2)));
    }
}
