using Netloom.Interop.Tests.Support;
using Netloom.Rings;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Interop.Tests.Rings;

/// <summary>A TAP port in a namespace this test makes, with the Linux kernel's stack on the other side.</summary>
public class TapPortTests
{
    private static readonly MacAddress OurMac = MacAddress.Parse("02:4e:4c:00:00:02");

    /// <summary>Receives until <paramref name="match"/> accepts a frame or the time is up.</summary>
    private static bool ReceiveUntil(IPort port, Func<DecodedFrame, bool> match, int ms)
    {
        var end = DateTime.UtcNow.AddMilliseconds(ms);
        while (DateTime.UtcNow < end)
        {
            if (!port.WaitRx(Duration.FromMilliseconds(50))) continue;
            var rx = port.Rx;
            bool found = false;
            for (uint h = rx.Head; h != rx.Tail; h = rx.Next(h))
                found |= match(DecodedFrame.Decode(rx.Packet(h)));
            rx.Release(rx.Space);
            port.RxSync();
            if (found) return true;
        }
        return false;
    }

    [RootFact("ip", "ping")]
    public void Frames_pass_both_ways_between_the_kernel_and_a_tap_port()
    {
        string ns = $"nlT{Environment.ProcessId}";
        string dev = $"nltap{Environment.ProcessId % 100000}";
        int subnet = Environment.ProcessId % 250 + 1;
        var kernelIp = Ipv4Address.Parse($"10.215.{subnet}.1");
        var ourIp = Ipv4Address.Parse($"10.215.{subnet}.2");
        Sh.Ok("ip", "netns", "add", ns);
        try
        {
            using var port = InNamespace.Run(ns, () => Ports.Open($"tap:{dev}"));
            port.WaitMode = WaitMode.Block;
            Sh.Ok("ip", "-n", ns, "addr", "add", $"{kernelIp}/24", "dev", dev);
            Assert.Contains("UP", Sh.Ok("ip", "-n", ns, "link", "show", dev)); // the port brought it up
            Sh.Ok("ip", "-n", ns, "neigh", "replace", ourIp.ToString(), "lladdr", OurMac.ToString(), "dev", dev, "nud", "permanent");
            string kernelMac = Sh.Ok("ip", "netns", "exec", ns, "cat", $"/sys/class/net/{dev}/address").Trim();

            // Kernel to us: ping our address; the echo requests arrive on RX.
            using (var ping = new Background(null, "ip", "netns", "exec", ns, "ping", "-c", "20", "-i", "0.2", ourIp.ToString()))
            {
                Assert.True(ReceiveUntil(port, d => d.Has(FrameLayers.Icmp) && d.Icmp.Type == (byte)IcmpType.EchoRequest
                    && d.Ipv4.Source == kernelIp && d.Ipv4.Destination == ourIp, 5000), "no echo request from the kernel arrived");
            }

            // Us to the kernel: an echo request we build; the kernel's answer proves it arrived.
            var frame = new byte[128];
            int len = FrameBuilder.Icmp(frame, new EthernetRepr(OurMac, MacAddress.Parse(kernelMac), EtherType.Ipv4),
                new Ipv4Repr(ourIp, kernelIp, IpProtocol.Icmp, 0) { Identification = 7 },
                IcmpRepr.Echo(true, 0x4e4c, 1, 0), "netloom tap test"u8);
            var tx = port.Tx;
            frame.AsSpan(0, len).CopyTo(tx.Buffer(tx.Head));
            tx[tx.Head].Length = (ushort)len;
            tx.Release(1);
            Assert.True(port.Flush(Duration.FromSeconds(2)));
            Assert.Equal(1, tx.Counters.Packets);
            Assert.True(ReceiveUntil(port, d => d.Has(FrameLayers.Icmp) && d.Icmp.Type == (byte)IcmpType.EchoReply
                && d.Icmp.Identifier == 0x4e4c && d.Ipv4.Destination == ourIp && d.ChecksumsOk, 5000), "the kernel did not answer our echo request");
            Assert.True(port.Rx.Counters.Packets > 0);
        }
        finally
        {
            Sh.Run("ip", "netns", "del", ns);
        }
    }

