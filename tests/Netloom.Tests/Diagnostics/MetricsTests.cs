using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Netloom.Diagnostics;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Switching;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Diagnostics;

/// <summary>
/// The "Netloom" meter as dotnet-counters or OpenTelemetry would read it: a MeterListener
/// collects the observable instruments, and each value matches the snapshot the API hands out.
/// Other tests run stacks and switches at the same time, so every lookup filters on this test's tags.
/// </summary>
public sealed class MetricsTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    /// <summary>Collects every Netloom instrument once: (instrument, tags) to value.</summary>
    private sealed class Reader : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly List<(string Name, string? Unit, Dictionary<string, object?> Tags, long Value)> _seen = [];

        public Reader()
        {
            _listener.InstrumentPublished = static (instrument, l) =>
            {
                if (instrument.Meter.Name == "Netloom") l.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            {
                var d = new Dictionary<string, object?>();
                foreach (var t in tags) d[t.Key] = t.Value;
                lock (_seen) _seen.Add((instrument.Name, instrument.Unit, d, value));
            });
            _listener.Start();
        }

        public void Collect()
        {
            lock (_seen) _seen.Clear();
            _listener.RecordObservableInstruments();
        }

        /// <summary>The value of <paramref name="name"/> for the measurement carrying all of <paramref name="tags"/>; null when none does.</summary>
        public long? Value(string name, params (string Key, object Value)[] tags)
        {
            lock (_seen)
            {
                var hits = _seen.Where(m => m.Name == name && tags.All(t => m.Tags.TryGetValue(t.Key, out var v) && Equals(v, t.Value))).ToList();
                Assert.True(hits.Count <= 1, $"{hits.Count} measurements of {name} match");
                return hits.Count == 0 ? null : hits[0].Value;
            }
        }

        public string? Unit(string name)
        {
            lock (_seen) return _seen.FirstOrDefault(m => m.Name == name).Unit;
        }

        public void Dispose() => _listener.Dispose();
    }

    [Fact]
    public async Task Stack_and_port_instruments_match_the_snapshots()
    {
        using var reader = new Reader();
        var (portA, portB) = PipePort.OpenPair($"met{Guid.NewGuid():N}");
        var a = new NetStack(portA, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:71:01"), Address = Ipv4Address.Parse("10.113.0.1") }, new NetStackOptions { Seed = 1 });
        var b = new NetStack(portB, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:71:02"), Address = Ipv4Address.Parse("10.113.0.2") }, new NetStackOptions { Seed = 2 });
        using (a)
        using (b)
        {
            using var server = b.OpenUdp(7000);
            using var client = a.OpenUdp();
            for (int i = 0; i < 5; i++)
            {
                Assert.True(client.SendTo("hello"u8, b.Address, 7000));
                await server.ReceiveFromAsync(new byte[64]).AsTask().WaitAsync(Limit);
            }
            Assert.True(client.SendTo("nobody"u8, b.Address, 9)); // a closed port: a drop and an ICMP error
            var deadline = DateTime.UtcNow + Limit;
            while (b.GetCounters().Drops(StackDrop.ClosedPort) == 0 || a.GetCounters().IcmpIn == 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the datagram to a closed port was not dropped and answered");
                await Task.Delay(5);
            }
            // A TCP connection too, so the TCP instruments have something to show.
            using var l = b.Listen(80);
            var accept = l.AcceptAsync();
            await using var c = await a.ConnectAsync(b.Address, 80).AsTask().WaitAsync(Limit);
            await using var s = await accept.AsTask().WaitAsync(Limit);

            StackCountersSnapshot ca, cb;
            RingCountersSnapshot rxA, txA;
            lock (a.Lock)
            lock (b.Lock) // the owners are stopped at the lock: snapshots and instruments read the same values
            {
                reader.Collect();
                ca = a.GetCounters();
                cb = b.GetCounters();
            }
            string sa = a.Address.ToString(), sb = b.Address.ToString();
            Assert.Equal(ca.FramesIn, reader.Value("netloom.stack.frames.in", ("netloom.stack", sa), ("netloom.port", portA.Name)));
            Assert.Equal(ca.FramesOut, reader.Value("netloom.stack.frames.out", ("netloom.stack", sa)));
            Assert.Equal(ca.ArpOut, reader.Value("netloom.stack.arp.out", ("netloom.stack", sa)));
            Assert.Equal(ca.Ipv4Out, reader.Value("netloom.stack.ipv4.out", ("netloom.stack", sa)));
            Assert.Equal(ca.UdpOut, reader.Value("netloom.stack.udp.out", ("netloom.stack", sa)));
            Assert.Equal(ca.IcmpIn, reader.Value("netloom.stack.icmp.in", ("netloom.stack", sa)));
            Assert.Equal(cb.UdpIn, reader.Value("netloom.stack.udp.in", ("netloom.stack", sb)));
            Assert.Equal(cb.IcmpOut, reader.Value("netloom.stack.icmp.out", ("netloom.stack", sb)));
            Assert.Equal(6, cb.UdpIn);
            Assert.Equal(1L, reader.Value("netloom.stack.drops", ("netloom.stack", sb), ("netloom.drop.reason", "closed_port")));
            Assert.Equal(0L, reader.Value("netloom.stack.drops", ("netloom.stack", sb), ("netloom.drop.reason", "bad_checksum")));
            Assert.Equal(ca.TcpOut, reader.Value("netloom.tcp.segments.out", ("netloom.stack", sa)));
            Assert.Equal(cb.TcpIn, reader.Value("netloom.tcp.segments.in", ("netloom.stack", sb)));
            Assert.Equal(1L, reader.Value("netloom.tcp.opens.active", ("netloom.stack", sa)));
            Assert.Equal(1L, reader.Value("netloom.tcp.opens.passive", ("netloom.stack", sb)));
            Assert.Equal(1L, reader.Value("netloom.tcp.connections", ("netloom.stack", sa)));
            Assert.Equal(0L, reader.Value("netloom.tcp.retransmits", ("netloom.stack", sa)));
            Assert.Equal("{frame}", reader.Unit("netloom.stack.frames.in"));

            // The port under stack A: its rings' counters, tagged with the port's name.
            lock (a.Lock)
            {
                reader.Collect();
                rxA = portA.Rx.GetCounters();
                txA = portA.Tx.GetCounters();
            }
            string pa = portA.Name;
            Assert.Equal(rxA.Packets, reader.Value("netloom.port.rx.packets", ("netloom.port", pa)));
            Assert.Equal(txA.Packets, reader.Value("netloom.port.tx.packets", ("netloom.port", pa)));
            Assert.Equal(txA.Bytes, reader.Value("netloom.port.tx.bytes", ("netloom.port", pa)));
            Assert.Equal(ca.FramesOut, txA.Packets);
            Assert.Equal("By", reader.Unit("netloom.port.tx.bytes"));
        }

        // Disposed stacks and their ports leave the meter.
        reader.Collect();
        Assert.Null(reader.Value("netloom.stack.frames.in", ("netloom.stack", a.Address.ToString())));
        Assert.Null(reader.Value("netloom.port.tx.packets", ("netloom.port", portA.Name)));
    }

    [Fact]
    public void Switch_instruments_count_per_port_forwarded_flooded_and_drops_by_reason()
    {
        using var reader = new Reader();
        string tag = Guid.NewGuid().ToString("N")[..12];
        var hosts = new List<PipePort>();
        var sw = new Switch(batch: 64);
        for (int i = 0; i < 3; i++)
        {
            var (host, port) = PipePort.OpenPair($"msw{tag}-{i}");
            hosts.Add(host);
            sw.AddPort(port, $"m{tag}-{i}");
        }
        try
        {
            Send(hosts[0], MacAddress.Broadcast, MacAddress.FromUInt64(0x0200_0000_0001), 64); // flooded to ports 1 and 2
            Send(hosts[1], MacAddress.FromUInt64(0x0200_0000_0001), MacAddress.FromUInt64(0x0200_0000_0002), 64); // learned: to port 0
            Send(hosts[2], MacAddress.Broadcast, MacAddress.Broadcast, 10); // too short
            sw.Forward(Instant.FromSeconds(1));
            reader.Collect();
            for (int i = 0; i < 3; i++)
            {
                var c = sw.Counters(i);
                (string, object)[] t = [("netloom.switch.port", $"m{tag}-{i}")];
                Assert.Equal(c.RxPackets, reader.Value("netloom.switch.port.rx.packets", t));
                Assert.Equal(c.TxPackets, reader.Value("netloom.switch.port.forwarded", t));
                Assert.Equal(c.TxBytes, reader.Value("netloom.switch.port.forwarded.bytes", t));
                Assert.Equal(c.Flooded, reader.Value("netloom.switch.port.flooded", t));
                Assert.Equal(c.Drops(DropReason.TooShort), reader.Value("netloom.switch.port.drops", [.. t, ("netloom.drop.reason", "too_short")]));
                Assert.Equal(c.Drops(DropReason.TxRingFull), reader.Value("netloom.switch.port.drops", [.. t, ("netloom.drop.reason", "tx_ring_full")]));
            }
            Assert.Equal(1, sw.Counters(1).Flooded);
            Assert.Equal(1, sw.Counters(0).TxPackets);
            Assert.Equal(1L, reader.Value("netloom.switch.port.drops", ("netloom.switch.port", $"m{tag}-2"), ("netloom.drop.reason", "too_short")));
            // The switch's ports publish their rings as well.
            Assert.Equal(sw.Port(0).Rx.GetCounters().Packets, reader.Value("netloom.port.rx.packets", ("netloom.port", sw.Port(0).Name)));
        }
        finally
        {
            sw.Dispose();
            foreach (var h in hosts) h.Dispose();
        }
        reader.Collect();
        Assert.Null(reader.Value("netloom.switch.port.rx.packets", ("netloom.switch.port", $"m{tag}-0")));
    }

    private static void Send(PipePort h, MacAddress dst, MacAddress src, int length)
    {
        var tx = h.Tx;
        var buf = tx.Buffer(tx.Head);
        buf[..length].Clear();
        if (length >= 14)
        {
            dst.Write(buf);
            src.Write(buf[6..]);
            buf[12] = 0x88; buf[13] = 0xb5;
        }
        tx[tx.Head].Length = (ushort)length;
        tx.Release(1);
        h.TxSync();
    }

    [Fact]
    public void The_meter_does_not_keep_an_undisposed_stack_alive()
    {
        var weak = RegisterAndDrop();
        for (int i = 0; i < 5 && weak.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(weak.IsAlive, "the meter's registration kept the interface alive");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference RegisterAndDrop()
    {
        var (pa, pb) = PipePort.OpenPair($"weak{Guid.NewGuid():N}");
        pb.Dispose();
        var iface = new Interface(new StackOptions { Mac = MacAddress.Parse("02:00:00:00:72:01"), Address = Ipv4Address.Parse("10.114.0.1") }, new PortDevice(pa));
        _ = StackMetrics.Register(iface); // never disposed: only the weak reference remains
        _ = PortMetrics.Register(pa);
        pa.Dispose();
        return new WeakReference(iface);
    }

    [Fact]
    public void Offload_servers_publish_what_their_reading_function_returns()
    {
        using var reader = new Reader();
        var server = new object();
        string name = $"127.0.0.1:{Random.Shared.Next(1, 65535)}-{Guid.NewGuid():N}";
        using (OffloadMetrics.Register(server, name, static _ => new OffloadReading(Accepted: 3, Requests: 10, Enters: 4, ZeroCopySends: 0, BundleSends: 2, BundleBatches: 5, BundleFaults: 0)))
        {
            reader.Collect();
            Assert.Equal(3L, reader.Value("netloom.offload.connections.accepted", ("netloom.offload.server", name)));
            Assert.Equal(10L, reader.Value("netloom.offload.requests", ("netloom.offload.server", name)));
            Assert.Equal(5L, reader.Value("netloom.offload.bundles.batches", ("netloom.offload.server", name)));
        }
        reader.Collect();
        Assert.Null(reader.Value("netloom.offload.requests", ("netloom.offload.server", name)));
        GC.KeepAlive(server);
    }

    [Fact]
    public void The_stack_counts_every_retransmission_of_its_sockets()
    {
        var lab = new Netloom.Tests.Stack.TcpLab();
        var (c, s, _) = lab.Connect();
        // Drop the 3rd, 5th and 7th data segments once each: SACK recovery sends each again.
        int dataSegments = 0;
        lab.AtoB.Filter = f => !(Netloom.Tests.Stack.TcpLab.Tcp(f) is { Len: > 0 } && ++dataSegments is 3 or 5 or 7);
        var data = Netloom.Tests.Stack.TcpLab.RandomBytes(40 * 1448, 3);
        Assert.Equal(data, lab.Transfer(c, s, data, Duration.FromSeconds(30)));
        Assert.Equal(3, c.Retransmits);
        Assert.Equal(3, lab.StackA.GetCounters().TcpRetransmits);
        Assert.Equal(0, lab.StackB.GetCounters().TcpRetransmits);
    }

    [Fact]
    public void Drop_reasons_become_snake_case_tag_values()
    {
        var names = NetloomMeter.SnakeNames<StackDrop>();
        Assert.Equal("closed_port", names[(int)StackDrop.ClosedPort]);
        Assert.Equal("tcp_out_of_order_full", names[(int)StackDrop.TcpOutOfOrderFull]);
        Assert.Equal("tx_ring_full", NetloomMeter.SnakeNames<DropReason>()[(int)DropReason.TxRingFull]);
    }

    [Fact]
    public async Task A_failing_owner_thread_is_logged_not_written_to_stderr()
    {
        var log = new ListLoggerFactory();
        var (pa, pb) = PipePort.OpenPair($"log{Guid.NewGuid():N}");
        try
        {
            using var pbOwner = pb;
            var boom = new NetStackOptions
            {
                LoggerFactory = log,
                Seed = 1,
                DeviceDue = () => Volatile.Read(ref _fail) ? throw new InvalidOperationException("device decorator broke") : null,
            };
            using var s = new NetStack(pa, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:73:01"), Address = Ipv4Address.Parse("10.115.0.1") }, boom);
            Volatile.Write(ref _fail, true);
            var deadline = DateTime.UtcNow + Limit;
            while (log.Entries.IsEmpty || !log.Entries.Any(e => e.Level == LogLevel.Error))
            {
                Assert.True(DateTime.UtcNow < deadline, "no error was logged");
                await Task.Delay(5);
            }
            var error = log.Entries.First(e => e.Level == LogLevel.Error);
            Assert.Equal("Netloom.Sockets.NetStack", error.Category);
            Assert.Contains("10.115.0.1", error.Message);
            Assert.IsType<InvalidOperationException>(error.Exception);
            Assert.Throws<InvalidOperationException>(() => s.OpenUdp());
        }
        finally
        {
            Volatile.Write(ref _fail, false);
        }
    }

    [Fact]
    public void The_library_cannot_write_to_the_console()
    {
        // Console lives in its own assembly: a library that never references it cannot print.
        var references = typeof(Checksum).Assembly.GetReferencedAssemblies();
        Assert.DoesNotContain(references, r => r.Name == "System.Console");
    }

    private static bool _fail;

    private sealed class ListLoggerFactory : ILoggerFactory
    {
        public readonly System.Collections.Concurrent.ConcurrentQueue<(string Category, LogLevel Level, string Message, Exception? Exception)> Entries = new();
        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
        public void AddProvider(ILoggerProvider provider) { }
        public void Dispose() { }

        private sealed class Logger(ListLoggerFactory owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Entries.Enqueue((category, logLevel, formatter(state, exception), exception));
        }
    }
}
