using System.Security.Cryptography;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Stack;

/// <summary>
/// Two user-level stacks with IPv6 on, over <see cref="TcpLab"/>'s virtual link: DAD, neighbour
/// discovery and unreachability detection, ping with fragments both ways, TCP over IPv6 with
/// loss, SLAAC and a default router from an advertisement, path MTU from Packet Too Big, and
/// adversarial packets that are counted and dropped.
/// </summary>
public partial class Ipv6StackTests
{
    private static readonly Ipv6Address GlobalA = Ipv6Address.Parse("fd00:9::1"), GlobalB = Ipv6Address.Parse("fd00:9::2");

    private static TcpLab Lab(bool global = true, int seed = 1) => new(seed, o => o with
    {
        Ipv6 = true,
        Ipv6Address = global ? (o.Mac == TcpLab.MacA ? GlobalA : GlobalB) : null,
    });

    private static bool Preferred(Interface s, Ipv6Address a)
    {
        foreach (var x in s.Ipv6Addresses) if (x.Address == a && x.State == Interface.AddressState.Preferred) return true;
        return false;
    }

    [Fact]
    public void Link_local_and_static_addresses_pass_DAD_and_answer_pings_after_neighbour_discovery()
    {
        var lab = Lab();
        var llA = Ipv6Address.LinkLocalFromMac(TcpLab.MacA);
        Assert.Equal("fe80::ff:fe00:901", llA.ToString()); // modified EUI-64 of 02:00:00:00:09:01
        Assert.True(lab.RunUntil(() => Preferred(lab.StackA, GlobalA) && Preferred(lab.StackB, GlobalB), Duration.FromSeconds(5)));
        Assert.Equal(GlobalA, lab.StackA.Ipv6Address);
        lab.Record = true;
        Assert.True(lab.StackA.SendPing6(GlobalB, 7, 1, "hello"u8));
        PingReply6 reply = default;
        Assert.True(lab.RunUntil(() => lab.StackA.TryTakePingReply6(out reply), Duration.FromSeconds(2)));
        Assert.Equal(GlobalB, reply.From);
        Assert.Equal(5, reply.DataLength);
        // The first packet waited for a neighbour solicitation to the solicited-node group, answered by a solicited advertisement.
        var ns = lab.Frames.Select(f => DecodedFrame.Decode(f.Frame)).First(d => d.Has(FrameLayers.Ndp));
        Assert.Equal((byte)Icmpv6Type.NeighborSolicitation, ns.Ndp.Type);
        Assert.Equal(GlobalB.SolicitedNode, ns.Ipv6.Destination);
        Assert.Equal(GlobalB.SolicitedNode.MulticastMac, ns.Ethernet.Destination);
        Assert.Equal(255, ns.Ipv6.HopLimit);
        Assert.True(lab.StackB.Counters.NdpIn > 0 && lab.StackA.Counters.NdpOut > 0);
        // Link-local to link-local works too.
        Assert.True(lab.StackA.SendPing6(Ipv6Address.LinkLocalFromMac(TcpLab.MacB), 7, 2, default));
        Assert.True(lab.RunUntil(() => lab.StackA.TryTakePingReply6(out reply), Duration.FromSeconds(2)));
        Assert.Equal(llA.IsLinkLocal, reply.From.IsLinkLocal);
    }

    [Fact]
    public void A_4000_byte_ping_is_fragmented_and_reassembled_both_ways()
    {
        var lab = Lab();
        lab.Run(Duration.FromSeconds(2));
        var data = new byte[4000];
        new Random(3).NextBytes(data);
        lab.Record = true;
        Assert.True(lab.StackA.SendPing6(GlobalB, 9, 1, data));
        PingReply6 reply = default;
        Assert.True(lab.RunUntil(() => lab.StackA.TryTakePingReply6(out reply), Duration.FromSeconds(2)));
        Assert.Equal(4000, reply.DataLength);
        var frags = lab.Frames.Select(f => DecodedFrame.Decode(f.Frame)).Where(d => d.Ipv6Extensions.IsFragment).ToList();
        Assert.Equal(6, frags.Count); // three each way at a 1500-byte MTU
        Assert.All(frags, f => Assert.True(f.Length <= 1514));
        Assert.True(lab.StackB.Counters.Reassembled >= 1 && lab.StackA.Counters.Reassembled >= 1);
    }

