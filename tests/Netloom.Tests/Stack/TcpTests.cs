using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Stack;

/// <summary>TCP between two user-level stacks on a simulated link in virtual time.</summary>
public class TcpTests
{
    private static Duration S(long s) => Duration.FromSeconds(s);

    [Fact]
    public void The_handshake_negotiates_mss_window_scale_sack_and_timestamps()
    {
        var lab = new TcpLab { Record = true };
        var (c, s, _) = lab.Connect();
        Assert.Equal(TcpState.Established, s.State);
        Assert.True(c.SackEnabled && s.SackEnabled && c.TimestampsEnabled && s.TimestampsEnabled);
        Assert.Equal(1460 - 12, c.MaxSegmentSize);
        Assert.Equal(s.ReceiveWindowScale, c.SendWindowScale);
        Assert.True(c.ReceiveWindowScale > 0);
        var syn = TcpLab.Tcp(lab.Frames.First(f => f.From == 'A').Frame)!.Value;
        Assert.Equal(TcpFlags.Syn, syn.Flags);
        var synAck = TcpLab.Tcp(lab.Frames.First(f => f.From == 'B').Frame)!.Value;
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(syn.Seq + 1, synAck.Ack);
    }

    [Fact]
    public void A_megabyte_crosses_byte_exact_and_both_sides_close_cleanly()
    {
        var lab = new TcpLab();
        var (c, s, _) = lab.Connect();
        var data = TcpLab.RandomBytes(1 << 20, 1);
        var got = lab.Transfer(c, s, data, S(60));
        Assert.Equal(data, got);
        Assert.Equal(TcpState.CloseWait, s.State);
        Assert.True(lab.RunUntil(() => c.State == TcpState.FinWait2, S(1)), $"{c.State}");
        s.Shutdown();
        Assert.True(lab.RunUntil(() => s.State == TcpState.Closed && c.State == TcpState.TimeWait, S(10)), $"{c.State} {s.State}");
        Assert.Equal(TcpError.None, s.Error);
        Assert.Equal(0, c.Retransmits);
        Assert.True(lab.RunUntil(() => c.State == TcpState.Closed, S(61)), "TIME_WAIT should end after 2 MSL");
        Assert.Equal(0, lab.StackA.TcpConnectionCount + lab.StackB.TcpConnectionCount);
    }

    [Fact]
    public void Connecting_to_a_closed_port_is_refused()
    {
        var lab = new TcpLab();
        var c = lab.StackA.Connect(TcpLab.IpB, 81);
        Assert.True(lab.RunUntil(() => c.State == TcpState.Closed, S(5)));
        Assert.Equal(TcpError.Refused, c.Error);
    }
}
