using System.Diagnostics;
using Netloom.Rings;
using Netloom.Time;
using Netloom.Wire;
using Netloom.Wire.Capture;

namespace Netloom.Switching;

/// <summary>
/// A VALE-style software switch over any ports. One thread calls <see cref="Forward"/> (or
/// <see cref="Run"/>); each call takes a batch from every port and forwards it in two passes:
/// first look up every frame of the batch (learning sources), chaining each onto its
/// destination's list; then, per destination, lease TX slots once and copy the frames in, or
/// swap buffer indexes when both ports share a pool and the frame goes to one port only.
/// Broadcast, multicast and unknown unicast are flooded. A full TX ring drops and counts: a slow
/// port never stalls the others.
/// </summary>
public sealed class Switch : IDisposable
{
    private const int Dropped = -2;

    private readonly List<IPort> _ports = [];
    private readonly List<SwitchPortCounters> _counters = [];
    private readonly List<string> _names = [];
    private readonly ILookup _lookup;
    private readonly int _batch;
    private SwitchMonitor? _monitor;

    // Per-batch scratch, sized once: no allocation while forwarding.
    private readonly int[] _dest;
    private readonly int[] _next;
    private readonly uint[] _slotOf;
    private int[] _listHead = [], _listTail = [];

    public Switch(ILookup? lookup = null, int batch = 256)
    {
        if (batch < 1 || batch > 4096) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be from 1 to 4096");
        _lookup = lookup ?? new LearningTable();
        _batch = batch;
        _dest = new int[batch];
        _next = new int[batch];
        _slotOf = new uint[batch];
    }

    public ILookup Lookup => _lookup;
    public int PortCount => _ports.Count;
    public IPort Port(int i) => _ports[i];
    public string PortName(int i) => _names[i];
    public SwitchPortCounters Counters(int i) => _counters[i];

    /// <summary>Attaches a port; the switch owns it from now on and disposes it.</summary>
    public int AddPort(IPort port, string? name = null)
    {
        _ports.Add(port);
        _counters.Add(new SwitchPortCounters());
        _names.Add(name ?? port.Name);
        _listHead = new int[_ports.Count];
        _listTail = new int[_ports.Count];
        return _ports.Count - 1;
    }

    /// <summary>Captures the given ports to <paramref name="writer"/> (pcapng keeps the direction).</summary>
    public void Capture(ICaptureWriter writer, params int[] ports)
    {
        _monitor ??= new SwitchMonitor(writer);
        foreach (int p in ports) _monitor.Watch(p, _names[p]);
    }

    /// <summary>Stops capturing (the writer stays open: its owner closes it).</summary>
    public void StopCapture() => _monitor = null;

    /// <summary>One pass over every port. Returns how many frames were taken in.</summary>
    public int Forward(Instant now)
    {
        int total = 0;
        for (int i = 0; i < _ports.Count; i++) total += ForwardFrom(i, now);
        return total;
    }

    private int ForwardFrom(int src, Instant now)
    {
        var port = _ports[src];
        port.RxSync();
        var rx = port.Rx;
        int n = Math.Min(rx.Space, _batch);
        if (n == 0) return 0;
        var inCounters = _counters[src];
        _listHead.AsSpan().Fill(-1);
        int floodHead = -1, floodTail = -1; // flooded frames, chained through _next like the unicast lists

        // Pass 1: look up the whole batch. The learning table is called directly (no interface
        // dispatch per frame) and counters are summed per batch.
        var table = _lookup as LearningTable;
        long t = now.Nanoseconds, bytes = 0;
        uint h = rx.Head;
        for (int j = 0; j < n; j++, h = rx.Next(h))
        {
            _slotOf[j] = h;
            _next[j] = -1;
            bool whole = rx.TryReadMacs(h, out ulong dstMac, out ulong srcMac, out int length);
            bytes += length;
            if (_monitor is not null) _monitor.Capture(src, rx.Packet(h), now, PacketDirection.Inbound);
            if (!whole)
            {
                _dest[j] = Dropped;
                inCounters.Drop(DropReason.TooShort);
                continue;
            }
            int d;
            if (table is not null)
            {
                table.Learn(srcMac, src, t);
                d = table.Lookup(dstMac, t);
            }
            else
            {
                _lookup.Learn(MacAddress.FromUInt64(srcMac), src, now);
                d = _lookup.Lookup(MacAddress.FromUInt64(dstMac), now);
            }
            _dest[j] = d;
            if (d == ILookup.Flood)
            {
                if (floodTail < 0) floodHead = j; else _next[floodTail] = j;
                floodTail = j;
            }
            else if (d == src || (uint)d >= (uint)_ports.Count)
            {
                _dest[j] = Dropped;
                inCounters.Drop(DropReason.SameSegment);
            }
            else
            {
                if (_listHead[d] < 0) _listHead[d] = j; else _next[_listTail[d]] = j;
                _listTail[d] = j;
            }
        }
        inCounters.RxPackets += n;
        inCounters.RxBytes += bytes;

        // Pass 2: per destination, unicast and flooded frames merged back into arrival order.
        for (int o = 0; o < _ports.Count; o++)
        {
            if (o == src) continue;
            int u = _listHead[o], f = floodHead;
            if (u < 0 && f < 0) continue;
            SendTo(o, src, rx, u, f, now);
        }
        rx.Release(n);
        return n;
    }

