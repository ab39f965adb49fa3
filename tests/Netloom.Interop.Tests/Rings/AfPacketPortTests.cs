using Netloom.Interop.Tests.Support;
using Netloom.Rings;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Interop.Tests.Rings;

/// <summary>An AF_PACKET port on one end of a veth pair; the kernel's stack is on the other end.</summary>
public class AfPacketPortTests
{
    [RootFact("ip", "ping", "socat")]
    public void Kernel_frames_arrive_and_our_frames_reach_a_kernel_socket()
    {
        using var net = new NetnsPair();
        using var port = InNamespace.Run(net.NsA, () => Ports.Open($"afpacket:{net.IfA}"));
        port.WaitMode = WaitMode.Block;
        string macA = Sh.Ok("ip", "netns", "exec", net.NsA, "cat", $"/sys/class/net/{net.IfA}/address").Trim();
        string macB = Sh.Ok("ip", "netns", "exec", net.NsB, "cat", $"/sys/class/net/{net.IfB}/address").Trim();

        // Kernel to us: B pings A's address; the frames arrive on our RX ring as well.
        using (new Background(null, "ip", "netns", "exec", net.NsB, "ping", "-c", "20", "-i", "0.2", net.IpA))
        {
            bool seen = false;
            var end = DateTime.UtcNow.AddSeconds(5);
            while (!seen && DateTime.UtcNow < end)
            {
                if (!port.WaitRx(Duration.FromMilliseconds(100))) continue;
                var rx = port.Rx;
                for (uint h = rx.Head; h != rx.Tail; h = rx.Next(h))
                {
                    var d = DecodedFrame.Decode(rx.Packet(h));
                    seen |= d.Has(FrameLayers.Icmp) && d.Icmp.Type == (byte)IcmpType.EchoRequest && d.Ipv4.Source.ToString() == net.IpB;
                }
                rx.Release(rx.Space);
                port.RxSync();
            }
            Assert.True(seen, "no echo request from the kernel arrived");
        }

        // Us to the kernel: a UDP datagram we build is delivered to socat listening in B.
        using var listener = new Background(null, "ip", "netns", "exec", net.NsB, "socat", "-u", $"UDP-RECV:7777,bind={net.IpB}", "STDOUT");
        Thread.Sleep(300);
        var frame = new byte[256];
        var payload = "hello from an AF_PACKET ring\n"u8.ToArray();
        int len = FrameBuilder.Udp(frame, new EthernetRepr(MacAddress.Parse(macA), MacAddress.Parse(macB), EtherType.Ipv4),
            new Ipv4Repr(Ipv4Address.Parse(net.IpA), Ipv4Address.Parse(net.IpB), IpProtocol.Udp, 0) { Identification = 1 },
            new UdpRepr(40000, 7777, 0), payload);
        var tx = port.Tx;
        for (int i = 0; i < 3; i++) // a few copies, so one lost to timing cannot fail the test
        {
            frame.AsSpan(0, len).CopyTo(tx.Buffer(tx.Head));
            tx[tx.Head].Length = (ushort)len;
            tx.Release(1);
        }
        Assert.True(port.Flush(Duration.FromSeconds(2)));
        Assert.Equal(3, tx.Counters.Packets);
        var end2 = DateTime.UtcNow.AddSeconds(5);
        while (!listener.Log.Contains("hello from an AF_PACKET ring") && DateTime.UtcNow < end2) Thread.Sleep(50);
        Assert.Contains("hello from an AF_PACKET ring", listener.Log);
    }

    [RootFact("ip", "ping")]
    public void A_frame_for_an_rx_slot_whose_buffer_index_is_not_the_pools_is_dropped_and_counted()
    {
        using var net = new NetnsPair();
        using var port = InNamespace.Run(net.NsA, () => Ports.Open($"afpacket:{net.IfA}"));
        port.WaitMode = WaitMode.Block;

        // The slot the next frame fills holds buffer 0, the pool's reserved "none" (what a
        // user's swap could leave behind); the copy out of the kernel's block must not go there.
        var rx = port.Rx;
        uint slot = rx.Tail, buffer = rx[slot].BufferIndex;
        rx[slot].BufferIndex = 0;
        using (new Background(null, "ip", "netns", "exec", net.NsB, "ping", "-c", "30", "-i", "0.1", net.IpA))
        {
            var end = DateTime.UtcNow.AddSeconds(5);
            while (rx.Counters.Invalid == 0 && DateTime.UtcNow < end) port.WaitRx(Duration.FromMilliseconds(50));
            Assert.True(rx.Counters.Invalid > 0, "no frame was counted invalid");
            Assert.True(rx.IsEmpty, "a frame was received into a slot whose buffer is not the pool's");
            Assert.Equal(0, rx.Counters.Packets);

            // Given its buffer back, the slot receives again.
            rx[slot].BufferIndex = buffer;
            bool seen = false;
            var end2 = DateTime.UtcNow.AddSeconds(5);
            while (!seen && DateTime.UtcNow < end2)
            {
                if (!port.WaitRx(Duration.FromMilliseconds(100))) continue;
                for (uint h = rx.Head; h != rx.Tail; h = rx.Next(h))
                    seen |= DecodedFrame.Decode(rx.Packet(h)).Has(FrameLayers.Icmp);
                rx.Release(rx.Space);
                port.RxSync();
            }
            Assert.True(seen, "nothing arrived once the slot was repaired");
        }
    }
}
