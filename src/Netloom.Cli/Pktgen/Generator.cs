using System.Buffers.Binary;
using System.Diagnostics;
using Netloom.Rings;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Cli.Pktgen;

public enum PktgenMode { Tx, Rx, Ping, Pong }

/// <summary>What one pktgen run measured.</summary>
public sealed class PktgenResult
{
    public PktgenMode Mode;
    public long Packets;
    public long Bytes;
    public long Batches;
    public double Seconds;
    public long[] RttNs = [];
    public string? Failure;

    public double Mpps => Seconds > 0 ? Packets / Seconds / 1e6 : 0;
    public double Gbps => Seconds > 0 ? Bytes * 8 / Seconds / 1e9 : 0;
    public double AverageBatch => Batches > 0 ? (double)Packets / Batches : 0;
    public long Percentile(double p)
    {
        if (RttNs.Length == 0) return 0;
        int i = (int)Math.Min(RttNs.Length - 1, Math.Ceiling(p / 100 * RttNs.Length) - 1);
        return RttNs[Math.Max(0, i)];
    }
}

/// <summary>
/// pkt-gen's job on any port: send as fast as allowed (or at a rate), receive and count, or
/// ping-pong one packet at a time for round-trip times. Buffers are filled once with a UDP
/// frame; sending then only sets slot lengths, as netmap's pkt-gen does.
/// </summary>
public static class Generator
{
    private static readonly MacAddress Src = MacAddress.Parse("02:00:00:00:01:01"), Dst = MacAddress.Parse("02:00:00:00:01:02");

    /// <summary>Builds the test frame: Ethernet, IPv4, UDP, padded payload, <paramref name="size"/> bytes in all.</summary>
    public static byte[] Frame(int size)
    {
        const int headers = 14 + 20 + 8;
        size = Math.Max(size, 60);
        var frame = new byte[size];
        FrameBuilder.Udp(frame, new EthernetRepr(Src, Dst, EtherType.Ipv4),
            new Ipv4Repr(new Ipv4Address(10, 77, 0, 1), new Ipv4Address(10, 77, 0, 2), IpProtocol.Udp, 0), new UdpRepr(9, 9, 0),
            new byte[size - headers]);
        return frame;
    }

    /// <summary>Writes the frame into every buffer the port's transmissions can use.</summary>
    public static void Prefill(IPort port, byte[] frame)
    {
        if (port is PipePort pipe)
        {
            // Pipe buffers travel between rings: fill the whole pool.
            for (uint i = 1; i < pipe.Pool.Count; i++) frame.CopyTo(pipe.Pool.Buffer(i));
            return;
        }
        for (uint s = 0; s < port.Tx.Size; s++) frame.CopyTo(port.Tx.Buffer(s));
    }

    public static PktgenResult Run(IPort port, PktgenMode mode, int size, int batch, Duration duration, long rate, CancellationToken stop) => mode switch
    {
        PktgenMode.Tx => Transmit(port, size, batch, duration, rate, stop),
        PktgenMode.Rx => Receive(port, batch, duration, stop),
        PktgenMode.Ping => Ping(port, size, duration, stop),
        _ => Pong(port, duration, stop),
    };

    private static PktgenResult Transmit(IPort port, int size, int batch, Duration duration, long rate, CancellationToken stop)
    {
        var r = new PktgenResult { Mode = PktgenMode.Tx };
        var tx = port.Tx;
        long handed = 0, packetsBefore = tx.GetCounters().Packets, bytesBefore = tx.GetCounters().Bytes;
        ushort len = (ushort)Math.Max(size, 60);
        long start = Stopwatch.GetTimestamp(), end = start + Ticks(duration);
        var wait = Duration.FromMilliseconds(100);
        while (!stop.IsCancellationRequested)
        {
            long now = Stopwatch.GetTimestamp();
            if (now >= end) break;
            int n = Math.Min(tx.Space, batch);
            if (rate > 0)
            {
                long allowed = (long)((now - start) / (double)Stopwatch.Frequency * rate) - handed;
                n = (int)Math.Min(n, Math.Max(0, allowed));
                if (n == 0) { port.TxSync(); Thread.SpinWait(20); continue; }
            }
            if (n == 0)
            {
                if (!port.WaitTx(wait) && port.Failure is not null) { r.Failure = port.Failure; break; }
                continue;
            }
            uint h = tx.Head;
            for (int i = 0; i < n; i++)
            {
                tx[h].Length = len;
                h = tx.Next(h);
            }
            tx.Cur = h;
            tx.Head = h;
            port.TxSync();
            handed += n;
            r.Batches++;
        }
        port.Flush(Duration.FromMilliseconds(200));
        r.Seconds = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
        // What the port actually sent, not what was handed to the ring.
        r.Packets = tx.GetCounters().Packets - packetsBefore;
        r.Bytes = tx.GetCounters().Bytes - bytesBefore;
        return r;
    }

