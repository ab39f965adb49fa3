using Netloom.Tests.Support;
using Netloom.Wire;

namespace Netloom.Tests.Wire;

/// <summary>Parsing and emitting frames allocate nothing in steady state.</summary>
public class AllocationTests
{
    [Fact]
    public void Decoding_and_emitting_100k_frames_allocates_nothing()
    {
        byte[][] frames = [.. GoldenFrameTests.All.Select(Hex.Bytes)];
        var outBuf = new byte[2048];
        int sink = 0;
        void Run(int n)
        {
            for (int i = 0; i < n; i++)
            {
                var f = frames[i % frames.Length];
                var d = DecodedFrame.Decode(f);
                sink += d.Emit(f, outBuf);
            }
        }
        Run(10_000); // warm up: JIT tiers, statics
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run(100_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(sink > 0);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Building_frames_with_reprs_allocates_nothing()
    {
        var buf = new byte[1600];
        var payload = new byte[1000];
        var eth = new EthernetRepr(MacAddress.Parse("02:00:00:00:00:01"), MacAddress.Parse("02:00:00:00:00:02"), EtherType.Ipv4);
        var ip = new Ipv4Repr(Ipv4Address.Parse("10.0.0.1"), Ipv4Address.Parse("10.0.0.2"), IpProtocol.Tcp, 0);
        var tcp = new TcpRepr { SourcePort = 1, DestinationPort = 2, Flags = TcpFlags.Ack, Timestamp = new TcpTimestamp(1, 2) };
        var udp = new UdpRepr(1, 2, 0);
        int sink = 0;
        void Run(int n)
        {
            for (int i = 0; i < n; i++)
            {
                tcp.SequenceNumber = (uint)i;
                sink += FrameBuilder.Tcp(buf, eth, ip, tcp, payload.AsSpan(0, i % 1000));
                sink += FrameBuilder.Udp(buf, eth, ip, udp, payload.AsSpan(0, i % 1000));
                sink += FrameBuilder.Icmp(buf, eth, ip, IcmpRepr.Echo(true, 1, (ushort)i, 0), payload.AsSpan(0, 56));
            }
        }
        Run(10_000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run(100_000);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(sink > 0);
    }
}
