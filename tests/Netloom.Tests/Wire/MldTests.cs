using Netloom.Wire;

namespace Netloom.Tests.Wire;

public class MldTests
{
    [Theory]
    [InlineData(0, 0)]
    [InlineData(1000, 1000)]
    [InlineData(0x7FFF, 32767)]
    [InlineData(0x8000, 32768)]     // RFC 3810 §5.1.3: (0 | 0x1000) << (0 + 3)
    [InlineData(0x9234, 0x1234 << 4)]
    [InlineData(0xFFFF, 8387584)]   // the largest delay the code can say
    public void The_maximum_response_code_decodes_as_rfc_3810_says(int code, int milliseconds) =>
        Assert.Equal(milliseconds, MldQuery.DecodeMaxResponseCode((ushort)code));

    [Fact]
    public void A_query_whose_source_list_runs_past_the_message_is_rejected()
    {
        var q = new byte[28];
        q[0] = (byte)Icmpv6Type.MulticastListenerQuery;
        q[27] = 1; // one source, but no room for it
        Assert.False(MldQuery.TryParse(q, out _, out var e));
        Assert.Equal(WireErrorReason.LengthExceedsBuffer, e.Reason);
        Assert.True(MldQuery.TryParse(q.AsSpan(0, 24), out var v1, out _));
        Assert.False(v1.IsVersion2);
    }

    [Fact]
    public void A_written_report_parses_back_with_its_records()
    {
        var buf = new byte[64];
        var groups = new[] { Ipv6Address.Parse("ff02::1:ff00:2"), Ipv6Address.Parse("ff02::1:ff00:4d02") };
        var src = Ipv6Address.Parse("fe80::1");
        int len = Mldv2ReportWriter.Emit(buf, MldField.ChangeToExclude, groups, src, Ipv6Address.AllMldv2Routers);
        Assert.True(Mldv2Report.TryParse(buf.AsSpan(0, len), out var r, out _));
        Assert.True(Icmpv6Message.TryParse(buf.AsSpan(0, len), out var m, out _) && m.ChecksumValid(src, Ipv6Address.AllMldv2Routers));
        Assert.Equal(2, r.RecordCount);
        int at = 0;
        Assert.True(r.TryReadRecord(ref at, out var a));
        Assert.True(r.TryReadRecord(ref at, out var b));
        Assert.Equal((MldField.ChangeToExclude, groups[0], groups[1]), (a.RecordType, a.MulticastAddress, b.MulticastAddress));
    }
}
