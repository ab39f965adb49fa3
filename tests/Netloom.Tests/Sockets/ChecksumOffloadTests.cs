using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Stack.Devices;
using Netloom.Tests.Support;
using Netloom.Time;
using Netloom.Wire;
using Netloom.Wire.Capture;
using Xunit.Abstractions;

namespace Netloom.Tests.Sockets;

/// <summary>
/// The checksum capability between two Netloom ends over shm: only when both ends declare it
/// do stacks leave TCP/UDP checksums out and not verify them. Two real stacks in two processes:
/// `netloom host` (the shm server, serving TCP and UDP echo) and a <see cref="NetStack"/> here.
/// </summary>
public class ChecksumOffloadTests(ITestOutputHelper output)
{
    private static readonly Ipv4Address Here = Ipv4Address.Parse("10.61.0.1"), There = Ipv4Address.Parse("10.61.0.2");
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    private sealed class Lab : IDisposable
    {
        public readonly ChildProcess Child;
        public readonly ShmPort Port;
        public readonly NetStack Stack;
        private readonly ICaptureWriter? _capture;

        public Lab(bool childDeclares, bool weDeclare, string? pcap = null)
        {
            string spec = $"shm:csum{Guid.NewGuid():N}"[..22];
            var args = new List<string> { "host", "--port", spec, "--ip", $"{There}/24", "--no-ip6", "--serve", "tcp-echo:7", "--serve", "udp-echo:9", "--duration", "180" };
            if (!childDeclares) args.Add("--full-checksums");
            Child = ChildProcess.Netloom([.. args]);
            var sw = Stopwatch.StartNew();
            while (!Child.Output.Contains("Ctrl-C to stop") && !Child.HasExited && sw.Elapsed < Limit) Thread.Sleep(20);
            Assert.True(Child.Output.Contains("Ctrl-C to stop"), "the host never started: " + Child.Output);
            Port = ShmPort.Open(PortSpec.Parse(spec), new PortOptions { ChecksumOffload = weDeclare });
            Assert.False(Port.IsServer, "the child should be the shm server");
            if (pcap is not null) _capture = CaptureWriter.Create(pcap);
            var cap = _capture;
            Stack = new NetStack(Port, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:61:01"), Address = Here },
                new NetStackOptions { Seed = 1, Device = cap is null ? null : (d, clock) => new CaptureDevice(d, cap, clock) });
        }

        public long LeftOut { get { using (Stack.Lock.EnterScope()) return Stack.Interface.ChecksumsLeftOut; } }
        public long NotVerified { get { using (Stack.Lock.EnterScope()) return Stack.Interface.ChecksumsNotVerified; } }
        public long BadChecksums { get { using (Stack.Lock.EnterScope()) return Stack.Interface.Counters.Drops(StackDrop.BadChecksum); } }

        /// <summary>Stops the child with SIGTERM (which `netloom host` ends on as on Ctrl-C) and returns its (left out, not verified) counters.</summary>
        public (long LeftOut, long NotVerified) StopChild()
        {
            Process.Start("kill", ["-TERM", Child.Id.ToString()])!.WaitForExit();
            Assert.True(Child.WaitForExit(30_000), "the host did not stop: " + Child.Output);
            var m = Regex.Match(Child.Output, @"checksum offload: ([\d,]+) TCP/UDP checksums left out, ([\d,]+) not verified");
            Assert.True(m.Success, Child.Output);
            return (long.Parse(m.Groups[1].Value.Replace(",", "")), long.Parse(m.Groups[2].Value.Replace(",", "")));
        }

        public void Dispose()
        {
            Stack.Dispose();
            _capture?.Dispose();
            Child.Dispose();
        }
    }

    /// <summary>4 MiB through TCP echo and 200 UDP echoes, each checked byte for byte (sha256).</summary>
    private static async Task Transfer(NetStack stack)
    {
        var data = new byte[4 << 20];
        new Random(61).NextBytes(data);
        await using var c = await stack.ConnectAsync(There, 7).AsTask().WaitAsync(Limit);
        var back = new MemoryStream();
        var reader = Task.Run(async () =>
        {
            var buf = new byte[65536];
            while (back.Length < data.Length)
            {
                int n = await c.ReadAsync(buf);
                if (n == 0) break;
                back.Write(buf, 0, n);
            }
        });
        for (int i = 0; i < data.Length; i += 100_000) await c.WriteAsync(data.AsMemory(i, Math.Min(100_000, data.Length - i)));
        await reader.WaitAsync(Limit);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(back.ToArray()));

