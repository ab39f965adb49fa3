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
    public void Data_both_ways_under_loss_keeps_every_segment_within_the_mtu()
    {
        // Each side's data segments also carry SACK blocks for the other's holes: the payload shrinks
        // to make room (as Linux's tcp_current_mss), or a full segment would not fit a 1514-byte frame
        // (the lab's device throws on that; a real one refuses it and the connection stalls).
        var lab = new TcpLab(seed: 11);
        lab.AtoB.Loss = lab.BtoA.Loss = 0.03;
        var (c, s, _) = lab.Connect();
        var up = TcpLab.RandomBytes(400 << 10, 3);
        var down = TcpLab.RandomBytes(400 << 10, 4);
        var gotUp = new MemoryStream();
        var gotDown = new MemoryStream();
        var buf = new byte[65536];
        int sentUp = 0, sentDown = 0;
        Assert.True(lab.RunUntil(() =>
        {
            sentUp += c.Send(up.AsSpan(sentUp));
            sentDown += s.Send(down.AsSpan(sentDown));
            int n;
            while ((n = s.Receive(buf)) > 0) gotUp.Write(buf, 0, n);
            while ((n = c.Receive(buf)) > 0) gotDown.Write(buf, 0, n);
            return gotUp.Length == up.Length && gotDown.Length == down.Length;
        }, S(600)), $"stalled: up {gotUp.Length}, down {gotDown.Length}; {c.Describe()}");
        Assert.Equal(up, gotUp.ToArray());
        Assert.Equal(down, gotDown.ToArray());
        Assert.True(c.Retransmits > 0 && s.Retransmits > 0);
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

/// <summary>The state machine's less travelled transitions, and RFC 5961's defences.</summary>
public class TcpStateTests
{
    private static Duration S(long s) => Duration.FromSeconds(s);
    private static Duration Ms(long ms) => Duration.FromMilliseconds(ms);

    [Fact]
    public void Simultaneous_open_reaches_established_on_both_sides()
    {
        var lab = new TcpLab();
        var a = lab.StackA.Connect(TcpLab.IpB, 5000, localPort: 6000);
        var b = lab.StackB.Connect(TcpLab.IpA, 6000, localPort: 5000);
        Assert.True(lab.RunUntil(() => a.State == TcpState.Established && b.State == TcpState.Established, S(10)), $"{a.State} {b.State}");
        var data = TcpLab.RandomBytes(20000, 1);
        Assert.Equal(data, lab.Transfer(a, b, data, S(10), close: false));
    }

    [Fact]
    public void Simultaneous_close_goes_through_closing_to_time_wait_on_both_sides()
    {
        var lab = new TcpLab();
        var (c, s, _) = lab.Connect();
        c.Shutdown();
        s.Shutdown();
        Assert.Equal(TcpState.FinWait1, c.State);
        Assert.True(lab.RunUntil(() => c.State == TcpState.TimeWait && s.State == TcpState.TimeWait, S(5)), $"{c.State} {s.State}");
        Assert.True(lab.RunUntil(() => c.State == TcpState.Closed && s.State == TcpState.Closed, S(61)));
    }

    [Fact]
    public void After_a_half_close_the_other_direction_keeps_flowing()
    {
        var lab = new TcpLab();
        var (c, s, _) = lab.Connect();
        c.Shutdown();
        Assert.True(lab.RunUntil(() => s.ReceiveFinished && c.State == TcpState.FinWait2, S(5)));
        Assert.Equal(TcpState.CloseWait, s.State);
        Assert.Throws<InvalidOperationException>(() => c.Send(new byte[1]));
        var data = TcpLab.RandomBytes(100_000, 2);
        Assert.Equal(data, lab.Transfer(s, c, data, S(30)));
        Assert.True(lab.RunUntil(() => s.State == TcpState.Closed && c.State == TcpState.TimeWait, S(5)));
    }

    [Fact]
    public void A_syn_that_is_never_answered_times_out_after_the_retries()
    {
        var lab = new TcpLab();
        lab.StackB.Listen(80);
        lab.AtoB.Filter = _ => false;
        var c = lab.StackA.Connect(TcpLab.IpB, 80, new TcpSocketOptions { SynRetries = 3 });
        var start = lab.Now;
        Assert.True(lab.RunUntil(() => c.State == TcpState.Closed, S(60)));
        Assert.Equal(TcpError.TimedOut, c.Error);
        Assert.InRange((lab.Now - start).TotalSeconds, 14.9, 15.1); // 1 + 2 + 4 + 8
    }

    [Fact]
    public void A_lost_syn_ack_is_retransmitted_by_the_listener()
    {
        var lab = new TcpLab();
        int synAcks = 0;
        lab.BtoA.Filter = f => !(TcpLab.Tcp(f) is { } t && t.Flags == (TcpFlags.Syn | TcpFlags.Ack) && synAcks++ < 2);
        var (c, s, l) = lab.Connect();
        Assert.Equal(3, synAcks);
        Assert.Equal(TcpState.Established, s.State);
    }

    [Fact]
    public void An_in_window_rst_with_the_wrong_sequence_gets_a_challenge_ack_and_the_connection_survives()
    {
        var lab = new TcpLab { Record = true };
        var (c, s, _) = lab.Connect();
        lab.A.Inject(TcpLab.Forge(c, c.RcvNxt + 100, 0, TcpFlags.Rst));
        lab.Run(Ms(5));
        Assert.Equal(TcpState.Established, c.State);
        Assert.Equal(1, lab.StackA.Counters.TcpChallengeAcks);
        var challenge = lab.Frames.Where(f => f.From == 'A').Select(f => TcpLab.Tcp(f.Frame)).Last();
        Assert.Equal(TcpFlags.Ack, challenge!.Value.Flags);
        Assert.Equal(c.RcvNxt, challenge.Value.Ack);
        var data = TcpLab.RandomBytes(5000, 3);
        Assert.Equal(data, lab.Transfer(c, s, data, S(5), close: false));
    }

    [Fact]
    public void An_out_of_window_rst_is_ignored_and_an_exact_one_resets()
    {
        var lab = new TcpLab();
        var (c, _, _) = lab.Connect();
        lab.A.Inject(TcpLab.Forge(c, c.RcvNxt + 10_000_000, 0, TcpFlags.Rst));
        lab.Run(Ms(5));
        Assert.Equal(TcpState.Established, c.State);
        Assert.Equal(0, lab.StackA.Counters.TcpChallengeAcks);
        lab.A.Inject(TcpLab.Forge(c, c.RcvNxt, 0, TcpFlags.Rst));
        lab.Run(Ms(5));
        Assert.Equal(TcpState.Closed, c.State);
        Assert.Equal(TcpError.Reset, c.Error);
        Assert.Throws<InvalidOperationException>(() => c.Send(new byte[1]));
    }

    [Fact]
    public void A_syn_on_an_established_connection_gets_a_challenge_ack()
    {
        var lab = new TcpLab();
        var (c, _, _) = lab.Connect();
        lab.A.Inject(TcpLab.Forge(c, c.RcvNxt + 5, 0, TcpFlags.Syn));
        lab.Run(Ms(5));
        Assert.Equal(TcpState.Established, c.State);
        Assert.Equal(1, lab.StackA.Counters.TcpChallengeAcks);
    }

    [Fact]
    public void Data_acknowledging_the_future_is_dropped_with_an_ack()
    {
        var lab = new TcpLab();
        var (c, _, _) = lab.Connect();
        lab.A.Inject(TcpLab.Forge(c, c.RcvNxt, c.SndMax + 100_000, TcpFlags.Ack, "evil"u8));
        lab.Run(Ms(5));
        Assert.Equal(0, c.Available);
        Assert.Equal(TcpState.Established, c.State);
    }

    [Fact]
    public void A_zero_window_is_probed_until_the_reader_drains_it()
    {
        var lab = new TcpLab { Record = true };
        var small = new TcpSocketOptions { ReceiveBufferSize = 8192 };
        var (c, s, _) = lab.Connect(server: small);
        var data = TcpLab.RandomBytes(100_000, 4);
        int sent = c.Send(data);
        lab.Run(S(20)); // nobody reads on B
        Assert.Equal(8192, s.Available);
        var probes = lab.Frames.Count(f => f.From == 'A' && TcpLab.Tcp(f.Frame) is { Len: 1 });
        Assert.InRange(probes, 3, 12); // backed off, not a flood
        var got = new MemoryStream();
        var buf = new byte[4096];
        Assert.True(lab.RunUntil(() =>
        {
            if (sent < data.Length) sent += c.Send(data.AsSpan(sent));
            int n;
            while ((n = s.Receive(buf)) > 0) got.Write(buf, 0, n);
            return got.Length == data.Length;
        }, S(60)));
        Assert.Equal(data, got.ToArray());
    }

    [Fact]
    public void Keep_alive_probes_keep_a_live_connection_and_kill_a_dead_one()
    {
        var lab = new TcpLab();
        var ka = new TcpSocketOptions { KeepAlive = true, KeepAliveIdle = S(10), KeepAliveInterval = S(2), KeepAliveProbes = 3 };
        var (c, s, _) = lab.Connect(client: ka);
        lab.Run(S(60));
        Assert.Equal(TcpState.Established, c.State); // B answered every probe
        lab.BtoA.Filter = _ => false;                // now B goes silent
        var start = lab.Now;
        Assert.True(lab.RunUntil(() => c.State == TcpState.Closed, S(60)));
        Assert.Equal(TcpError.TimedOut, c.Error);
        Assert.InRange((lab.Now - start).TotalSeconds, 6.0, 16.1); // what is left of the idle time, then 3 probes 2 s apart
    }

    [Fact]
    public void A_new_syn_may_reuse_a_four_tuple_in_time_wait_when_its_sequence_is_ahead()
    {
        var lab = new TcpLab();
        var l = lab.StackB.Listen(80);
        var c = lab.StackA.Connect(TcpLab.IpB, 80, localPort: 40000);
        TcpSocket? s = null;
        Assert.True(lab.RunUntil(() => c.State == TcpState.Established && l.TryAccept(out s), S(5)));
        s!.Shutdown(); // the server closes first: it holds TIME_WAIT
        Assert.True(lab.RunUntil(() => c.ReceiveFinished, S(5)));
        c.Shutdown();
        Assert.True(lab.RunUntil(() => s.State == TcpState.TimeWait && c.State == TcpState.Closed, S(5)));
        lab.Run(S(1)); // the ISN clock moves on
        var again = lab.StackA.Connect(TcpLab.IpB, 80, localPort: 40000);
        TcpSocket? s2 = null;
        Assert.True(lab.RunUntil(() => again.State == TcpState.Established && l.TryAccept(out s2), S(5)), $"{again.State} {again.Error}");
        Assert.Equal(TcpState.Closed, s.State);
    }

    [Fact]
    public void A_full_syn_queue_answers_with_cookies_and_the_handshake_still_completes()
    {
        var lab = new TcpLab { Record = true };
        var l = lab.StackB.Listen(80, backlog: 8, synQueue: 4);
        // Four half-open connections from spoofed ports that never answer fill the queue.
        for (ushort p = 1; p <= 4; p++)
        {
            var syn = new TcpRepr { SourcePort = p, DestinationPort = 80, SequenceNumber = 1000u * p, Flags = TcpFlags.Syn, Window = 1000, MaxSegmentSize = 1460 };
            var frame = new byte[100];
            int n = FrameBuilder.Tcp(frame, new EthernetRepr(TcpLab.MacA, TcpLab.MacB, EtherType.Ipv4), new Ipv4Repr(TcpLab.IpA, TcpLab.IpB, IpProtocol.Tcp, 0), syn, default);
            lab.B.Inject(frame[..n]);
        }
        lab.AtoB.Filter = null;
        lab.BtoA.Filter = f => TcpLab.Tcp(f) is not { } t || t.Ack >= 5000 || t.Ack == 0; // SYN-ACKs to the spoofed SYNs vanish
        lab.Run(Ms(5));
        Assert.Equal(4, l.HalfOpen);
        var c = lab.StackA.Connect(TcpLab.IpB, 80);
        TcpSocket? s = null;
        Assert.True(lab.RunUntil(() => c.State == TcpState.Established && l.TryAccept(out s), S(5)), $"{c.State}");
        Assert.Equal(1, l.SynCookiesSent);
        Assert.Equal(1, l.SynCookiesAccepted);
        Assert.True(c.SackEnabled && c.TimestampsEnabled, "the timestamp carried SACK and window scale through the cookie");
        var data = TcpLab.RandomBytes(200_000, 5);
        Assert.Equal(data, lab.Transfer(c, s!, data, S(30)));
    }

    [Fact]
    public void An_ack_with_a_forged_cookie_is_answered_with_a_reset()
    {
        var lab = new TcpLab();
        var l = lab.StackB.Listen(80);
        var ack = new TcpRepr { SourcePort = 5555, DestinationPort = 80, SequenceNumber = 1, AcknowledgmentNumber = 12345, Flags = TcpFlags.Ack, Window = 1000 };
        var frame = new byte[100];
        int n = FrameBuilder.Tcp(frame, new EthernetRepr(TcpLab.MacA, TcpLab.MacB, EtherType.Ipv4), new Ipv4Repr(TcpLab.IpA, TcpLab.IpB, IpProtocol.Tcp, 0), ack, default);
        lab.B.Inject(frame[..n]);
        lab.Run(Ms(5));
        Assert.Equal(0, l.Pending);
        Assert.Equal(1, lab.StackB.Counters.TcpResetsOut);
    }

    [Fact]
    public void A_full_accept_queue_drops_new_syns_until_the_application_accepts()
    {
        var lab = new TcpLab();
        var l = lab.StackB.Listen(80, backlog: 2);
        var clients = Enumerable.Range(0, 3).Select(_ => lab.StackA.Connect(TcpLab.IpB, 80)).ToList();
        lab.Run(S(2));
        Assert.Equal(2, l.Pending); // the third handshake's ACK was dropped: it waits in the SYN queue
        Assert.Equal(1, l.HalfOpen);
        Assert.True(l.Dropped > 0);
        Assert.True(l.TryAccept(out _));
        // The listener's SYN-ACK retransmission draws a fresh ACK, and the third connection completes.
        Assert.True(lab.RunUntil(() => l.Pending == 2, S(10)));
        Assert.Equal(0, l.HalfOpen);
    }

    [Fact]
    public void Acks_are_delayed_for_a_lone_segment_and_immediate_for_every_second()
    {
        var lab = new TcpLab { Record = true };
        var (c, s, _) = lab.Connect(server: new TcpSocketOptions { QuickAcks = 0 });
        lab.Frames.Clear();
        c.Send(new byte[100]);
        var sentAt = lab.Now;
        lab.RunUntil(() => lab.Frames.Any(f => f.From == 'B'), S(1));
        var delay = lab.Now - sentAt;
        Assert.InRange(delay.Milliseconds, 39, 42); // the 40 ms delayed ACK (plus the link)
        lab.Frames.Clear();
        c.NoDelay = true;
        c.Send(new byte[2 * c.MaxSegmentSize]);
        sentAt = lab.Now;
        lab.RunUntil(() => lab.Frames.Any(f => f.From == 'B'), S(1));
        Assert.True((lab.Now - sentAt).Milliseconds < 5, "the second full segment is acknowledged at once");
    }

    [Fact]
    public void Nagle_holds_small_writes_while_data_is_outstanding_and_no_delay_sends_them()
    {
        var lab = new TcpLab { Record = true };
        var (c, _, _) = lab.Connect();
        lab.Frames.Clear();
        c.Send(new byte[10]);
        c.Send(new byte[10]);
        c.Send(new byte[10]);
        Assert.Equal(1, lab.Frames.Count(f => f.From == 'A')); // the first went, the rest wait for its ACK
        lab.Run(Ms(50));
        Assert.Equal(20, lab.Frames.Where(f => f.From == 'A').Select(f => TcpLab.Tcp(f.Frame)!.Value.Len).Sum() - 10);
        lab.Frames.Clear();
        c.NoDelay = true;
        c.Send(new byte[10]);
        c.Send(new byte[10]);
        Assert.Equal(2, lab.Frames.Count(f => f.From == 'A'));
    }

    [Fact]
    public void The_short_tail_of_a_write_follows_its_full_segments_at_once_as_in_minshalls_nagle()
    {
        // A request longer than one segment (memcached's set of a 2 KB value): classic Nagle held
        // its short tail until the full segment's ACK, which the peer delays up to its timer.
        var lab = new TcpLab { Record = true };
        var (c, _, _) = lab.Connect();
        lab.Frames.Clear();
        c.Send(new byte[c.MaxSegmentSize + 100]);
        var sent = lab.Frames.Where(f => f.From == 'A').Select(f => TcpLab.Tcp(f.Frame)!.Value.Len).ToList();
        Assert.Equal([c.MaxSegmentSize, 100], sent);
        // The 100-byte segment is now a short one in flight: a further short write waits for its ACK.
        c.Send(new byte[10]);
        Assert.Equal(2, lab.Frames.Count(f => f.From == 'A'));
        lab.Run(Ms(50));
        Assert.Equal(10, TcpLab.Tcp(lab.Frames.Last(f => f.From == 'A' && TcpLab.Tcp(f.Frame)!.Value.Len > 0).Frame)!.Value.Len);
    }

    [Fact]
    public void Closing_with_unread_data_resets_the_connection()
    {
        var lab = new TcpLab();
        var (c, s, _) = lab.Connect();
        c.Send(new byte[100]);
        lab.Run(Ms(50));
        s.Close();
        Assert.Equal(TcpError.Aborted, s.Error);
        Assert.True(lab.RunUntil(() => c.State == TcpState.Closed, S(1)));
        Assert.Equal(TcpError.Reset, c.Error);
    }

    [Fact]
    public void The_receive_window_autotunes_up_to_the_buffer_for_a_fast_reader()
    {
        var lab = new TcpLab();
        var big = new TcpSocketOptions { ReceiveBufferSize = 4 << 20, InitialReceiveWindow = 64 << 10 };
        var (c, s, _) = lab.Connect(server: big);
        Assert.Equal(64 << 10, s.ReceiveWindowLimit);
        var data = TcpLab.RandomBytes(8 << 20, 6);
        Assert.Equal(data, lab.Transfer(c, s, data, S(60)));
        Assert.True(s.ReceiveWindowLimit > 256 << 10, $"window limit {s.ReceiveWindowLimit}");
    }

    [Fact]
    public void Memory_is_bounded_by_the_connection_table()
    {
        var lab = new TcpLab(tweak: o => o with { TcpConnections = 4 });
        lab.StackB.Listen(80);
        for (int i = 0; i < 4; i++) lab.StackA.Connect(TcpLab.IpB, 80);
        var e = Assert.Throws<InvalidOperationException>(() => lab.StackA.Connect(TcpLab.IpB, 80));
        Assert.Contains("TcpConnections", e.Message);
    }
}