    [Fact]
    public void Tcp_over_ipv6_moves_a_megabyte_intact_through_loss_with_one_flow_label_per_direction()
    {
        var lab = Lab(seed: 5);
        lab.Run(Duration.FromSeconds(2));
        lab.AtoB.Loss = 0.02;
        lab.BtoA.Loss = 0.02;
        var l = lab.StackB.Listen(443);
        var c = lab.StackA.Connect(GlobalB, 443);
        TcpSocket? s = null;
        Assert.True(lab.RunUntil(() => c.State == TcpState.Established && l.TryAccept(out s), Duration.FromSeconds(30)));
        Assert.Equal(IpAddr.FromIpv6(GlobalB), c.Remote.Address);
        Assert.Equal(1440, ((ITcpOutput)lab.StackA).MaxSegmentSize(c.Remote.Address)); // the MTU less 60 bytes of IPv6 and TCP headers
        var data = new byte[1 << 20];
        new Random(7).NextBytes(data);
        lab.Record = true;
        var got = lab.Transfer(c, s!, data, Duration.FromSeconds(120));
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(got));
        var labels = lab.Frames.Where(f => f.From == 'A').Select(f => DecodedFrame.Decode(f.Frame)).Where(d => d.Has(FrameLayers.Tcp)).Select(d => d.Ipv6.FlowLabel).Distinct().ToList();
        Assert.Single(labels);
        Assert.NotEqual(0u, labels[0]);
    }

    [Fact]
    public void Both_claimants_of_one_address_detect_the_duplicate_and_do_not_use_it()
    {
        var lab = new TcpLab(1, o => o with { Ipv6 = true, Ipv6Address = GlobalA });
        lab.Run(Duration.FromSeconds(3));
        Assert.False(Preferred(lab.StackA, GlobalA));
        Assert.False(Preferred(lab.StackB, GlobalB));
        Assert.Equal(1, lab.StackA.Counters.DadConflicts);
        Assert.Equal(1, lab.StackB.Counters.DadConflicts);
        Assert.True(lab.StackA.Ipv6Address!.Value.IsLinkLocal); // the link-local addresses differ and stay
    }

    [Fact]
    public void A_router_advertisement_gives_a_SLAAC_address_a_default_router_the_hop_limit_and_the_link_mtu()
    {
        var lab = Lab(global: false);
        lab.Run(Duration.FromSeconds(2));
        var routerLl = Ipv6Address.LinkLocalFromMac(TcpLab.MacB);
        var ra = NdpRepr.RouterAdvertisement(42, 0, 1800, 0, 0);
        ra.AddPrefix(new NdpPrefixInfo { PrefixLength = 64, Flags = NdpPrefixInfo.OnLinkFlag | NdpPrefixInfo.AutonomousFlag, ValidLifetime = 3600, PreferredLifetime = 1800, Prefix = Ipv6Address.Parse("2001:db8:7::") });
        ra.SetMtu(1400);
        ra.SetSourceLinkLayer(TcpLab.MacB);
        lab.A.Inject(NdpFrame(ra, TcpLab.MacB, routerLl, Ipv6Address.AllNodes));
        var expected = Ipv6Address.Parse("2001:db8:7::ff:fe00:901");
        Assert.True(lab.RunUntil(() => Preferred(lab.StackA, expected), Duration.FromSeconds(5)));
        Assert.Equal(1, lab.StackA.Counters.SlaacAddresses);
        Assert.Equal(1400 - 60, ((ITcpOutput)lab.StackA).MaxSegmentSize(IpAddr.FromIpv6(Ipv6Address.Parse("2001:db8:99::1"))));
        // Off-link: sent to the router's MAC with the advertised hop limit.
        lab.Record = true;
        Assert.True(lab.StackA.SendPing6(Ipv6Address.Parse("2001:db8:99::1"), 1, 1, default));
        lab.Run(Duration.FromMilliseconds(10));
        var echo = lab.Frames.Select(f => DecodedFrame.Decode(f.Frame)).First(d => d.Has(FrameLayers.Icmpv6) && d.Icmpv6.Type == (byte)Icmpv6Type.EchoRequest);
        Assert.Equal(TcpLab.MacB, echo.Ethernet.Destination);
        Assert.Equal(42, echo.Ipv6.HopLimit);
        Assert.Equal(expected, echo.Ipv6.Source);
    }

    [Fact]
    public void Packet_too_big_lowers_the_path_mtu_and_later_packets_are_fragmented_to_it()
    {
        var lab = Lab();
        lab.Run(Duration.FromSeconds(2));
        var far = GlobalB;
        // B says the path to itself is 1280 (as a router on the way would).
        var quoted = new byte[200];
        new Ipv6Repr(GlobalA, far, (byte)IpProtocol.Icmpv6, 1400).Emit(quoted);
        var ptb = Icmpv6Repr.PacketTooBig(1280, quoted.Length);
        lab.A.Inject(IcmpFrame(ptb, quoted, TcpLab.MacB, GlobalB, GlobalA));
        lab.Run(Duration.FromMilliseconds(5));
        Assert.Equal(1280, lab.StackA.PathMtu(far));
        Assert.Equal(1, lab.StackA.Counters.PathMtuUpdates);
        lab.Record = true;
        Assert.True(lab.StackA.SendPing6(far, 1, 1, new byte[1400]));
        PingReply6 reply = default;
        Assert.True(lab.RunUntil(() => lab.StackA.TryTakePingReply6(out reply), Duration.FromSeconds(2)));
        var sent = lab.Frames.Where(f => f.From == 'A').Select(f => f.Frame.Length - 14).ToList();
        Assert.All(sent, n => Assert.True(n <= 1280, $"a {n}-byte packet left after the PMTU dropped to 1280"));
        // A Packet Too Big below 1280 is raised to 1280 (RFC 8201 §4).
        lab.A.Inject(IcmpFrame(Icmpv6Repr.PacketTooBig(500, quoted.Length), quoted, TcpLab.MacB, GlobalB, GlobalA));
        lab.Run(Duration.FromMilliseconds(5));
        Assert.Equal(1280, lab.StackA.PathMtu(far));
    }

    [Fact]
    public void An_atomic_fragment_is_processed_without_reassembly()
    {
        var lab = Lab();
        lab.Run(Duration.FromSeconds(2));
        // RFC 6946: offset 0 and M clear.
        var echo = new byte[8 + 4];
        Icmpv6Repr.Echo(true, 3, 4, 4).Emit(echo, GlobalB, GlobalA);
        var payload = new byte[8 + echo.Length];
        new Ipv6FragmentRepr { NextHeader = (byte)IpProtocol.Icmpv6, Identification = 99 }.Emit(payload);
        echo.CopyTo(payload, 8);
        lab.A.Inject(Ipv6Frame(TcpLab.MacB, TcpLab.MacA, GlobalB, GlobalA, (byte)IpProtocol.Ipv6Fragment, payload));
        lab.Record = true;
        lab.Run(Duration.FromMilliseconds(5));
        Assert.Contains(lab.Frames, f => f.From == 'A' && DecodedFrame.Decode(f.Frame) is var d && d.Has(FrameLayers.Icmpv6) && d.Icmpv6.Type == (byte)Icmpv6Type.EchoReply);
        Assert.Equal(0, lab.StackA.Counters.FragmentsIn);
    }

    [Fact]
    public void Adversarial_ipv6_packets_are_counted_and_dropped()
    {
        var lab = Lab();
        lab.Run(Duration.FromSeconds(2));
        var a = lab.StackA;
        long before(StackDrop r) => a.Counters.Drops(r);
        long invalid = before(StackDrop.NdpInvalid), malformed = before(StackDrop.Malformed), overlap = before(StackDrop.ReassemblyOverlap);

        // NDP with a hop limit other than 255: an off-link forgery.
        var na = NdpRepr.NeighborAdvertisement(GlobalB, NdpRepr.OverrideFlag, MacAddress.Parse("02:66:66:66:66:66"));
        lab.A.Inject(NdpFrame(na, TcpLab.MacB, GlobalB, GlobalA, hopLimit: 64));
        // NDP with an option of length 0.
        var ns = NdpRepr.NeighborSolicitation(GlobalA, TcpLab.MacB);
        var bad = NdpFrame(ns, TcpLab.MacB, GlobalB, GlobalA);
        bad[14 + 40 + 24 + 1] = 0;
        FixIcmpChecksum(bad);
        lab.A.Inject(bad);
        lab.Run(Duration.FromMilliseconds(2));
        Assert.Equal(invalid + 2, a.Counters.Drops(StackDrop.NdpInvalid));

        // Nine destination-options headers: over the chain limit.
        var chain = new byte[9 * 8 + 8];
        for (int i = 0; i < 9; i++) { chain[i * 8] = (byte)(i < 8 ? 60 : 59); chain[i * 8 + 2] = 1; chain[i * 8 + 3] = 4; }
        lab.A.Inject(Ipv6Frame(TcpLab.MacB, TcpLab.MacA, GlobalB, GlobalA, 60, chain));
        // A payload length past the frame.
        var longer = Ipv6Frame(TcpLab.MacB, TcpLab.MacA, GlobalB, GlobalA, 59, new byte[8]);
        longer[14 + 5] = 200;
        lab.A.Inject(longer);
        lab.Run(Duration.FromMilliseconds(2));
        Assert.Equal(malformed + 2, a.Counters.Drops(StackDrop.Malformed));

        // Overlapping fragments (RFC 5722) and a tiny middle fragment that is not a multiple of 8.
        lab.A.Inject(Fragment(id: 5, offset: 0, more: true, new byte[64]));
        lab.A.Inject(Fragment(id: 5, offset: 32, more: false, new byte[64]));
        lab.A.Inject(Fragment(id: 6, offset: 0, more: true, new byte[7]));
        lab.Run(Duration.FromMilliseconds(2));
        Assert.Equal(overlap + 2, a.Counters.Drops(StackDrop.ReassemblyOverlap));
        Assert.Equal(0, a.Counters.Reassembled);

        // The stack still works.
        Assert.True(a.SendPing6(GlobalB, 1, 1, default));
        Assert.True(lab.RunUntil(() => a.TryTakePingReply6(out _), Duration.FromSeconds(2)));
    }

    [Fact]
    public void An_unreachable_neighbour_is_probed_then_forgotten()
    {
        var lab = Lab();
        lab.Run(Duration.FromSeconds(2));
        Assert.True(lab.StackA.SendPing6(GlobalB, 1, 1, default));
        Assert.True(lab.RunUntil(() => lab.StackA.TryTakePingReply6(out _), Duration.FromSeconds(2)));
        lab.AtoB.Loss = 1; // B goes away
        lab.BtoA.Loss = 1;
        lab.Run(Duration.FromSeconds(40)); // Reachable runs out: Stale
        lab.Record = true;
        lab.StackA.SendPing6(GlobalB, 1, 2, default); // Stale -> Delay, then Probe with unicast solicitations
        lab.Run(Duration.FromSeconds(12));
        var probes = lab.Frames.Where(f => f.From == 'A').Select(f => DecodedFrame.Decode(f.Frame))
            .Where(d => d.Has(FrameLayers.Ndp) && d.Ndp.Type == (byte)Icmpv6Type.NeighborSolicitation).ToList();
        Assert.Equal(3, probes.Count);
        Assert.All(probes, p => Assert.Equal(GlobalB, p.Ipv6.Destination)); // unicast probes (RFC 4861 §7.3.3)
        Assert.Equal(1, lab.StackA.Counters.NeighborsUnreachable);
    }

    internal static byte[] Ipv6Frame(MacAddress from, MacAddress to, Ipv6Address src, Ipv6Address dst, byte nextHeader, ReadOnlySpan<byte> payload, byte hopLimit = 64)
    {
        var f = new byte[14 + 40 + payload.Length];
        new EthernetRepr(from, to, EtherType.Ipv6).Emit(f);
        new Ipv6Repr(src, dst, nextHeader, payload.Length, hopLimit).Emit(f.AsSpan(14));
        payload.CopyTo(f.AsSpan(54));
        return f;
    }

    private static byte[] NdpFrame(NdpRepr m, MacAddress from, Ipv6Address src, Ipv6Address dst, byte hopLimit = 255)
    {
        var body = new byte[m.BufferLength];
        m.Emit(body, src, dst);
        return Ipv6Frame(from, dst.IsMulticast ? dst.MulticastMac : TcpLab.MacA, src, dst, (byte)IpProtocol.Icmpv6, body, hopLimit);
    }

    private static byte[] IcmpFrame(Icmpv6Repr r, ReadOnlySpan<byte> data, MacAddress from, Ipv6Address src, Ipv6Address dst)
    {
        var body = new byte[8 + data.Length];
        data.CopyTo(body.AsSpan(8));
        r.DataLength = data.Length;
        r.Emit(body, src, dst);
        return Ipv6Frame(from, TcpLab.MacA, src, dst, (byte)IpProtocol.Icmpv6, body);
    }

    private static void FixIcmpChecksum(byte[] frame)
    {
        var ip = DecodedFrame.Decode(frame).Ipv6;
        new Icmpv6Writer(frame.AsSpan(54)).FillChecksum(ip.Source, ip.Destination);
    }

    private static byte[] Fragment(uint id, int offset, bool more, byte[] data)
    {
        var payload = new byte[8 + data.Length];
        new Ipv6FragmentRepr { NextHeader = 59, FragmentOffset = (ushort)(offset / 8), MoreFragments = more, Identification = id }.Emit(payload);
        data.CopyTo(payload, 8);
        return Ipv6Frame(TcpLab.MacB, TcpLab.MacA, GlobalB, GlobalA, 44, payload);
    }
}

