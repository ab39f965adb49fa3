using Netloom.Tests.Support;
using Netloom.Wire;

namespace Netloom.Tests.Wire;

/// <summary>
/// Frames captured from the Linux kernel (ping, socat, curl across a veth pair) and one built by
/// scapy (VLAN tag and an IPv4 option): every field as Wireshark reads it, and exact re-emission.
/// </summary>
public class GoldenFrameTests
{
    internal const string ArpRequest = "ffffffffffffaa7f0db8d67808060001080006040001aa7f0db8d6780ac700010000000000000ac70002";
    internal const string EchoRequest = "5e679de9da71aa7f0db8d678080045000054ffa24000400125760ac700010ac700020800526e14af0001c15f016b000000000a44050000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
    internal const string UdpFrame = "5e679de9da71aa7f0db8d67808004500001f414940004011e3f40ac700010ac70002b41e15b3000bae0c68690a";
    internal const string PortUnreachable = "aa7f0db8d6785e679de9da71080045c0003b3979000040012af90ac700020ac700010303c259000000004500001f0e384000401117060ac700010ac700029ccd15b4000b15ad68690a";
    internal const string TcpSyn = "5e679de9da71aa7f0db8d67808004500003c11ec4000400613400ac700010ac70002d13c1f90fb56710900000000a002faf097e00000020405b40402080a8108c165000000000103030a";
    internal const string TcpRstAck = "aa7f0db8d6785e679de9da7108004500002800004000400625400ac700020ac700011f90d13c00000000fb56710a501400003d120000";
    /// <summary>A Linux router's Time Exceeded for a ping sent with TTL 1; it quotes the whole datagram.</summary>
    internal const string TimeExceeded = "2ea509b78b402a32d54bdd1a080045c00070c00300004001a13f0ac601fe0ac601010b00f4ff00000000450000546d9c40000101f37f0ac601010ac602010800a88f6c2d00018464016b000000009e9f000000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
    internal const string VlanUdpWithIpOptions = "02000000000b02000000000a8100602a08004700002c0007000040114fa70a0102030a010204070704010203040004d200350010256e7061796c6f616421";

    internal static readonly string[] All = [ArpRequest, EchoRequest, UdpFrame, PortUnreachable, TimeExceeded, TcpSyn, TcpRstAck, VlanUdpWithIpOptions];

    public static TheoryData<string> AllFixtures() => [.. All];

    [Theory]
    [MemberData(nameof(AllFixtures))]
    public void Emit_from_parsed_form_reproduces_the_original_bytes(string hex)
    {
        byte[] frame = Hex.Bytes(hex);
        var d = DecodedFrame.Decode(frame);
        Assert.True(d.IsWellFormed, d.Error.ToString());
        Assert.True(d.ChecksumsOk);
        var again = new byte[frame.Length];
        // Start from garbage so nothing passes by accident.
        again.AsSpan().Fill(0xA5);
        Assert.Equal(frame.Length, d.Emit(frame, again));
        Assert.Equal(hex, Hex.Of(again));
    }

    [Fact]
    public void Arp_request_fields()
    {
        Assert.True(ArpRepr.TryParse(Hex.Bytes(ArpRequest).AsSpan(14), out var arp, out _));
        Assert.Equal((ushort)ArpOperation.Request, arp.Operation);
        Assert.Equal("aa:7f:0d:b8:d6:78", arp.SenderMac.ToString());
        Assert.Equal("10.199.0.1", arp.SenderIp.ToString());
        Assert.Equal(MacAddress.Zero, arp.TargetMac);
        Assert.Equal("10.199.0.2", arp.TargetIp.ToString());
        Assert.True(EthernetRepr.TryParse(Hex.Bytes(ArpRequest), out var eth, out _));
        Assert.True(eth.Destination.IsBroadcast);
        Assert.Equal((ushort)EtherType.Arp, eth.EtherType);
    }

