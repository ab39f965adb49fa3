using Netloom.Emulation;
using Netloom.Emulation.Apps;
using Netloom.Netem;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Emulation;

public class TcpOverLinkTests
{
    /// <summary>
    /// Mathis et al. (1997): a Reno-style flow through random loss p at round-trip time RTT gets
    /// about (MSS/RTT)·C/√p, with C between 0.87 (delayed ACKs, periodic loss) and 1.31 (random
    /// loss) in their measurements. 100 s of virtual time, 20 ms RTT, loss on the data direction.
    /// The flow must land inside C ∈ [0.87, 1.5]: the formula's band with room for SACK recovery,
    /// which Mathis' Reno lacked.
    /// </summary>
    [Theory]
    [InlineData(0.005, CongestionAlgorithm.NewReno)]
    [InlineData(0.01, CongestionAlgorithm.NewReno)]
    [InlineData(0.02, CongestionAlgorithm.NewReno)]
    [InlineData(0.01, CongestionAlgorithm.Cubic)]
    public void Throughput_over_random_loss_is_in_the_Mathis_band(double loss, CongestionAlgorithm cc)
    {
        var tcp = new TcpSocketOptions { Congestion = cc };
        var net = new Network(new NetworkOptions { Seed = 3 });
        var h1 = net.AddHost("h1", Ipv4Address.Parse("10.0.0.1"), configure: o => o with { Tcp = tcp });
        var h2 = net.AddHost("h2", Ipv4Address.Parse("10.0.0.2"), configure: o => o with { Tcp = tcp });
        net.Connect(h1, h2, new Impairments { Delay = Duration.FromMilliseconds(10), Loss = loss }, new Impairments { Delay = Duration.FromMilliseconds(10) });
        var sink = net.Start(new TcpSinkApp("sink", h2, 5001));
        var bulk = net.Start(new BulkSendApp("bulk", h1, new Endpoint(h2.Stack.Address, 5001), 0, Duration.FromSeconds(100), tcp));
        net.Run(Duration.FromSeconds(110));
        var r = bulk.Report(net.Now);
        Assert.True(r.Completed, r.Error);
        double mss = bulk.Socket!.MaxSegmentSize;
        double c = r.ThroughputBitsPerSecond!.Value * 0.020 / (mss * 8) * Math.Sqrt(loss);
        Assert.InRange(c, 0.87, 1.5);
        Assert.True(r.Retransmissions > 0);
        Assert.Equal(sink.BytesReceived, r.Bytes);
    }
}
