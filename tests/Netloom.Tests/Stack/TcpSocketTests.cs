using System.Reflection;
using System.Text;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Stack;

/// <summary>One socket driven segment by segment through <see cref="TcpSocketHarness"/>: no second stack, no IP layer.</summary>
public class TcpSocketTests
{
    private static TcpSocketOptions Plain(bool keepAlive = false) => new()
    {
        Timestamps = false, SelectiveAck = false, WindowScaling = false,
        KeepAlive = keepAlive, KeepAliveIdle = Duration.FromSeconds(10), KeepAliveInterval = Duration.FromSeconds(1),
    };

    [Fact]
    public void An_active_open_sends_a_syn_with_every_option_and_completes_on_the_syn_ack()
    {
        var h = new TcpSocketHarness();
        var s = h.Connect();
        Assert.Equal(TcpState.SynSent, s.State);
        var syn = Assert.Single(h.Output);
        Assert.Equal(TcpFlags.Syn, syn.Flags);
        Assert.Equal((ushort)1460, syn.Header.MaxSegmentSize);
        Assert.NotNull(syn.Header.WindowScale);
        Assert.True(syn.Header.SackPermitted);
        Assert.NotNull(syn.Header.Timestamp);
        Assert.Equal(1, s.SegmentsOut);

        var synAck = TcpSocketHarness.From(s, 9000, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack);
        synAck.MaxSegmentSize = 1400;
        synAck.WindowScale = 7;
        synAck.SackPermitted = true;
        synAck.Timestamp = new TcpTimestamp(555, syn.Header.Timestamp!.Value.Value);
        h.Deliver(synAck);

        Assert.Equal(TcpState.Established, s.State);
        Assert.True(s.SackEnabled && s.TimestampsEnabled);
        Assert.Equal(7, s.SendWindowScale);
        Assert.Equal(1400 - 12, s.MaxSegmentSize);
        var ack = h.Last;
        Assert.Equal(TcpFlags.Ack, ack.Flags);
        Assert.Equal(syn.Seq + 1, ack.Seq);
        Assert.Equal(9001u, ack.Ack);
        Assert.Equal(555u, ack.Header.Timestamp!.Value.Echo);
    }

    [Fact]
    public void Data_goes_out_with_push_and_is_freed_by_the_ack_and_data_in_is_acknowledged()
    {
        var h = new TcpSocketHarness();
        var s = h.Established(peerIss: 7000, Plain());
        uint iss = s.Iss;
        Assert.Equal(5, s.Send("hello"u8));
        var data = h.Last;
        Assert.Equal(TcpFlags.Ack | TcpFlags.Psh, data.Flags);
        Assert.Equal(iss + 1, data.Seq);
        Assert.Equal("hello", Encoding.ASCII.GetString(data.Payload));
        Assert.Equal(5, s.SendQueued);

        h.Deliver(TcpSocketHarness.From(s, 7001, iss + 6, TcpFlags.Ack));
        Assert.Equal(0, s.SendQueued);
        Assert.Equal(iss + 6, s.SndUna);

        int before = h.Output.Count;
        h.Deliver(TcpSocketHarness.From(s, 7001, iss + 6, TcpFlags.Ack | TcpFlags.Psh), "world"u8);
        Assert.Equal(5, s.Available);
        Assert.Equal(before + 1, h.Output.Count); // a quick ACK (RFC 5681 §4.2's start of a connection)
        Assert.Equal(7006u, h.Last.Ack);
        var buf = new byte[8];
        Assert.Equal("world", Encoding.ASCII.GetString(buf, 0, s.Receive(buf)));
    }

    [Fact]
    public void A_reset_in_window_but_not_at_rcv_nxt_gets_a_challenge_ack_and_only_an_exact_one_resets()
    {
        var h = new TcpSocketHarness();
        var s = h.Established(peerIss: 7000, Plain());
        uint rcvNxt = s.RcvNxt;

        int before = h.Output.Count;
        h.Deliver(TcpSocketHarness.From(s, rcvNxt + 100, 0, TcpFlags.Rst)); // RFC 5961 §3.2: in window, not exact
        Assert.Equal(TcpState.Established, s.State);
        Assert.Equal(before + 1, h.Output.Count);
        Assert.Equal(TcpFlags.Ack, h.Last.Flags);
        Assert.Equal(rcvNxt, h.Last.Ack);
        Assert.Equal(1, h.Counters.TcpChallengeAcks);

        before = h.Output.Count;
        h.Deliver(TcpSocketHarness.From(s, rcvNxt + 1_000_000, 0, TcpFlags.Rst)); // out of window: ignored
        Assert.Equal(TcpState.Established, s.State);
        Assert.Equal(before, h.Output.Count);

        h.Deliver(TcpSocketHarness.From(s, rcvNxt, 0, TcpFlags.Rst));
        Assert.Equal(TcpState.Closed, s.State);
        Assert.Equal(TcpError.Reset, s.Error);
        Assert.Equal(1, h.Counters.TcpResetsIn);
        Assert.Equal(0, h.Table.Count);
    }

