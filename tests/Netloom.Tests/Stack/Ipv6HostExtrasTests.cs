using System.Buffers.Binary;
using System.Security.Cryptography;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Stack;

/// <summary>MLDv2 reports, redirects and the TCP MSS after Packet Too Big, over <see cref="TcpLab"/>'s virtual link.</summary>
public partial class Ipv6StackTests
{
    private const int MldAt = 14 + 40 + 8; // Ethernet, IPv6, the hop-by-hop header with the Router Alert

    /// <summary>The MLDv2 reports A sent: their IPv6 source and (record type, group) pairs; each checked for hop limit 1 and the Router Alert.</summary>
    private static List<(Ipv6Address Source, List<(byte Type, Ipv6Address Group)> Records)> ReportsFromA(TcpLab lab)
    {
        var found = new List<(Ipv6Address, List<(byte, Ipv6Address)>)>();
        foreach (var (from, f) in lab.Frames)
        {
            if (from != 'A' || f.Length < MldAt + 8 || f[14 + 6] != (byte)IpProtocol.HopByHop || f[MldAt] != (byte)Icmpv6Type.Mldv2Report) continue;
            Assert.Equal(1, f[14 + 7]);                                        // hop limit 1
            Assert.Equal(new byte[] { 58, 0, 5, 2, 0, 0, 1, 0 }, f[54..62]);   // ICMPv6 next, Router Alert (MLD), PadN
            var dst = Ipv6Address.Read(f.AsSpan(14 + 24));
            Assert.Equal(Ipv6Address.AllMldv2Routers, dst);
            var src = Ipv6Address.Read(f.AsSpan(14 + 8));
            Assert.True(Icmpv6Message.TryParse(f.AsSpan(MldAt), out var m, out _) && m.ChecksumValid(src, dst));
            Assert.True(Mldv2Report.TryParse(f.AsSpan(MldAt), out var r, out _));
            var records = new List<(byte, Ipv6Address)>();
            int at = 0;
            while (r.TryReadRecord(ref at, out var rec)) records.Add((rec.RecordType, rec.MulticastAddress));
            found.Add((src, records));
        }
        return found;
    }

    private static byte[] MldQueryFrame(Ipv6Address src, Ipv6Address dst, Ipv6Address group, ushort maxResponseCode)
    {
        var q = new byte[28];
        q[0] = (byte)Icmpv6Type.MulticastListenerQuery;
        BinaryPrimitives.WriteUInt16BigEndian(q.AsSpan(4), maxResponseCode);
        group.Write(q.AsSpan(8));
        q[24] = 2; // QRV 2
        new Icmpv6Writer(q).FillChecksum(src, dst);
        return Ipv6Frame(TcpLab.MacB, dst.MulticastMac, src, dst, (byte)IpProtocol.Icmpv6, q, hopLimit: 1);
    }

    [Fact]
    public void Mldv2_reports_announce_the_solicited_node_groups_twice_and_answer_queries_from_link_local_sources()
    {
        var lab = Lab();
        lab.Record = true;
        lab.Run(Duration.FromSeconds(3));
        var llA = Ipv6Address.LinkLocalFromMac(TcpLab.MacA);
        var joins = ReportsFromA(lab);
        // The lab's first poll (before recording started) sent one report joining both groups; the
        // robustness repeat of each came within the second after, still from :: while DAD ran.
        Assert.Equal(3, lab.StackA.MldReportsOut);
        Assert.All(joins, j => Assert.Equal(Ipv6Address.Unspecified, j.Source));
        int Announced(Ipv6Address g) => joins.Sum(j => j.Records.Count(r => r == (MldField.ChangeToExclude, g)));
        Assert.Equal(1, Announced(llA.SolicitedNode));
        Assert.Equal(1, Announced(GlobalA.SolicitedNode));
        Assert.DoesNotContain(joins, j => j.Records.Any(r => r.Group == Ipv6Address.AllNodes));

        // A General Query (max response 1000 ms) from a link-local querier: one current-state report of both groups within the second.
        var querier = Ipv6Address.LinkLocalFromMac(TcpLab.MacB);
        lab.Frames.Clear();
        lab.A.Inject(MldQueryFrame(querier, Ipv6Address.AllNodes, Ipv6Address.Unspecified, 1000));
        lab.Run(Duration.FromMilliseconds(1010));
        var answer = Assert.Single(ReportsFromA(lab));
        Assert.Equal(llA, answer.Source);
        Assert.Equal(new HashSet<Ipv6Address> { llA.SolicitedNode, GlobalA.SolicitedNode }, answer.Records.Select(r => r.Group).ToHashSet());
        Assert.Equal(2, answer.Records.Count);
        Assert.All(answer.Records, r => Assert.Equal(MldField.ModeIsExclude, r.Type));

        // An address-specific query gets that group alone; one from a global source, or for a group we are not in, nothing.
        lab.Frames.Clear();
        lab.A.Inject(MldQueryFrame(GlobalB, Ipv6Address.AllNodes, Ipv6Address.Unspecified, 10));
        lab.A.Inject(MldQueryFrame(querier, Ipv6Address.Parse("ff02::1:ff99:9999"), Ipv6Address.Parse("ff02::1:ff99:9999"), 10));
        lab.Run(Duration.FromMilliseconds(200));
        Assert.Empty(ReportsFromA(lab));
        lab.A.Inject(MldQueryFrame(querier, GlobalA.SolicitedNode, GlobalA.SolicitedNode, 100));
        lab.Run(Duration.FromMilliseconds(200));
        Assert.Equal([(MldField.ModeIsExclude, GlobalA.SolicitedNode)], Assert.Single(ReportsFromA(lab)).Records);
    }