    [RootFact("ip", "ping")]
    public void A_frame_for_an_rx_slot_whose_buffer_index_is_not_the_pools_is_dropped_and_counted()
    {
        string ns = $"nlTi{Environment.ProcessId}";
        string dev = $"nltai{Environment.ProcessId % 10000}";
        int subnet = (Environment.ProcessId + 7) % 250 + 1;
        var kernelIp = Ipv4Address.Parse($"10.216.{subnet}.1");
        var ourIp = Ipv4Address.Parse($"10.216.{subnet}.2");
        Sh.Ok("ip", "netns", "add", ns);
        try
        {
            using var port = InNamespace.Run(ns, () => Ports.Open($"tap:{dev}"));
            port.WaitMode = WaitMode.Block;
            Sh.Ok("ip", "-n", ns, "addr", "add", $"{kernelIp}/24", "dev", dev);
            Sh.Ok("ip", "-n", ns, "neigh", "replace", ourIp.ToString(), "lladdr", OurMac.ToString(), "dev", dev, "nud", "permanent");

            // The slot the next frame fills holds buffer 0, the pool's reserved "none" (what a
            // user's swap could leave behind); the fill must not write through it.
            var rx = port.Rx;
            uint slot = rx.Tail, buffer = rx[slot].BufferIndex;
            rx[slot].BufferIndex = 0;
            using (new Background(null, "ip", "netns", "exec", ns, "ping", "-c", "30", "-i", "0.1", ourIp.ToString()))
            {
                var end = DateTime.UtcNow.AddSeconds(5);
                while (rx.Counters.Invalid == 0 && DateTime.UtcNow < end) port.WaitRx(Duration.FromMilliseconds(50));
                Assert.True(rx.Counters.Invalid > 0, "no frame was counted invalid");
                Assert.True(rx.IsEmpty, "a frame was received into a slot whose buffer is not the pool's");
                Assert.Equal(0, rx.Counters.Packets);

                // Given its buffer back, the slot receives again.
                rx[slot].BufferIndex = buffer;
                Assert.True(ReceiveUntil(port, d => d.Has(FrameLayers.Icmp) && d.Ipv4.Destination == ourIp, 5000), "nothing arrived once the slot was repaired");
            }
        }
        finally
        {
            Sh.Run("ip", "netns", "del", ns);
        }
    }

    [RootFact("ip", "/usr/bin/python3")]
    public void A_thread_sleeping_on_the_port_leaves_the_frames_another_thread_reads_whole()
    {
        // netloom run's shape: program threads read the ring under the stack lock while the
        // owner thread sleeps on the port, and a port's wait syncs the ring. Unlocked, the
        // sleeper's sync read(2)s new frames into slots the reader was parsing.
        string ns = $"nlTw{Environment.ProcessId}";
        string dev = $"nltaw{Environment.ProcessId % 10000}";
        int subnet = (Environment.ProcessId + 13) % 250 + 1;
        string kernelIp = $"10.217.{subnet}.1", ourIp = $"10.217.{subnet}.2";
        const int Port = 9000, Payload = 1204;
        Sh.Ok("ip", "netns", "add", ns);
        try
        {
            using var tap = InNamespace.Run(ns, () => Ports.Open($"tap:{dev}"));
            var port = (PortBase)tap;
            port.WaitMode = WaitMode.Block;
            Sh.Ok("ip", "-n", ns, "addr", "add", $"{kernelIp}/24", "dev", dev);
            Sh.Ok("ip", "-n", ns, "neigh", "replace", ourIp, "lladdr", OurMac.ToString(), "dev", dev, "nud", "permanent");
            // Datagrams whose bytes follow from their first four (a sequence number).
            string sender = $$"""
                import socket, struct, time
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                bodies = [bytes((k + i) & 255 for i in range({{Payload - 4}})) for k in range(256)]
                seq, end = 0, time.time() + 4
                while time.time() < end:
                    for _ in range(64):
                        try: s.sendto(struct.pack('>I', seq) + bodies[seq & 255], ('{{ourIp}}', {{Port}}))
                        except OSError: pass
                        seq += 1
                """;
            var ringLock = new Lock();
            bool stop = false;
            var sleeper = new Thread(() => { while (!Volatile.Read(ref stop)) port.WaitRx(Duration.FromMilliseconds(1), ringLock); });
            long whole = 0, broken = 0;
            using (var send = new Background(null, "ip", "netns", "exec", ns, "/usr/bin/python3", "-c", sender))
            {
                sleeper.Start();
                var end = DateTime.UtcNow.AddSeconds(5); // the sender sends for 4
                var rx = port.Rx;
                while (DateTime.UtcNow < end)
                {
                    using (ringLock.EnterScope())
                    {
                        port.RxSync();
                        for (uint h = rx.Head; h != rx.Tail; h = rx.Next(h))
                        {
                            var f = rx.Packet(h);
                            if (f.Length < 14 + 20 + 8 + 4 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 17 || (f[36] << 8 | f[37]) != Port) continue;
                            // Read it twice, a moment apart, as a stack parses and then copies a segment.
                            bool ok = f.Length == 14 + 20 + 8 + Payload && Follows(f[42..]);
                            Thread.SpinWait(200);
                            if (ok && Follows(f[42..])) whole++; else broken++;
                        }
                        rx.Release(rx.Space);
                        port.RxSync();
                    }
                    Thread.Yield();
                }
            }
            Volatile.Write(ref stop, true);
            sleeper.Join();
            Assert.True(whole > 1000, $"only {whole} datagrams arrived");
            Assert.True(broken == 0, $"{broken} of {whole + broken} datagrams changed under the reader");
        }
        finally
        {
            Sh.Run("ip", "netns", "del", ns);
        }

        static bool Follows(ReadOnlySpan<byte> p)
        {
            uint k = (uint)(p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]) & 255;
            for (int i = 4; i < p.Length; i++)
                if (p[i] != (byte)(k + (uint)(i - 4))) return false;
            return true;
        }
    }
}