    [Fact]
    public void Echo_request_fields()
    {
        var d = DecodedFrame.Decode(Hex.Bytes(EchoRequest));
        Assert.Equal(FrameLayers.Ethernet | FrameLayers.Ipv4 | FrameLayers.Icmp, d.Layers);
        Assert.Equal(0xffa2, d.Ipv4.Identification);
        Assert.True(d.Ipv4.DontFragment);
        Assert.Equal(64, d.Ipv4.Ttl);
        Assert.Equal(84, d.Ipv4.TotalLength);
        Assert.Equal((byte)IcmpType.EchoRequest, d.Icmp.Type);
        Assert.Equal(0x14af, d.Icmp.Identifier);
        Assert.Equal(1, d.Icmp.SequenceNumber);
        Assert.Equal(56, d.Icmp.DataLength);
    }

    [Fact]
    public void Port_unreachable_quotes_the_offending_datagram()
    {
        byte[] frame = Hex.Bytes(PortUnreachable);
        Assert.True(EthernetFrame.TryParse(frame, out var eth, out _));
        Assert.True(Ipv4Packet.TryParse(eth.Payload, out var ip, out _));
        Assert.Equal(0xc0, ip.Tos);
        Assert.True(IcmpMessage.TryParse(ip.Payload, out var icmp, out _));
        Assert.True(icmp.IsError);
        Assert.Equal((byte)UnreachableCode.Port, icmp.Code);
        Assert.True(icmp.TryGetQuoted(out var quoted, out _));
        Assert.Equal("10.199.0.1", quoted.Source.ToString());
        Assert.Equal((byte)IpProtocol.Udp, quoted.Protocol);
        Assert.True(UdpDatagram.TryParse(quoted.Payload, out var udp, out _));
        Assert.Equal(5556, udp.DestinationPort);
    }

    [Fact]
    public void Time_exceeded_quotes_the_expired_echo_request()
    {
        var d = DecodedFrame.Decode(Hex.Bytes(TimeExceeded));
        Assert.Equal((byte)IcmpType.TimeExceeded, d.Icmp.Type);
        Assert.Equal((byte)TimeExceededCode.TtlExceeded, d.Icmp.Code);
        Assert.Equal("10.198.1.254", d.Ipv4.Source.ToString());
        var frame = Hex.Bytes(TimeExceeded);
        Assert.True(IcmpMessage.TryParse(frame.AsSpan(d.TransportOffset), out var icmp, out _));
        Assert.True(icmp.TryGetQuoted(out var quoted, out _));
        Assert.Equal(1, quoted.Ttl);
        Assert.Equal("10.198.2.1", quoted.Destination.ToString());
        Assert.True(quoted.ChecksumValid);
        Assert.True(IcmpMessage.TryParse(quoted.Payload, out var echo, out _));
        Assert.Equal((byte)IcmpType.EchoRequest, echo.Type);
        Assert.Equal(0x6c2d, echo.Identifier);
    }

    [Fact]
    public void Linux_syn_options_are_typed_and_keep_their_order()
    {
        var d = DecodedFrame.Decode(Hex.Bytes(TcpSyn));
        ref readonly var t = ref d.Tcp;
        Assert.Equal(TcpFlags.Syn, t.Flags);
        Assert.Equal(4216746249u, t.SequenceNumber);
        Assert.Equal(40, t.HeaderLength);
        Assert.Equal((ushort)1460, t.MaxSegmentSize);
        Assert.True(t.SackPermitted);
        Assert.Equal(new TcpTimestamp(2164834661, 0), t.Timestamp);
        Assert.Equal((byte)10, t.WindowScale);
        Assert.Equal(64240, t.Window);
    }

    [Fact]
    public void A_syn_built_in_code_uses_linux_option_order()
    {
        // Built from scratch (no layout): the same bytes Linux sent.
        var parsed = DecodedFrame.Decode(Hex.Bytes(TcpSyn)).Tcp;
        var built = new TcpRepr
        {
            SourcePort = parsed.SourcePort, DestinationPort = parsed.DestinationPort, SequenceNumber = parsed.SequenceNumber,
            Flags = TcpFlags.Syn, Window = parsed.Window, MaxSegmentSize = 1460, SackPermitted = true,
            Timestamp = parsed.Timestamp, WindowScale = 10,
        };
        var a = new byte[40];
        var b = new byte[40];
        var src = Ipv4Address.Parse("10.199.0.1");
        var dst = Ipv4Address.Parse("10.199.0.2");
        built.Emit(a, src, dst);
        parsed.Emit(b, src, dst);
        Assert.Equal(Hex.Of(b), Hex.Of(a));
    }

