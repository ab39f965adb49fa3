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

/// <summary>Loss, reordering, duplication and the recovery machinery.</summary>
public class TcpLossTests
{
    private static Duration S(long s) => Duration.FromSeconds(s);

    [Theory]
    [InlineData(CongestionAlgorithm.Cubic, true)]
    [InlineData(CongestionAlgorithm.NewReno, true)]
    [InlineData(CongestionAlgorithm.Cubic, false)]
    [InlineData(CongestionAlgorithm.NewReno, false)]
    public void Five_percent_loss_each_way_still_delivers_byte_exact(CongestionAlgorithm cc, bool sack)
    {
        var lab = new TcpLab(seed: 7);
        lab.AtoB.Loss = lab.BtoA.Loss = 0.05;
        var o = new TcpSocketOptions { Congestion = cc, SelectiveAck = sack };
        var (c, s, _) = lab.Connect(client: o, server: o);
        Assert.Equal(sack, c.SackEnabled);
        Assert.Equal(cc == CongestionAlgorithm.Cubic ? "cubic" : "newreno", c.CongestionControlName);
        var data = TcpLab.RandomBytes(512 << 10, 2);
        Assert.Equal(data, lab.Transfer(c, s, data, S(600)));
        Assert.True(c.Retransmits > 0);
        Assert.True(c.FastRecoveries > 0, "duplicate ACKs or SACK should trigger fast recovery before any timeout");
    }

    [Fact]
    public void Sack_recovery_repairs_several_holes_in_one_window_without_a_timeout()
    {
        var lab = new TcpLab();
        var (c, s, _) = lab.Connect();
        // Drop the 3rd, 5th and 7th data segments of a burst once each.
        int dataSegments = 0;
        lab.AtoB.Filter = f => !(TcpLab.Tcp(f) is { Len: > 0 } && ++dataSegments is 3 or 5 or 7);
        var data = TcpLab.RandomBytes(40 * 1448, 3);
        Assert.Equal(data, lab.Transfer(c, s, data, S(30)));
        Assert.Equal(0, c.Timeouts);
        Assert.Equal(1, c.FastRecoveries);
        Assert.Equal(3, c.Retransmits);
    }

    [Fact]
    public void Reordering_and_duplication_are_absorbed()
    {
        var lab = new TcpLab(seed: 3);
        lab.AtoB.Reorder = 0.1;
        lab.AtoB.Duplicate = 0.05;
        lab.BtoA.Duplicate = 0.05;
        var (c, s, _) = lab.Connect();
        var data = TcpLab.RandomBytes(300 << 10, 4);
        Assert.Equal(data, lab.Transfer(c, s, data, S(120)));
    }

    [Fact]
    public void A_lost_last_segment_is_recovered_by_the_retransmission_timer_with_backoff()
    {
        var lab = new TcpLab();
        var (c, s, _) = lab.Connect();
        int drops = 0;
        lab.AtoB.Filter = f => !(TcpLab.Tcp(f) is { Len: > 0 } && drops++ < 3); // the only segment, three times
        var data = TcpLab.RandomBytes(100, 5);
        var start = lab.Now;
        Assert.Equal(data, lab.Transfer(c, s, data, S(30), close: false));
        Assert.Equal(3, c.Timeouts);
        // RFC 6298: the handshake's sample sets RTO to its 200 ms floor, then it doubles: 0.2 + 0.4 + 0.8 s.
        Assert.InRange((lab.Now - start).TotalSeconds, 1.4, 1.5);
    }

    [Fact]
    public void Too_many_retransmissions_abort_the_connection()
    {
        var lab = new TcpLab();
        var o = new TcpSocketOptions { MaxRetransmissions = 4 };
        var (c, _, _) = lab.Connect(client: o);
        lab.AtoB.Filter = _ => false;
        c.Send(new byte[10]);
        Assert.True(lab.RunUntil(() => c.State == TcpState.Closed, S(600)));
        Assert.Equal(TcpError.TimedOut, c.Error);
        Assert.Equal(4, c.Timeouts - 1);
    }

    [Fact]
    public void The_user_timeout_aborts_when_data_stays_unacknowledged()
    {
        var lab = new TcpLab();
        var (c, _, _) = lab.Connect(client: new TcpSocketOptions { UserTimeout = S(5) });
        lab.AtoB.Filter = _ => false;
        var start = lab.Now;
        c.Send(new byte[10]);
        Assert.True(lab.RunUntil(() => c.State == TcpState.Closed, S(600)));
        Assert.Equal(TcpError.TimedOut, c.Error);
        Assert.InRange((lab.Now - start).TotalSeconds, 5.0, 16.0); // at the first timeout after 5 s
    }

    [Fact]
    public void Sequence_numbers_wrap_around_2_to_the_32()
    {
        var lab = new TcpLab();
        lab.StackA.IssOverride = () => uint.MaxValue - 5000;
        lab.StackB.IssOverride = () => uint.MaxValue - 70000;
        lab.AtoB.Loss = 0.02;
        var (c, s, _) = lab.Connect();
        var up = TcpLab.RandomBytes(256 << 10, 6);
        var down = TcpLab.RandomBytes(256 << 10, 7);
        Assert.Equal(up, lab.Transfer(c, s, up, S(120), close: false));
        Assert.Equal(down, lab.Transfer(s, c, down, S(120), close: false));
        Assert.True(c.SndUna < 1_000_000 && s.SndUna < 1_000_000, "both directions crossed zero");
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Randomized_transfers_are_byte_exact(int first)
    {
        for (int seed = first; seed < first + 25; seed++)
        {
            var r = new Random(seed);
            var lab = new TcpLab(seed);
            lab.AtoB.Loss = r.NextDouble() * 0.10;
            lab.BtoA.Loss = r.NextDouble() * 0.10;
            lab.AtoB.Reorder = r.NextDouble() * 0.1;
            lab.AtoB.Duplicate = r.NextDouble() * 0.05;
            lab.BtoA.Duplicate = r.NextDouble() * 0.05;
            lab.AtoB.Jitter = Duration.FromMicroseconds(r.Next(0, 2000));
            var o = new TcpSocketOptions
            {
                SelectiveAck = r.Next(4) != 0, Timestamps = r.Next(4) != 0, WindowScaling = r.Next(4) != 0,
                Congestion = r.Next(2) == 0 ? CongestionAlgorithm.Cubic : CongestionAlgorithm.NewReno,
                ReceiveBufferSize = 1 << r.Next(12, 19), SendBufferSize = 1 << r.Next(12, 19), NoDelay = r.Next(2) == 0,
            };
            var (c, s, _) = lab.Connect(client: o, server: o);
            var data = TcpLab.RandomBytes(r.Next(1, 200_000), seed);
            var got = lab.Transfer(c, s, data, S(3600), readChunk: r.Next(1, 20000));
            Assert.True(data.AsSpan().SequenceEqual(got), $"seed {seed}: {got.Length} of {data.Length} bytes, client {c.State} {c.Error}, server {s.State} {s.Error}");
        }
    }

    public static TheoryData<int> Seeds() => new() { 1000, 1025, 1050, 1075, 1100, 1125, 1150, 1175 };
}