        using var u = stack.OpenUdp();
        var sent = new MemoryStream();
        var got = new MemoryStream();
        var reply = new byte[2048];
        var rng = new Random(62);
        for (int i = 0; i < 200; i++)
        {
            var d = new byte[rng.Next(1, 1400)];
            rng.NextBytes(d);
            sent.Write(d);
            Assert.True(u.SendTo(d, There, 9));
            var (n, from, port) = await u.ReceiveFromAsync(reply).AsTask().WaitAsync(Limit);
            Assert.Equal(There, from);
            Assert.Equal(9, port);
            got.Write(reply, 0, n);
        }
        Assert.Equal(SHA256.HashData(sent.ToArray()), SHA256.HashData(got.ToArray()));
    }

    [Fact]
    public async Task When_both_ends_declare_it_both_stacks_leave_checksums_out_and_transfers_stay_exact()
    {
        using var dir = new TempDir();
        string pcap = dir.File("offload.pcapng");
        long leftOut, notVerified;
        (long LeftOut, long NotVerified) child;
        using (var lab = new Lab(childDeclares: true, weDeclare: true, pcap))
        {
            Assert.True(lab.Port.ChecksumOffload);
            await Transfer(lab.Stack);
            // The connection's close goes on after Transfer returns: stop the host first, let this
            // stack take what the host sent last, then read this side's counters.
            child = lab.StopChild();
            Thread.Sleep(300);
            leftOut = lab.LeftOut;
            notVerified = lab.NotVerified;
            Assert.Equal(0, lab.BadChecksums);
        }
        output.WriteLine($"here: {leftOut} left out, {notVerified} not verified; the host: {child.LeftOut} left out, {child.NotVerified} not verified");
        // Every TCP segment and UDP datagram each side sent went out without its checksum, and the
        // other side took every one unverified (this side's echoes came back marked).
        Assert.True(leftOut > 200, $"{leftOut} left out here");
        Assert.True(notVerified > 200, $"{notVerified} not verified here");
        Assert.True(child.LeftOut > 200 && child.NotVerified > 200, $"the host: {child}");
        // Each side took unverified exactly what the other left out (this side may have sent a few
        // last segments, such as a FIN retransmission, after the host stopped reading).
        Assert.Equal(child.LeftOut, notVerified);
        Assert.InRange(leftOut - child.NotVerified, 0, 10);

        // A capture on such a port shows the partial sums (as tcpdump does with TX offload):
        // the TCP/UDP frames do not verify as captured, and do once the sum is completed.
        var (tcpUdp, verify, completed) = Captured(pcap);
        Assert.True(tcpUdp > 400, $"{tcpUdp} TCP/UDP frames captured");
        Assert.True(verify < tcpUdp / 100 + 1, $"{verify} of {tcpUdp} captured frames verify as they are"); // a pseudo-header sum is rarely right by chance
        Assert.Equal(tcpUdp, completed);
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public async Task When_one_end_does_not_declare_it_checksums_are_full_and_verified_both_ways(bool childDeclares, bool weDeclare)
    {
        using var dir = new TempDir();
        string pcap = dir.File("full.pcapng");
        (long LeftOut, long NotVerified) child;
        using (var lab = new Lab(childDeclares, weDeclare, pcap))
        {
            Assert.False(lab.Port.ChecksumOffload);
            await Transfer(lab.Stack);
            Assert.Equal(0, lab.LeftOut);
            Assert.Equal(0, lab.NotVerified);
            Assert.Equal(0, lab.BadChecksums);
            child = lab.StopChild();
        }
        Assert.Equal((0L, 0L), child);
        // The stack's own verifier over the capture: every TCP and UDP frame, both directions, verifies.
        var (tcpUdp, verify, _) = Captured(pcap);
        Assert.True(tcpUdp > 400, $"{tcpUdp} TCP/UDP frames captured");
        Assert.Equal(tcpUdp, verify);
    }

    /// <summary>TCP/UDP frames in a capture, how many verify as captured, and how many verify as captured or once completed.</summary>
    private static (int TcpUdp, int Verify, int Completed) Captured(string pcap)
    {
        int tcpUdp = 0, verify = 0, completed = 0;
        using var r = CaptureReader.Open(pcap);
        while (r.Read(out var p) == CaptureReadResult.Packet)
        {
            var frame = p.Data.ToArray();
            if (!PartialChecksum.TryLocate(frame, out _, out _, out _)) continue;
            tcpUdp++;
            var d = DecodedFrame.Decode(frame);
            Assert.True(d.TransportChecksumKnown);
            if (d.TransportChecksumOk)
            {
                verify++; // sent with a full checksum (a SYN that waited for ARP), or a partial sum right by chance
                completed++;
                continue;
            }
            Assert.True(PartialChecksum.Complete(frame));
            if (DecodedFrame.Decode(frame).TransportChecksumOk) completed++;
        }
        return (tcpUdp, verify, completed);
    }

    /// <summary>
    /// A UDP frame whose checksum is wrong, written raw into one end of a shm port, marked partial
    /// or not, to a stack on the other end: it is taken unverified only when both ends declared
    /// the capability and the frame came marked; in every other case the stack verifies and drops it.
    /// </summary>
    [Theory]
    [InlineData(false, false, true, false)]
    [InlineData(false, true, true, false)]
    [InlineData(true, false, true, false)]
    [InlineData(true, true, false, false)]
    [InlineData(true, true, true, true)]
    public void A_frame_with_a_bad_checksum_is_dropped_unless_both_ends_declared_and_it_came_marked(bool rawDeclares, bool stackDeclares, bool marked, bool taken)
    {
        string spec = $"shm:bad{Guid.NewGuid():N}"[..22];
        using var raw = ShmPort.Open(PortSpec.Parse(spec), new PortOptions { RingSize = 16, ChecksumOffload = rawDeclares });
        using var port = ShmPort.Open(PortSpec.Parse(spec), new PortOptions { ChecksumOffload = stackDeclares });
        for (int i = 0; i < 1000 && !raw.Connected; i++) Thread.Sleep(5);
        Assert.True(raw.Connected);
        Assert.Equal(rawDeclares && stackDeclares, port.ChecksumOffload);
        Assert.Equal(rawDeclares && stackDeclares, raw.ChecksumOffload);
        var mac = MacAddress.Parse("02:00:00:00:62:02");
        var stack = new Interface(new StackOptions { Mac = mac, Address = There }, new PortDevice(port), seed: 1);
        var now = Instant.FromSeconds(1);
        stack.Poll(now);
        var udp = stack.OpenUdp(9);

        var frame = new byte[200];
        int len = FrameBuilder.Udp(frame, new EthernetRepr(MacAddress.Parse("02:00:00:00:62:01"), mac, EtherType.Ipv4),
            new Ipv4Repr(Here, There, IpProtocol.Udp, 0), new UdpRepr(4000, 9, 100), new byte[100]);
        frame[len - 1] ^= 0x5a; // the payload changed after the checksum was computed
        Assert.False(DecodedFrame.Decode(frame.AsSpan(0, len)).TransportChecksumOk);
        var tx = raw.Tx;
        uint head = tx.Head;
        frame.AsSpan(0, len).CopyTo(tx.Buffer(head));
        tx[head].Length = (ushort)len;
        tx[head].Flags = marked ? SlotFlags.ChecksumPartial : SlotFlags.None;
        tx.Release(1);
        raw.TxSync();
        for (int i = 0; i < 100 && stack.Counters.UdpIn + stack.Counters.Drops(StackDrop.BadChecksum) == 0; i++)
        {
            now += Duration.FromMilliseconds(1);
            stack.Poll(now);
            Thread.Sleep(1);
        }
        Assert.Equal(taken ? 0 : 1, stack.Counters.Drops(StackDrop.BadChecksum));
        Assert.Equal(taken ? 1 : 0, stack.Counters.UdpIn);
        Assert.Equal(taken ? 1 : 0, stack.ChecksumsNotVerified);
        Assert.Equal(taken ? 1 : 0, udp.ReceivedDatagrams);
    }

    /// <summary>
    /// An impaired device is a medium that checks: a frame that came marked partial gets its
    /// checksum filled in before the impairments, so the stack behind verifies it (and would see
    /// a corruption).
    /// </summary>
    [Fact]
    public void Behind_an_impaired_device_a_marked_frame_is_filled_in_and_verified()
    {
        string spec = $"shm:imp{Guid.NewGuid():N}"[..22];
        using var raw = ShmPort.Open(PortSpec.Parse(spec), new PortOptions { RingSize = 16, ChecksumOffload = true });
        using var port = ShmPort.Open(PortSpec.Parse(spec), new PortOptions { ChecksumOffload = true });
        for (int i = 0; i < 1000 && !raw.Connected; i++) Thread.Sleep(5);
        Assert.True(port.ChecksumOffload);
        var now = Instant.FromSeconds(1);
        var mac = MacAddress.Parse("02:00:00:00:64:02");
        var device = new ImpairedDevice(new PortDevice(port), Netem.Impairments.None, Netem.Impairments.None, () => now, seed: 3);
        var stack = new Interface(new StackOptions { Mac = mac, Address = There }, device, seed: 1);
        stack.Poll(now);
        stack.OpenUdp(9);

        // A datagram sent as a declaring stack sends it: the pseudo-header sum only, marked.
        var frame = new byte[200];
        var payload = new byte[100];
        new Random(9).NextBytes(payload);
        new EthernetRepr(MacAddress.Parse("02:00:00:00:64:01"), mac, EtherType.Ipv4).Emit(frame);
        new Ipv4Repr(Here, There, IpProtocol.Udp, UdpRepr.HeaderLength + payload.Length).Emit(frame.AsSpan(14));
        payload.CopyTo(frame, 14 + 20 + 8);
        new UdpRepr(4000, 9, payload.Length).EmitPartial(frame.AsSpan(14 + 20), Here, There);
        int len = 14 + 20 + 8 + payload.Length;
        Assert.False(DecodedFrame.Decode(frame.AsSpan(0, len)).TransportChecksumOk);
        var tx = raw.Tx;
        uint head = tx.Head;
        frame.AsSpan(0, len).CopyTo(tx.Buffer(head));
        tx[head].Length = (ushort)len;
        tx[head].Flags = SlotFlags.ChecksumPartial;
        tx.Release(1);
        raw.TxSync();
        for (int i = 0; i < 100 && stack.Counters.UdpIn + stack.Counters.Drops(StackDrop.BadChecksum) == 0; i++)
        {
            now += Duration.FromMilliseconds(1);
            stack.Poll(now);
            Thread.Sleep(1);
        }
        Assert.Equal(1, stack.Counters.UdpIn);
        Assert.Equal(0, stack.Counters.Drops(StackDrop.BadChecksum));
        Assert.Equal(0, stack.ChecksumsNotVerified); // filled in, then verified
    }

    /// <summary>A pipe carries the capability the same way: both ends declare it, or full checksums.</summary>
    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Over_a_pipe_checksums_are_left_out_only_when_both_ends_declare_it(bool aDeclares, bool bDeclares)
    {
        string name = $"csum{Guid.NewGuid():N}"[..20];
        var pa = PipePort.Open(new PortSpec(PortKind.Pipe, name, 0, true), new PortOptions { ChecksumOffload = aDeclares });
        var pb = PipePort.Open(new PortSpec(PortKind.Pipe, name, 0, false), new PortOptions { ChecksumOffload = bDeclares });
        using var _a = pa;
        using var _b = pb;
        Assert.Equal(aDeclares && bDeclares, pa.ChecksumOffload);
        var a = new Interface(new StackOptions { Mac = MacAddress.Parse("02:00:00:00:65:01"), Address = Here }, new PortDevice(pa), seed: 1);
        var b = new Interface(new StackOptions { Mac = MacAddress.Parse("02:00:00:00:65:02"), Address = There }, new PortDevice(pb), seed: 2);
        var now = Instant.FromSeconds(1);
        var listener = b.Listen(80);
        var client = a.Connect(There, 80);
        TcpSocket? server = null;
        for (int i = 0; i < 1000 && !(client.State == TcpState.Established && listener.TryAccept(out server)); i++) { a.Poll(now); b.Poll(now); now += Duration.FromMicroseconds(50); }
        Assert.NotNull(server);
        var data = new byte[1 << 20];
        new Random(65).NextBytes(data);
        var got = new MemoryStream();
        var buf = new byte[65536];
        int sent = 0;
        for (int i = 0; i < 200_000 && got.Length < data.Length; i++)
        {
            if (sent < data.Length) sent += client.Send(data.AsSpan(sent));
            a.Poll(now);
            b.Poll(now);
            now += Duration.FromMicroseconds(50);
            int n;
            while ((n = server!.Receive(buf)) > 0) got.Write(buf, 0, n);
        }
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(got.ToArray()));
        bool both = aDeclares && bDeclares;
        Assert.Equal(both, a.ChecksumsLeftOut > 100);
        Assert.Equal(both, b.ChecksumsNotVerified > 100);
        Assert.Equal(both, b.ChecksumsLeftOut > 0); // the ACKs
        if (!both) Assert.Equal(0, a.ChecksumsLeftOut + a.ChecksumsNotVerified + b.ChecksumsLeftOut + b.ChecksumsNotVerified);
        Assert.Equal(0, b.Counters.Drops(StackDrop.BadChecksum) + a.Counters.Drops(StackDrop.BadChecksum));
    }

    [Fact]
    public void A_partial_checksum_completed_is_the_full_checksum()
    {
        var rng = new Random(5);
        var payload = new byte[777];
        rng.NextBytes(payload);
        var a4 = Ipv4Address.Parse("192.0.2.1");
        var b4 = Ipv4Address.Parse("198.51.100.7");
        var a6 = Ipv6Address.Parse("2001:db8::1");
        var b6 = Ipv6Address.Parse("2001:db8:1::77");
        var tcp = new TcpRepr { SourcePort = 1234, DestinationPort = 80, SequenceNumber = 99, AcknowledgmentNumber = 7, Flags = TcpFlags.Ack | TcpFlags.Psh, Window = 500, PayloadLength = payload.Length };
        var udp = new UdpRepr(53, 5353, payload.Length);
        foreach (bool v6 in new[] { false, true })
        {
            foreach (bool isUdp in new[] { false, true })
            {
                int hl = isUdp ? UdpRepr.HeaderLength : tcp.HeaderLength;
                var full = new byte[hl + payload.Length];
                payload.CopyTo(full, hl);
                var part = (byte[])full.Clone();
                if (isUdp)
                {
                    if (v6) { udp.Emit(full, a6, b6); udp.EmitPartial(part, a6, b6); }
                    else { udp.Emit(full, a4, b4); udp.EmitPartial(part, a4, b4); }
                }
                else
                {
                    if (v6) { tcp.Emit(full, a6, b6); tcp.EmitPartial(part, a6, b6); }
                    else { tcp.Emit(full, a4, b4); tcp.EmitPartial(part, a4, b4); }
                }
                Assert.NotEqual(full, part);
                // Wrap in a frame and complete it as a capture or an impaired link does.
                var ip = new byte[(v6 ? 40 : 20) + part.Length];
                if (v6) new Ipv6Repr(a6, b6, (byte)(isUdp ? IpProtocol.Udp : IpProtocol.Tcp), part.Length, 64).Emit(ip);
                else new Ipv4Repr(a4, b4, isUdp ? IpProtocol.Udp : IpProtocol.Tcp, part.Length, 64).Emit(ip);
                part.CopyTo(ip, v6 ? 40 : 20);
                var frame = new byte[14 + ip.Length];
                new EthernetRepr(MacAddress.Parse("02:00:00:00:00:01"), MacAddress.Parse("02:00:00:00:00:02"), v6 ? EtherType.Ipv6 : EtherType.Ipv4).Emit(frame);
                ip.CopyTo(frame, 14);
                Assert.True(PartialChecksum.Complete(frame));
                Assert.Equal(full, frame[(14 + (v6 ? 40 : 20))..]);
            }
        }
    }
}