public class Ipv6PingPongTests
{
    [Fact]
    public void Tcp_ping_pong_over_ipv6_takes_one_link_round_trip_per_message_for_a_minute()
    {
        var lab = new TcpLab(1, o => o with { Ipv6 = true, Ipv6Address = o.Mac == TcpLab.MacA ? Ipv6Address.Parse("fd00:9::1") : Ipv6Address.Parse("fd00:9::2"), DadTransmits = 0 });
        lab.Run(Duration.FromMilliseconds(10));
        var l = lab.StackB.Listen(7);
        var c = lab.StackA.Connect(Ipv6Address.Parse("fd00:9::2"), 7);
        TcpSocket? s = null;
        Assert.True(lab.RunUntil(() => c.State == TcpState.Established && l.TryAccept(out s), Duration.FromSeconds(5)));
        c.NoDelay = true;
        s!.NoDelay = true;
        var msg = new byte[64];
        var buf = new byte[64];
        long worst = 0;
        // 60 s of virtual time crosses REACHABLE_TIME twice: Stale, Delay and Probe must not hold data back.
        var end = lab.Now + Duration.FromSeconds(60);
        int rounds = 0;
        while (lab.Now < end)
        {
            var t0 = lab.Now;
            c.Send(msg);
            int got = 0, back = 0;
            Assert.True(lab.RunUntil(() =>
            {
                if (got < 64) { got += s.Receive(buf.AsSpan(got)); if (got == 64) s.Send(msg); }
                else back += c.Receive(buf);
                return back == 64;
            }, Duration.FromSeconds(5)), $"round {rounds} stalled at {lab.Now}");
            worst = Math.Max(worst, (lab.Now - t0).Nanoseconds);
            rounds++;
            lab.Run(Duration.FromMilliseconds(100));
        }
        Assert.True(worst <= 2_000_000, $"a round trip took {worst / 1000} µs of virtual time over a 2 x 500 µs link");
    }
}