    private void SendTo(int o, int src, Ring rx, int u, int f, Instant now)
    {
        var outPort = _ports[o];
        var tx = outPort.Tx;
        var c = _counters[o];
        if (tx.Space == 0) outPort.TxSync();
        int avail = tx.Space;
        bool samePool = rx.Pool == tx.Pool;
        uint th = tx.Head;
        int sent = 0;
        long bytes = 0, flooded = 0, zeroCopy = 0, full = 0;
        while (u >= 0 || f >= 0)
        {
            // Next frame in arrival order: the smaller index of the two lists.
            int j;
            bool isFlood;
            if (f < 0 || (u >= 0 && u < f)) { j = u; u = _next[u]; isFlood = false; }
            else { j = f; f = _next[f]; isFlood = true; }
            if (avail == 0)
            {
                full++;
                continue;
            }
            uint rs = _slotOf[j];
            ushort len = rx[rs].Length;
            if (!isFlood && samePool)
            {
                // Zero copy: the frame's buffer moves to the TX slot, the TX slot's buffer to RX.
                ref Slot r = ref rx[rs];
                ref Slot t = ref tx[th];
                (r.BufferIndex, t.BufferIndex) = (t.BufferIndex, r.BufferIndex);
                t.Flags = r.Flags = SlotFlags.BufferChanged;
                zeroCopy++;
            }
            else
            {
                rx.Packet(rs).CopyTo(tx.Buffer(th));
            }
            tx[th].Length = len;
            if (_monitor is not null) _monitor.Capture(o, tx.Packet(th), now, PacketDirection.Outbound);
            bytes += len;
            if (isFlood) flooded++;
            th = tx.Next(th);
            avail--;
            sent++;
        }
        c.TxPackets += sent;
        c.TxBytes += bytes;
        c.Flooded += flooded;
        c.ZeroCopy += zeroCopy;
        if (full > 0) c.Drop(DropReason.TxRingFull, full);
        if (sent > 0)
        {
            tx.Cur = th;
            tx.Head = th;
            outPort.TxSync();
        }
    }

    /// <summary>
    /// Forwards until cancelled. Busy-poll spins; Block backs off to 1 ms naps after a stretch of
    /// idle passes (ports of different kinds have no single thing to sleep on).
    /// </summary>
    public void Run(CancellationToken stop, WaitMode mode = WaitMode.BusyPoll)
    {
        var clock = Stopwatch.StartNew();
        long wall0 = DateTime.UtcNow.Ticks * 100 - DateTime.UnixEpoch.Ticks * 100;
        int idle = 0;
        while (!stop.IsCancellationRequested)
        {
            var now = new Instant(wall0 + (long)(clock.ElapsedTicks * (1e9 / Stopwatch.Frequency)));
            if (Forward(now) > 0) { idle = 0; continue; }
            if (mode == WaitMode.BusyPoll || ++idle < 1000) Thread.SpinWait(20);
            else Thread.Sleep(1);
        }
        _monitor?.Flush();
    }

    public void Dispose()
    {
        _monitor?.Dispose();
        foreach (var p in _ports) p.Dispose();
    }
}
