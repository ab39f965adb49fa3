using Netloom.Emulation.Topology;
using Netloom.Time;
using Xunit.Abstractions;

namespace Netloom.Tests.Emulation;

/// <summary>
/// The emulator's steady state allocates nothing per packet: frames come from the pool, events sit
/// in preallocated slots, the stacks and apps reuse their buffers. Whatever grows must stop
/// growing once the traffic pattern has been seen, so a window after a warm-up allocates well
/// under a byte per packet-hop (a per-packet allocation would cost tens of bytes per hop).
/// </summary>
public class AllocationTests(ITestOutputHelper output)
{
    private const string Yaml = """
        name: alloc
        seed: 3
        duration: 30s
        nodes:
          a1: host
          a2: host
          a3: host
          sa: switch
          ra: router
          rb: router
          sb: switch
          b1: host
          b2: host
          b3: host
        links:
          - {a: a1, b: sa}
          - {a: a2, b: sa}
          - {a: a3, b: sa}
          - {a: sa, b: ra}
          - {a: ra, b: rb, delay: 5ms, jitter: 1ms, loss: 0.5%, rate: 200mbit, queue: 500}
          - {a: rb, b: sb}
          - {a: b1, b: sb}
          - {a: b2, b: sb}
          - {a: b3, b: sb}
        apps:
          - {type: udp, on: a1, to: b1, rate: 20mbit, size: 1200, duration: 30s}
          - {type: udp, on: b2, to: a2, rate: 5mbit, size: 200, duration: 30s}
          - {type: ping, on: a3, to: b3, interval: 10ms, count: 3000}
          - {type: bulk, on: a2, to: b2, duration: 30s}
          - {type: rr, on: a3, to: b1, request: 100, response: 3000, count: 100000, interval: 5ms}
        """;

    [Fact]
    public void Steady_state_allocates_nothing_per_packet_hop()
    {
        var sc = Scenario.Build(TopologyParser.Parse(Yaml, "alloc.yaml"));
        var net = sc.Network;
        // Warm-up: ARP, connections, socket buffers and latency histograms reach their sizes, and the JIT settles.
        net.Run(Duration.FromSeconds(3));
        long hops0 = net.PacketHops, bytes0 = GC.GetAllocatedBytesForCurrentThread();
        net.Run(Duration.FromSeconds(5));
        long bytes = GC.GetAllocatedBytesForCurrentThread() - bytes0, hops = net.PacketHops - hops0;
        double perHop = bytes / (double)hops;
        output.WriteLine($"{hops:N0} packet-hops, {bytes:N0} bytes allocated: {perHop:F3} bytes per hop");
        Assert.True(hops > 100_000, $"only {hops} packet-hops: the traffic did not run");
        foreach (var app in net.Apps) Assert.True(app.Error is null, $"{app.Name}: {app.Error}");
        Assert.True(perHop < 0.1, $"{perHop:F3} bytes allocated per packet-hop in steady state ({bytes:N0} bytes over {hops:N0} hops)");
    }
}