    [Fact]
    public void Vlan_tag_and_ipv4_options_are_carried_through()
    {
        var d = DecodedFrame.Decode(Hex.Bytes(VlanUdpWithIpOptions));
        Assert.Equal(1, d.Ethernet.TagCount);
        Assert.Equal((ushort)42, d.Ethernet.VlanId);
        Assert.Equal(3, d.Ethernet.OuterTag.Priority);
        Assert.Equal(28, d.Ipv4.HeaderLength);
        Assert.Equal("07070401020304" + "00", Hex.Of(d.Ipv4.Options.Span));
        Assert.Equal(53, d.Udp.DestinationPort);
        Assert.Equal(8, d.Udp.PayloadLength);
    }

    [Fact]
    public void Unknown_tcp_options_repeats_and_tail_after_eol_survive_a_round_trip()
    {
        // Options: MSS, an unknown kind 30 (3 bytes), NOP, a second MSS, SACK with two blocks, EOL, then two junk bytes.
        byte[] opts = [2, 4, 5, 0xb4, 30, 3, 0xAB, 1, 2, 4, 0x02, 0x18, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0xEE, 0xFF, 0, 0, 0];
        Assert.Equal(0, opts.Length % 4);
        var seg = new byte[20 + opts.Length + 5];
        seg[12] = (byte)((20 + opts.Length) / 4 << 4);
        seg[13] = 0x10;
        opts.CopyTo(seg, 20);
        "hello"u8.CopyTo(seg.AsSpan(20 + opts.Length));
        var src = Ipv4Address.Parse("10.0.0.1");
        var dst = Ipv4Address.Parse("10.0.0.2");
        Assert.True(TcpRepr.TryParse(seg, out var repr, out var err), err.ToString());
        Assert.Equal((ushort)1460, repr.MaxSegmentSize);
        Assert.Equal(2, repr.Sack.Count);
        Assert.Equal(new SackBlock(3, 4), repr.Sack[1]);
        var outBuf = new byte[seg.Length];
        "hello"u8.CopyTo(outBuf.AsSpan(20 + opts.Length)); // Emit writes the header in front of a payload already in place
        repr.Emit(outBuf, src, dst);
        seg.AsSpan(16, 2).Clear();
        outBuf.AsSpan(16, 2).Clear(); // the checksum was not set in the input
        Assert.Equal(Hex.Of(seg), Hex.Of(outBuf));
    }

    [Fact]
    public void Changing_a_parsed_value_changes_the_emitted_bytes()
    {
        var d = DecodedFrame.Decode(Hex.Bytes(TcpSyn));
        var t = d.Tcp;
        t.MaxSegmentSize = 1400;
        t.Sack.TryAdd(new SackBlock(1, 2)); // not in the original layout: appended
        var buf = new byte[t.BufferLength];
        t.Emit(buf, d.Ipv4.Source, d.Ipv4.Destination);
        Assert.True(TcpRepr.TryParse(buf, out var back, out var err), err.ToString());
        Assert.Equal((ushort)1400, back.MaxSegmentSize);
        Assert.Equal(new SackBlock(1, 2), back.Sack[0]);
        Assert.True(TcpSegment.TryParse(buf, out var seg, out _) && seg.ChecksumValid(d.Ipv4.Source, d.Ipv4.Destination));
    }

    [Fact]
    public void An_ipv6_frame_shorter_than_its_payload_length_keeps_its_ethernet_layer_and_says_why()
    {
        // The fixed header says 36 payload bytes follow; none do.
        byte[] frame = Hex.Bytes("3333000000165e679de9da7186dd6000000000240001fe80000000000000000000000000000000000000000000000000000000000016");
        var d = DecodedFrame.Decode(frame);
        Assert.Equal(FrameLayers.Ethernet, d.Layers);
        Assert.Equal("ipv6: length 76 > 40 bytes available", d.Error.ToString());
    }
}