    private static byte[] RedirectFrame(Ipv6Address src, Ipv6Address target, Ipv6Address destination, MacAddress? targetMac, byte hopLimit = 255)
    {
        var r = new NdpRepr { Type = (byte)Icmpv6Type.Redirect, Target = target, Destination = destination };
        if (targetMac is { } m) r.SetTargetLinkLayer(m);
        return NdpFrame(r, TcpLab.MacB, src, GlobalA, hopLimit);
    }

    [Fact]
    public void A_redirect_from_the_first_hop_router_moves_the_destination_and_others_are_dropped()
    {
        var lab = Lab();
        lab.Run(Duration.FromSeconds(2));
        var router = Ipv6Address.LinkLocalFromMac(TcpLab.MacB);
        var ra = NdpRepr.RouterAdvertisement(64, 0, 1800, 0, 0);
        ra.SetSourceLinkLayer(TcpLab.MacB);
        lab.A.Inject(NdpFrame(ra, TcpLab.MacB, router, Ipv6Address.AllNodes));
        lab.Run(Duration.FromMilliseconds(10));
        Ipv6Address far = Ipv6Address.Parse("2001:db8:5::1"), other = Ipv6Address.Parse("2001:db8:5::2"), better = Ipv6Address.Parse("fe80::77");
        Assert.Equal(router, lab.StackA.NextHopOf(far));
        long invalid = lab.StackA.Counters.Drops(StackDrop.NdpInvalid);

        lab.A.Inject(RedirectFrame(Ipv6Address.Parse("fe80::bad"), far, far, null));   // not our router
        lab.A.Inject(RedirectFrame(router, far, far, null, hopLimit: 254));             // not from this link
        lab.A.Inject(RedirectFrame(router, GlobalB, far, null));                        // a global target that is not the destination
        lab.A.Inject(RedirectFrame(router, far, Ipv6Address.Parse("ff02::5"), null));   // a multicast destination
        lab.Run(Duration.FromMilliseconds(10));
        Assert.Equal(router, lab.StackA.NextHopOf(far));
        Assert.Equal(4, lab.StackA.Counters.Drops(StackDrop.NdpInvalid) - invalid);
        Assert.Equal(0, lab.StackA.RedirectsAccepted);

        // Right ones: far is on the link after all; other goes through a better router, whose MAC comes along.
        lab.A.Inject(RedirectFrame(router, far, far, null));
        lab.A.Inject(RedirectFrame(router, better, other, MacAddress.Parse("02:00:00:00:07:07")));
        lab.Run(Duration.FromMilliseconds(10));
        Assert.Equal(2, lab.StackA.RedirectsAccepted);
        Assert.Equal(far, lab.StackA.NextHopOf(far));
        Assert.Equal(better, lab.StackA.NextHopOf(other));
        lab.Record = true;
        Assert.True(lab.StackA.SendPing6(other, 1, 1, default));
        lab.Run(Duration.FromMilliseconds(10));
        var echo = lab.Frames.Select(f => DecodedFrame.Decode(f.Frame)).First(d => d.Has(FrameLayers.Icmpv6) && d.Icmpv6.Type == (byte)Icmpv6Type.EchoRequest);
        Assert.Equal(MacAddress.Parse("02:00:00:00:07:07"), echo.Ethernet.Destination); // no solicitation needed: the option filled the cache
        // Only the new first hop may redirect further: the old router no longer can.
        lab.A.Inject(RedirectFrame(router, far, other, null));
        lab.Run(Duration.FromMilliseconds(10));
        Assert.Equal(better, lab.StackA.NextHopOf(other));
    }

    [Fact]
    public void Packet_too_big_during_a_tcp_transfer_shrinks_the_mss_so_nothing_is_fragmented()
    {
        var lab = Lab(seed: 3);
        lab.Run(Duration.FromSeconds(2));
        var l = lab.StackB.Listen(443);
        var c = lab.StackA.Connect(GlobalB, 443);
        TcpSocket? s = null;
        Assert.True(lab.RunUntil(() => c.State == TcpState.Established && l.TryAccept(out s), Duration.FromSeconds(5)));
        int before = c.MaxSegmentSize;
        // A router on the way with a 1280-byte link: it drops what is larger and says so, once.
        bool told = false;
        lab.AtoB.Filter = f =>
        {
            if (f.Length - 14 <= 1280) return true;
            if (!told)
            {
                told = true;
                var quote = f.AsSpan(14, 1280 - 48).ToArray();
                lab.A.Inject(IcmpFrame(Icmpv6Repr.PacketTooBig(1280, quote.Length), quote, TcpLab.MacB, GlobalB, GlobalA));
            }
            return false;
        };
        var data = new byte[512 << 10];
        new Random(11).NextBytes(data);
        lab.Record = true;
        var got = lab.Transfer(c, s!, data, Duration.FromSeconds(60));
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(got));
        Assert.True(told);
        Assert.True(c.MaxSegmentSize < before && c.MaxSegmentSize <= 1280 - 60, $"MSS {before} -> {c.MaxSegmentSize}");
        var fromA = lab.Frames.Where(f => f.From == 'A').Select(f => DecodedFrame.Decode(f.Frame)).ToList();
        Assert.DoesNotContain(fromA, d => d.Ipv6Extensions.HasFragment);
        Assert.True(lab.AtoB.Lost < 20, $"{lab.AtoB.Lost} frames were too big"); // only the flight in the air when the PTB came
    }
}