    [Fact]
    public void A_closed_window_is_probed_with_one_byte_and_the_rest_follows_when_it_opens()
    {
        var h = new TcpSocketHarness();
        var s = h.Established(peerIss: 7000, Plain(), peerWindow: 0);
        uint iss = s.Iss;
        int before = h.Output.Count;
        s.Send("0123456789"u8);
        Assert.Equal(before, h.Output.Count); // nothing fits a zero window

        h.Advance(Duration.FromSeconds(1));   // the persist timer (RFC 9293 §3.8.6.1)
        var probe = h.Last;
        Assert.Equal(iss + 1, probe.Seq);
        Assert.Equal("0", Encoding.ASCII.GetString(probe.Payload));
        Assert.Equal(iss + 2, s.SndMax);

        h.Deliver(TcpSocketHarness.From(s, 7001, iss + 2, TcpFlags.Ack, window: 1000));
        Assert.Equal("123456789", Encoding.ASCII.GetString(h.Last.Payload));
        Assert.Equal(iss + 2, h.Last.Seq);
    }

    [Fact]
    public void A_listener_answers_a_syn_and_the_final_ack_makes_a_connection()
    {
        var h = new TcpSocketHarness();
        var l = h.Table.Listen(80, 4, Plain(), 0);
        var syn = new TcpRepr { SourcePort = TcpSocketHarness.PeerPort, DestinationPort = 80, SequenceNumber = 100, Flags = TcpFlags.Syn, Window = 65535, MaxSegmentSize = 1460 };
        h.Deliver(syn);
        var synAck = h.Last;
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(101u, synAck.Ack);
        Assert.Equal(1, l.HalfOpen);

        h.Deliver(new TcpRepr { SourcePort = TcpSocketHarness.PeerPort, DestinationPort = 80, SequenceNumber = 101, AcknowledgmentNumber = synAck.Seq + 1, Flags = TcpFlags.Ack, Window = 65535 });
        Assert.True(l.TryAccept(out var s));
        Assert.Equal(TcpState.Established, s.State);
        Assert.Equal(1, h.Table.Count);
    }