    private static PktgenResult Receive(IPort port, int batch, Duration duration, CancellationToken stop)
    {
        var r = new PktgenResult { Mode = PktgenMode.Rx };
        var rx = port.Rx;
        // Bytes come from the ring's counters, kept by the side that fills it: reading every
        // slot's length here would pull the producer's cache lines across cores.
        long bytesBefore = rx.GetCounters().Bytes;
        long start = 0, last = 0, end = Stopwatch.GetTimestamp() + Ticks(duration);
        var wait = Duration.FromMilliseconds(100);
        while (!stop.IsCancellationRequested && Stopwatch.GetTimestamp() < end)
        {
            if (!port.WaitRx(wait))
            {
                if (port.Failure is not null) { r.Failure = port.Failure; break; }
                continue;
            }
            if (start == 0) start = Stopwatch.GetTimestamp(); // measure from the first packet
            int n = Math.Min(rx.Space, batch);
            rx.Release(n);
            r.Packets += n;
            r.Batches++;
            last = Stopwatch.GetTimestamp();
        }
        port.RxSync();
        r.Bytes = rx.GetCounters().Bytes - bytesBefore;
        r.Seconds = start == 0 ? 0 : (last - start) / (double)Stopwatch.Frequency;
        return r;
    }

    /// <summary>One packet out, wait for it back, repeat; the send time rides in the payload.</summary>
    private static PktgenResult Ping(IPort port, int size, Duration duration, CancellationToken stop)
    {
        var r = new PktgenResult { Mode = PktgenMode.Ping };
        var rtts = new List<long>(1 << 20);
        ushort len = (ushort)Math.Max(size, 60);
        const int stampAt = 42; // first payload byte after Ethernet, IPv4, UDP
        long start = Stopwatch.GetTimestamp(), end = start + Ticks(duration);
        var wait = Duration.FromMilliseconds(200);
        while (!stop.IsCancellationRequested && Stopwatch.GetTimestamp() < end && rtts.Count < (1 << 24))
        {
            var tx = port.Tx;
            if (tx.IsEmpty && !port.WaitTx(wait)) { if (port.Failure is not null) { r.Failure = port.Failure; break; } continue; }
            uint h = tx.Head;
            tx[h].Length = len;
            long sent = Stopwatch.GetTimestamp();
            BinaryPrimitives.WriteInt64LittleEndian(tx.Buffer(h)[stampAt..], sent);
            tx.Release(1);
            port.TxSync();
            while (!port.WaitRx(wait))
            {
                if (port.Failure is not null || stop.IsCancellationRequested || Stopwatch.GetTimestamp() >= end) break;
            }
            if (port.Failure is not null) { r.Failure = port.Failure; break; }
            var rx = port.Rx;
            if (rx.IsEmpty) break;
            long back = Stopwatch.GetTimestamp();
            long stamp = BinaryPrimitives.ReadInt64LittleEndian(rx.Packet(rx.Head)[stampAt..]);
            r.Bytes += rx[rx.Head].Length;
            rx.Release(rx.Space);
            port.RxSync();
            if (stamp == sent) rtts.Add((long)((back - sent) * (1e9 / Stopwatch.Frequency)));
            r.Packets++;
            r.Batches++;
        }
        r.Seconds = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
        r.RttNs = [.. rtts];
        Array.Sort(r.RttNs);
        return r;
    }

    /// <summary>Sends every packet it receives straight back.</summary>
    private static PktgenResult Pong(IPort port, Duration duration, CancellationToken stop)
    {
        var r = new PktgenResult { Mode = PktgenMode.Pong };
        long start = Stopwatch.GetTimestamp(), end = start + Ticks(duration);
        var wait = Duration.FromMilliseconds(200);
        while (!stop.IsCancellationRequested && Stopwatch.GetTimestamp() < end)
        {
            if (!port.WaitRx(wait)) { if (port.Failure is not null) { r.Failure = port.Failure; break; } continue; }
            var rx = port.Rx;
            var tx = port.Tx;
            if (tx.IsEmpty) port.TxSync();
            int n = Math.Min(rx.Space, tx.Space);
            uint rh = rx.Head, th = tx.Head;
            for (int i = 0; i < n; i++)
            {
                rx.Packet(rh).CopyTo(tx.Buffer(th));
                tx[th].Length = rx[rh].Length;
                r.Bytes += rx[rh].Length;
                rh = rx.Next(rh);
                th = tx.Next(th);
            }
            rx.Release(n);
            tx.Release(n);
            port.TxSync();
            port.RxSync();
            r.Packets += n;
            if (n > 0) r.Batches++;
        }
        r.Seconds = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
        return r;
    }

    private static long Ticks(Duration d) => (long)(d.Nanoseconds * (Stopwatch.Frequency / 1e9));
}
