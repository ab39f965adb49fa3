using Netloom.Tests.Support;
using Netloom.Wire;

namespace Netloom.Tests.Wire;

/// <summary>Malformed input gives a typed error naming the layer and the reason, never an exception.</summary>
public class MalformedInputTests
{
    private static string ErrorOf(byte[] frame)
    {
        var d = DecodedFrame.Decode(frame);
        Assert.False(d.IsWellFormed);
        return d.Error.ToString();
    }

    private static byte[] Patch(string hex, int offset, params byte[] bytes)
    {
        var b = Hex.Bytes(hex);
        bytes.CopyTo(b, offset);
        return b;
    }

    [Fact]
    public void Short_ethernet() => Assert.Equal("ethernet: truncated: 13 bytes < 14", ErrorOf(new byte[13]));

    [Fact]
    public void Ipv4_header_length_below_twenty() =>
        Assert.Equal("ipv4: header length 12 < 20", ErrorOf(Patch(GoldenFrameTests.EchoRequest, 14, 0x43)));

    [Fact]
    public void Ipv4_wrong_version() =>
        Assert.Equal("ipv4: version 6 != 4", ErrorOf(Patch(GoldenFrameTests.EchoRequest, 14, 0x65)));

    [Fact]
    public void Ipv4_total_length_past_the_frame() =>
        Assert.Equal("ipv4: length 2000 > 84 bytes available", ErrorOf(Patch(GoldenFrameTests.EchoRequest, 16, 0x07, 0xd0)));

    [Fact]
    public void Ipv4_total_length_below_header() =>
        Assert.Equal("ipv4: length 10 < header length 20", ErrorOf(Patch(GoldenFrameTests.EchoRequest, 16, 0x00, 0x0a)));

    [Fact]
    public void Udp_length_below_header() =>
        Assert.Equal("udp: length 4 < header length 8", ErrorOf(Patch(GoldenFrameTests.UdpFrame, 38, 0x00, 0x04)));

    [Fact]
    public void Tcp_data_offset_below_five() =>
        Assert.Equal("tcp: header length 16 < 20", ErrorOf(Patch(GoldenFrameTests.TcpSyn, 46, 0x40)));

    [Fact]
    public void Tcp_mss_option_with_wrong_length() =>
        Assert.Equal("tcp: option 2 at offset 20 has invalid length 5", ErrorOf(Patch(GoldenFrameTests.TcpSyn, 55, 0x05)));

    [Fact]
    public void Tcp_option_running_past_the_header() =>
        Assert.Equal("tcp: option 30 at offset 39 runs past the options end (20)", ErrorOf(Patch(GoldenFrameTests.TcpSyn, 71, 1, 1, 30)));

    [Fact]
    public void Arp_for_another_hardware_type() =>
        Assert.Equal("arp: hardware type 6 is not Ethernet (1)", ErrorOf(Patch(GoldenFrameTests.ArpRequest, 14, 0x00, 0x06)));

    [Fact]
    public void Three_vlan_tags() =>
        Assert.Equal("ethernet: more than 2 VLAN tags", ErrorOf(Hex.Bytes("ffffffffffff020000000001" + "8100000a" + "8100000b" + "8100000c" + "0800" + new string('0', 40))));

    [Fact]
    public void A_failed_frame_keeps_the_layers_that_parsed()
    {
        var d = DecodedFrame.Decode(Patch(GoldenFrameTests.TcpSyn, 46, 0x40));
        Assert.True(d.Has(FrameLayers.Ethernet | FrameLayers.Ipv4));
        Assert.False(d.Has(FrameLayers.Tcp));
        Assert.Equal(Layer.Tcp, d.Error.Layer);
    }

    [Fact]
    public void Emit_of_a_malformed_frame_is_refused_with_the_reason()
    {
        byte[] frame = Patch(GoldenFrameTests.EchoRequest, 14, 0x43);
        var e = Assert.Throws<InvalidOperationException>(() => DecodedFrame.Decode(frame).Emit(frame, new byte[200]));
        Assert.Contains("ipv4: header length 12 < 20", e.Message);
    }
}