    [Fact]
    public void A_segment_for_no_connection_is_answered_with_a_reset_counted_only_when_it_left()
    {
        var h = new TcpSocketHarness { Refuse = true };
        var seg = new TcpRepr { SourcePort = TcpSocketHarness.PeerPort, DestinationPort = 81, SequenceNumber = 5, Flags = TcpFlags.Syn, Window = 100 };
        h.Deliver(seg);
        Assert.Equal(0, h.Counters.TcpResetsOut);
        h.Refuse = false;
        h.Deliver(seg);
        Assert.Equal(1, h.Counters.TcpResetsOut);
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, h.Last.Flags);
        Assert.Equal(6u, h.Last.Ack);
    }

    // ---- the device-full contract: a refused segment changes nothing, is not counted, and goes after the flush ----

    [Fact]
    public void A_refused_persist_probe_does_not_advance_snd_max_nor_count_and_goes_after_the_flush()
    {
        var h = new TcpSocketHarness();
        var s = h.Established(peerIss: 7000, Plain(), peerWindow: 0);
        s.Send("0123456789"u8);
        long segmentsOut = s.SegmentsOut, tcpOut = h.Output.Count;
        uint sndMax = s.SndMax;

        h.Refuse = true;
        h.Advance(Duration.FromSeconds(1));
        Assert.True(h.Refused > 0);
        Assert.Equal(sndMax, s.SndMax);
        Assert.Equal(sndMax, s.SndNxt);
        Assert.Equal(segmentsOut, s.SegmentsOut);
        Assert.True(h.Table.HasBlocked);

        h.Refuse = false;
        h.AfterFlush();
        Assert.Equal(tcpOut + 1, h.Output.Count);
        Assert.Single(h.Last.Payload);
        Assert.Equal(sndMax + 1, s.SndMax);
        Assert.Equal(segmentsOut + 1, s.SegmentsOut);
        Assert.False(h.Table.HasBlocked);
    }

    [Fact]
    public void A_refused_keepalive_probe_is_not_counted_and_goes_after_the_flush()
    {
        var h = new TcpSocketHarness();
        var s = h.Established(peerIss: 7000, Plain(keepAlive: true));
        long segmentsOut = s.SegmentsOut;
        int sent = h.Output.Count;

        h.Refuse = true;
        h.Advance(Duration.FromSeconds(11));
        Assert.True(h.Refused > 0);
        Assert.Equal(segmentsOut, s.SegmentsOut);

        h.Refuse = false;
        h.AfterFlush();
        Assert.Equal(sent + 1, h.Output.Count);
        Assert.Equal(s.SndUna - 1, h.Last.Seq); // RFC 1122 §4.2.3.6: an old sequence number
        Assert.Equal(segmentsOut + 1, s.SegmentsOut);
    }

    [Fact]
    public void A_refused_syn_is_not_counted_and_goes_after_the_flush()
    {
        var h = new TcpSocketHarness { Refuse = true };
        var s = h.Connect(Plain());
        Assert.Equal(TcpState.SynSent, s.State);
        Assert.Empty(h.Output);
        Assert.Equal(0, s.SegmentsOut);

        h.Refuse = false;
        h.AfterFlush();
        var syn = Assert.Single(h.Output);
        Assert.Equal(TcpFlags.Syn, syn.Flags);
        Assert.Equal(s.Iss, syn.Seq);
        Assert.Equal(1, s.SegmentsOut);
    }

    [Fact]
    public void A_refused_reset_reply_is_not_counted_and_goes_after_the_flush()
    {
        var h = new TcpSocketHarness();
        var s = h.Connect(Plain());
        long segmentsOut = s.SegmentsOut;
        h.Refuse = true;
        h.Deliver(TcpSocketHarness.From(s, 1, s.Iss + 1000, TcpFlags.Ack)); // an ACK for what we never sent: RST (RFC 9293 §3.10.7.3)
        Assert.Equal(0, h.Counters.TcpResetsOut);
        Assert.Equal(segmentsOut, s.SegmentsOut);

        h.Refuse = false;
        h.AfterFlush();
        Assert.Equal(TcpFlags.Rst, h.Last.Flags);
        Assert.Equal(s.Iss + 1000, h.Last.Seq);
        Assert.Equal(1, h.Counters.TcpResetsOut);
        Assert.Equal(segmentsOut + 1, s.SegmentsOut);
    }

    [Fact]
    public void A_refused_syn_ack_goes_at_the_listeners_next_timer_turn()
    {
        var h = new TcpSocketHarness { Refuse = true };
        var l = h.Table.Listen(80, 4, Plain(), 0);
        h.Deliver(new TcpRepr { SourcePort = TcpSocketHarness.PeerPort, DestinationPort = 80, SequenceNumber = 100, Flags = TcpFlags.Syn, Window = 65535 });
        Assert.Empty(h.Output);
        Assert.Equal(1, l.HalfOpen);

        h.Refuse = false;
        h.Advance(Duration.FromMilliseconds(1));
        var synAck = Assert.Single(h.Output);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(101u, synAck.Ack);
    }

    [Fact]
    public void Tcp_holds_no_reference_to_the_ipv4_interface_nor_an_ipv4_address()
    {
        foreach (var t in new[] { typeof(TcpSocket), typeof(TcpListenSocket), typeof(TcpTable), typeof(Assembler), typeof(SackScoreboard) })
            foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public))
                Assert.False(f.FieldType == typeof(Interface) || f.FieldType == typeof(Ipv4Address), $"{t.Name}.{f.Name} is {f.FieldType.Name}");
    }

    [Fact]
    public void The_same_socket_runs_between_ipv6_endpoints()
    {
        var local = new IpAddr(new UInt128(0x2001_0db8_0000_0000, 1)); // 2001:db8::1
        var peer = new IpAddr(new UInt128(0x2001_0db8_0000_0000, 2));
        var h = new TcpSocketHarness(local: local, peer: peer);
        var s = h.Established(peerIss: 42, Plain());
        Assert.Equal("[2001:db8::1]:" + s.LocalPort + " -> [2001:db8::2]:5000 Established", s.ToString());
        s.Send("v6"u8);
        Assert.Equal("v6", Encoding.ASCII.GetString(h.Last.Payload));
        h.Deliver(TcpSocketHarness.From(s, 43, s.Iss + 3, TcpFlags.Ack | TcpFlags.Fin));
        Assert.Equal(TcpState.CloseWait, s.State);
        Assert.Equal(0, s.SendQueued);
    }
}
