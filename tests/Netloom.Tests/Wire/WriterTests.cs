using Netloom.Tests.Support;
using Netloom.Wire;

namespace Netloom.Tests.Wire;

/// <summary>In-place writers edit a built frame and keep its checksums right.</summary>
public class WriterTests
{
    [Fact]
    public void Decrementing_ttl_patches_the_header_checksum_incrementally()
    {
        byte[] frame = Hex.Bytes(GoldenFrameTests.EchoRequest);
        var w = new Ipv4Writer(frame.AsSpan(14));
        for (int hop = 0; hop < 63; hop++) w.DecrementTtl();
        Assert.True(Ipv4Packet.TryParse(frame.AsSpan(14), out var ip, out _));
        Assert.Equal(1, ip.Ttl);
        Assert.True(ip.ChecksumValid);
    }

    [Fact]
    public void Rewriting_a_tcp_port_then_refilling_the_checksum_gives_a_valid_segment()
    {
        byte[] frame = Hex.Bytes(GoldenFrameTests.TcpSyn);
        var d = DecodedFrame.Decode(frame);
        var segment = frame.AsSpan(d.TransportOffset);
        var w = new TcpWriter(segment) { DestinationPort = 8443, Window = 1000 };
        w.FillChecksum(d.Ipv4.Source, d.Ipv4.Destination);
        var again = DecodedFrame.Decode(frame);
        Assert.True(again.ChecksumsOk);
        Assert.Equal(8443, again.Tcp.DestinationPort);
        Assert.Equal((ushort)1460, again.Tcp.MaxSegmentSize); // options untouched
    }

    [Fact]
    public void Udp_and_icmp_writers_fill_valid_checksums()
    {
        byte[] udpFrame = Hex.Bytes(GoldenFrameTests.UdpFrame);
        var du = DecodedFrame.Decode(udpFrame);
        var uw = new UdpWriter(udpFrame.AsSpan(du.TransportOffset)) { SourcePort = 1 };
        uw.FillChecksum(du.Ipv4.Source, du.Ipv4.Destination);
        Assert.True(DecodedFrame.Decode(udpFrame).ChecksumsOk);

        byte[] icmpFrame = Hex.Bytes(GoldenFrameTests.EchoRequest);
        var di = DecodedFrame.Decode(icmpFrame);
        var iw = new IcmpWriter(icmpFrame.AsSpan(di.TransportOffset)) { Type = (byte)IcmpType.EchoReply };
        iw.FillChecksum();
        var back = DecodedFrame.Decode(icmpFrame);
        Assert.True(back.ChecksumsOk);
        Assert.Equal((byte)IcmpType.EchoReply, back.Icmp.Type);
    }

    [Fact]
    public void Writers_refuse_buffers_shorter_than_their_header()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpWriter(new byte[19]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new UdpWriter(new byte[7]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new IcmpWriter(new byte[7]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ArpWriter(new byte[27]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Ipv4Writer(new byte[19]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new EthernetWriter(new byte[13]));
    }
}
