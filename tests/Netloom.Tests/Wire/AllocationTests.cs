using Netloom.Tests.Support;
using Netloom.Wire;

namespace Netloom.Tests.Wire;

/// <summary>Parsing, emitting and capturing frames allocate nothing per packet in steady state.</summary>
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
        Allocations.AssertFlat(Run, 100_000);
        Assert.True(sink > 0);
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
        Allocations.AssertFlat(Run, 100_000);
        Assert.True(sink > 0);
    }

    [Fact]
    public void Writing_capture_records_allocates_nothing()
    {
        var t0 = Netloom.Time.Instant.FromSeconds(1_700_000_000);
        byte[] small = new byte[60], large = new byte[1514];
        using var ng = new Netloom.Wire.Capture.PcapNgWriter(new MemoryStream(64 << 20));
        ng.AddInterface(Netloom.Wire.Capture.LinkType.Ethernet, "x");
        using var pc = new Netloom.Wire.Capture.PcapWriter(new MemoryStream(64 << 20));
        pc.AddInterface(Netloom.Wire.Capture.LinkType.Ethernet);
        void Run(int n)
        {
            for (int i = 0; i < n; i++) { ng.Write(0, t0, i % 2 == 0 ? small : large); pc.Write(0, t0, small); }
        }
        Allocations.AssertFlat(Run, 20_000);
    }
}