public class Ipv6StackFuzzTests
{
    [Fact]
    public void Two_hundred_thousand_mutated_ipv6_frames_never_throw_and_the_stack_still_answers()
    {
        var lab = new TcpLab(3, o => o with { Ipv6 = true, Ipv6Address = o.Mac == TcpLab.MacA ? Ipv6Address.Parse("fd00:9::1") : Ipv6Address.Parse("fd00:9::2") });
        lab.Run(Duration.FromSeconds(2));
        var rng = new Random(20261202);
        // The kernel's and scapy's IPv6 frames, addressed to A (its MAC, its address, its solicited-node group).
        var seeds = Netloom.Tests.Wire.Ipv6GoldenFrameTests.Frames.Select(f => Netloom.Tests.Support.Hex.Bytes(f.Hex)).ToArray();
        var a = Ipv6Address.Parse("fd00:9::1").Value;
        for (int i = 0; i < 200_000; i++)
        {
            var s = seeds[rng.Next(seeds.Length)];
            int len = rng.Next(4) == 0 ? rng.Next(14, s.Length + 1) : s.Length;
            var f = s[..len];
            TcpLab.MacA.Write(f);
            if (len >= 54 && rng.Next(2) == 0) System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(f.AsSpan(38), a);
            int flips = rng.Next(0, 4);
            for (int k = 0; k < flips && len > 14; k++) f[rng.Next(14, len)] = (byte)rng.Next(256);
            lab.A.Inject(f);
            if (i % 64 == 0) lab.Run(Duration.FromMicroseconds(10));
        }
        lab.Run(Duration.FromSeconds(1));
        Assert.True(lab.StackA.Counters.Drops(StackDrop.Malformed) + lab.StackA.Counters.Drops(StackDrop.BadChecksum) > 10_000);
        Assert.True(lab.StackA.Counters.Reassembled >= 0 && lab.StackA.ReassemblyBytesHeld <= lab.StackA.Options.ReassemblyBytes);
        Assert.True(lab.StackA.SendPing6(Ipv6Address.Parse("fd00:9::2"), 1, 1, default));
        Assert.True(lab.RunUntil(() => lab.StackA.TryTakePingReply6(out _), Duration.FromSeconds(5)));
    }
}
