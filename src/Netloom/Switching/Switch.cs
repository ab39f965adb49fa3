using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Netloom.Rings;
using Netloom.Time;
using Netloom.Wire;
using Netloom.Wire.Capture;

namespace Netloom.Switching;

/// <summary>
/// A VALE-style software switch over any ports. One thread calls <see cref="Forward"/> (or
/// <see cref="Run"/>); each call takes a batch from every port and forwards it in two passes:
/// first look up every frame of the batch (learning sources); then, per destination, lease TX
/// slots once and copy the frames in, or swap buffer indexes when both ports share a pool and
/// the frame goes to one port only. A mixed batch is chained onto one list per destination in
/// between; a batch all for one port (the usual case under load) goes there in a straight run.
/// Broadcast, multicast and unknown unicast are flooded. A full TX ring drops and counts: a slow
/// port never stalls the others.
/// </summary>
public sealed partial class Switch : IDisposable
{
    // Pass 1's answers besides a port number and ILookup.Flood.
    private const int SameSegment = -2, TooShort = -3, Invalid = -4;

    private readonly List<IPort> _ports = [];
    private readonly List<SwitchPortCounters> _counters = [];
    private readonly List<string> _names = [];
    private readonly ILookup _lookup;
    private readonly IMacLookup _macLookup;
    private readonly List<IDirectDelivery?> _direct = [];
    private readonly int _batch;
    private SwitchMonitor? _monitor;      // what the forwarding thread captures to: a chain, replaced whole
    private SwitchMonitor? _fileMonitor;  // Capture's
    private readonly List<SwitchMonitor> _taps = [];
    private long _passes;                 // Run's passes, so RemoveTap knows when the old chain is out of use
    private readonly int _id = SwitchMetrics.NextSwitch();
    private readonly List<IDisposable> _metrics = [];
    private ILogger? _log;

    // Per-batch scratch, sized once: no allocation while forwarding.
    private readonly int[] _dest, _next;
    private int[] _listHead = [], _listTail = [];

    public Switch(ILookup? lookup = null, int batch = 512)
    {
        if (batch < 1 || batch > 4096) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be from 1 to 4096");
        _lookup = lookup ?? new LearningTable();
        _macLookup = _lookup as IMacLookup ?? new MacLookupAdapter(_lookup);
        _batch = batch;
        _dest = new int[batch];
        _next = new int[batch];
    }

    /// <summary>Where the switch logs (category <c>Netloom.Switching.Switch</c>); none when null. The library never writes to the console.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }
    private ILogger Log => _log ??= (LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger<Switch>();

    public ILookup Lookup => _lookup;
    public int PortCount => _ports.Count;
    public IPort Port(int i) => _ports[i];
    public string PortName(int i) => _names[i];
    /// <summary>A copy of port <paramref name="i"/>'s counters (values written by the forwarding thread; each is whole).</summary>
    public SwitchPortCountersSnapshot Counters(int i) => _counters[i].Snapshot();

    /// <summary>Attaches a port; the switch owns it from now on and disposes it.</summary>
    public int AddPort(IPort port, string? name = null)
    {
        var counters = new SwitchPortCounters();
        _ports.Add(port);
        _counters.Add(counters);
        _names.Add(name ?? port.Name);
        _metrics.Add(SwitchMetrics.Register(_id, name ?? port.Name, counters));
        _metrics.Add(PortMetrics.Register(port));
        SwitchLog.PortAdded(Log, _id, _ports.Count - 1, name ?? port.Name);
        _direct.Add(port as IDirectDelivery); // asked once: the capability, not the port's class
        _listHead = new int[_ports.Count];
        _listTail = new int[_ports.Count];
        return _ports.Count - 1;
    }

    /// <summary>Captures the given ports to <paramref name="writer"/> (pcapng keeps the direction).</summary>
    public void Capture(ICaptureWriter writer, params int[] ports)
    {
        _fileMonitor ??= new SwitchMonitor(writer);
        foreach (int p in ports)
        {
            _fileMonitor.Watch(p, _names[p]);
            SwitchLog.CaptureStarted(Log, _id, _names[p]);
        }
        lock (_taps) Rechain();
    }

    /// <summary>Stops capturing (the writer stays open: its owner closes it).</summary>
    public void StopCapture()
    {
        lock (_taps)
        {
            _fileMonitor = null;
            Rechain();
        }
    }

    /// <summary>
    /// From any thread: adds a live capture beside the file one (<c>netloom extcap</c> on a running
    /// switch). The forwarding thread writes to it from its next batch and flushes it when idle and
    /// every 50 ms; <paramref name="tap"/>'s writer must be safe to hand chunks to another thread.
    /// </summary>
    internal void AddTap(SwitchMonitor tap)
    {
        lock (_taps)
        {
            _taps.Add(tap);
            Rechain();
        }
    }

    /// <summary>
    /// From any thread: once this returns, the forwarding thread no longer writes to
    /// <paramref name="tap"/> (it waits for the thread's pass in progress, up to a second when
    /// the switch is not running), so its writer can be disposed.
    /// </summary>
    internal void RemoveTap(SwitchMonitor tap)
    {
        lock (_taps)
        {
            _taps.Remove(tap);
            Rechain();
        }
        long seen = Volatile.Read(ref _passes);
        SpinWait.SpinUntil(() => Volatile.Read(ref _passes) >= seen + 2, 1000);
    }

    /// <summary>Builds a new chain (file capture first, then live taps) and publishes it in one write.</summary>
    private void Rechain()
    {
        SwitchMonitor? chain = null;
        for (int i = _taps.Count - 1; i >= 0; i--) chain = _taps[i].Before(chain);
        if (_fileMonitor is not null) chain = _fileMonitor.Before(chain);
        // A capture sees every frame: the XDP fast path stops before the chain is published.
        if (chain is not null) FastPathOff();
        Volatile.Write(ref _monitor, chain);
    }

    /// <summary>One pass over every port. Returns how many frames were taken in.</summary>
    public int Forward(Instant now)
    {
        if (_fast is not null && now.Nanoseconds >= _fastNextSync) SyncFastPath(now.Nanoseconds);
        int total = 0;
        for (int i = 0; i < _ports.Count; i++) total += ForwardFrom(i, now);
        // Frames a port could not take at the last sync wait in its TX ring; sync again so they
        // leave as soon as it has room, not only when more traffic comes for it.
        for (int i = 0; i < _ports.Count; i++)
        {
            var tx = _ports[i].Tx;
            if (tx.Space < tx.Size - 1) _ports[i].TxSync();
        }
        return total;
    }

    private int ForwardFrom(int src, Instant now)
    {
        var port = _ports[src];
        port.RxSync();
        var rx = port.Rx;
        int n = Math.Min(rx.Space, _batch);
        if (n == 0) return 0;
        if (rx.Head >= (uint)rx.Size)
        {
            // A head only a peer writing our shared memory could have put there: drop the batch.
            _counters[src].Drop(DropReason.Invalid, n);
            rx.Release(n);
            return n;
        }

        // Pass 1: an answer for every frame of the batch. Pass 2: per destination, the frames
        // in arrival order, unicast and flooded alike. When the whole batch goes to one port
        // (the common case under load), it goes there in a straight run, with no lists.
        int single = LookUp(src, rx, n, now);
        if (single >= 0) SendTo(single, rx, 0, -1, n, now);
        else
        {
            int floodHead = Chain(src, n);
            for (int o = 0; o < _ports.Count; o++)
            {
                if (o == src) continue;
                int u = _listHead[o];
                if (u < 0 && floodHead < 0) continue;
                SendTo(o, rx, u, floodHead, 0, now);
            }
        }
        rx.Release(n);
        return n;
    }

    /// <summary>
    /// Pass 1: writes each frame's answer (a port, <see cref="ILookup.Flood"/> or a drop reason)
    /// to <c>_dest</c>, and returns the port when every frame of the batch goes to that one port
    /// (else -1). Frames of one batch share one timestamp, so a frame with the same 12 address
    /// bytes as the one before it gets the same answer without asking the lookup again: learning
    /// the same source at the same instant changes nothing. Slots and headers are read through a
    /// <see cref="SlotBatch"/>; a slot whose length or buffer index is impossible (shared memory
    /// can hold anything) is answered <see cref="Invalid"/>, never followed.
    /// </summary>
    private int LookUp(int src, Ring rx, int n, Instant now)
    {
        var slots = new SlotBatch(rx);
        uint h = rx.Head;
        var monitor = _monitor;
        int[] dest = _dest;
        bool known = false;
        ulong prevA = 0;
        uint prevC = 0;
        int prevD = 0, first = 0, differ = 0;
        long bytes = 0;
        for (int j = 0; j < n; j++)
        {
            bool valid = slots.TryReadHeader(h, out uint len, out ulong a, out uint c);
            bytes += len;
            int d;
            if (!valid) d = Invalid;
            else if (len < 14) d = TooShort; // a runt is still seen by a capture
            else if (known && a == prevA && c == prevC) d = prevD;
            else
            {
                d = Decide(a, c, src, now);
                (prevA, prevC, prevD, known) = (a, c, d, true);
                if (j == 0) first = d;
            }
            if (monitor is not null && d != Invalid) monitor.Capture(src, slots.Frame(h), now, PacketDirection.Inbound);
            dest[j] = d;
            differ |= d ^ first;
            h = slots.Next(h);
        }
        var counters = _counters[src];
        counters.RxPackets += n;
        counters.RxBytes += bytes;
        return differ == 0 && first >= 0 ? first : -1;
    }

    /// <summary>
    /// Chains the frames of a mixed batch onto one list per output port and one of flooded
    /// frames (through <c>_next</c>), counts the dropped ones, and returns the flood list's head.
    /// </summary>
    private int Chain(int src, int n)
    {
        int[] dest = _dest, next = _next, head = _listHead, tail = _listTail;
        head.AsSpan().Fill(-1);
        int floodHead = -1, floodTail = -1;
        long tooShort = 0, invalid = 0, sameSegment = 0;
        for (int j = 0; j < n; j++)
        {
            int d = dest[j];
            next[j] = -1;
            if (d >= 0)
            {
                if (head[d] < 0) head[d] = j; else next[tail[d]] = j;
                tail[d] = j;
            }
            else if (d == ILookup.Flood)
            {
                if (floodTail < 0) floodHead = j; else next[floodTail] = j;
                floodTail = j;
            }
            else if (d == SameSegment) sameSegment++;
            else if (d == TooShort) tooShort++;
            else invalid++;
        }
        var counters = _counters[src];
        if (tooShort > 0) counters.Drop(DropReason.TooShort, tooShort);
        if (invalid > 0) counters.Drop(DropReason.Invalid, invalid);
        if (sameSegment > 0) counters.Drop(DropReason.SameSegment, sameSegment);
        return floodHead;
    }

    /// <summary>The lookup's answer for one frame: an output port, <see cref="ILookup.Flood"/> or <see cref="SameSegment"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // off the per-frame path: inlined, it costs the loop its registers
    private int Decide(ulong first8, uint next4, int src, Instant now)
    {
        // Bytes 0-5 are the destination and 6-11 the source; as numbers, wire order in the low 48 bits.
        ulong w = BinaryPrimitives.ReverseEndianness(first8);
        ulong dstMac = w >> 16, srcMac = (w & 0xFFFF) << 32 | BinaryPrimitives.ReverseEndianness(next4);
        long t = now.Nanoseconds;
        _macLookup.Learn(srcMac, src, t);
        int d = _macLookup.Lookup(dstMac, t);
        if (d == ILookup.Flood) return d;
        return d == src || (uint)d >= (uint)_ports.Count ? SameSegment : d;
    }

    /// <summary>
    /// Pass 2 for one output port: the frames of list <paramref name="u"/> (unicast) and list
    /// <paramref name="f"/> (flooded) in arrival order, or, when <paramref name="run"/> is not
    /// zero, the whole batch of <paramref name="run"/> frames (no lists). One loop, one strategy
    /// per frame: swap buffer indexes (zero copy) when both rings are over one pool and the frame
    /// goes to this port only, else copy it into the TX slot's buffer.
    /// </summary>
    private void SendTo(int o, Ring rx, int u, int f, int run, Instant now)
    {
        var outPort = _ports[o];
        var tx = outPort.Tx;
        var monitor = _monitor;
        bool swap = rx.Pool == tx.Pool && rx.FixedBufferBase == 0 && tx.FixedBufferBase == 0;
        int sent = 0;
        long bytes = 0, flooded = 0, zeroCopy = 0, full = 0, tooLong = 0, invalid = 0;
        if (run > 0 && swap && monitor is null && _direct[o] is { } direct)
        {
            // Special case, kept for its measured gain: 1.54 times the rate without it (pairwise,
            // two threads, docs/BENCHMARKS.md), and 1.35 and 1.42 in two later single-thread
            // pairwise runs of 30 rounds each. A port that can deliver to its far end directly (a
            // pipe) takes the batch in one pass over the slots instead of two (TX ring, then
            // sync), as VALE writes into its ports' rings. What it cannot take now goes through
            // the TX ring below, in order behind them.
            sent = direct.Deliver(rx, rx.Head, run, out bytes);
            zeroCopy = sent;
            u = sent < run ? sent : -1;
        }
        if (tx.Space == 0) outPort.TxSync();
        int avail = tx.Space;
        uint th = tx.Head, rxHead = rx.Head;
        if (th >= (uint)tx.Size) avail = 0; // a head only a peer writing shared memory could put there: nothing is written (counted as full)
        var from = new SlotBatch(rx);
        var to = new SlotBatch(tx);
        int[] next = _next;
        int queued = 0;
        while (u >= 0 || f >= 0)
        {
            // Next frame in arrival order: the next of the run, or the smaller index of the two lists.
            int j;
            bool isFlood;
            if (f < 0 || (u >= 0 && u < f)) { j = u; u = run > 0 ? (u + 1 < run ? u + 1 : -1) : next[u]; isFlood = false; }
            else { j = f; f = next[f]; isFlood = true; }
            if (avail == 0) { full++; continue; }
            uint r = rxHead + (uint)j;
            ref Slot rslot = ref from[r];
            ref Slot tslot = ref to[th];
            int len;
            if (swap && !isFlood)
            {
                // Zero copy: the frame's buffer moves to the TX slot, the TX slot's buffer to RX.
                (rslot.BufferIndex, tslot.BufferIndex) = (tslot.BufferIndex, rslot.BufferIndex);
                tslot.Flags = rslot.Flags = SlotFlags.BufferChanged;
                len = rslot.Length;
                zeroCopy++;
            }
            else
            {
                // A copy; the output's buffers may be smaller than the input's.
                var frame = from.Frame(r);
                var buffer = to.Buffer(th);
                if (frame.IsEmpty || buffer.IsEmpty) { invalid++; continue; } // pass 1 let no such slot through; a TX slot the user broke
                if (frame.Length > buffer.Length) { tooLong++; continue; }
                frame.CopyTo(buffer);
                len = frame.Length;
            }
            tslot.Length = (ushort)len;
            if (monitor is not null) monitor.Capture(o, to.Frame(th), now, PacketDirection.Outbound);
            bytes += len;
            if (isFlood) flooded++;
            th = to.Next(th);
            avail--;
            sent++;
            queued++;
        }
        var c = _counters[o];
        c.TxPackets += sent;
        c.TxBytes += bytes;
        c.Flooded += flooded;
        c.ZeroCopy += zeroCopy;
        if (full > 0) c.Drop(DropReason.TxRingFull, full);
        if (tooLong > 0) c.Drop(DropReason.TooLong, tooLong);
        if (invalid > 0) c.Drop(DropReason.Invalid, invalid);
        if (queued > 0)
        {
            tx.Cur = th;
            tx.Head = th;
            outPort.TxSync();
        }
    }

    /// <summary>
    /// Forwards until cancelled. Busy-poll spins; Block backs off to 1 ms naps after a stretch of
    /// idle passes (ports of different kinds have no single thing to sleep on).
    /// The thread that runs this owns the switch's time, as a host owns its stack's: it reads the
    /// real clock through <see cref="MonotonicClock"/> and hands <see cref="Forward"/> an instant,
    /// so forwarding itself never reads a clock.
    /// </summary>
    public void Run(CancellationToken stop, WaitMode mode = WaitMode.BusyPoll)
    {
        var clock = new MonotonicClock();
        int idle = 0;
        SwitchLog.Running(Log, _id, _ports.Count, mode);
        long flushedAt = 0;
        while (!stop.IsCancellationRequested)
        {
            var now = clock.Now;
            int moved = Forward(now);
            Volatile.Write(ref _passes, _passes + 1);
            if (_monitor is { } m && (moved == 0 && idle == 0 || now.Nanoseconds - flushedAt > 50_000_000))
            {
                // Captures reach their readers when the switch goes idle, and every 50 ms while busy.
                m.Flush();
                flushedAt = now.Nanoseconds;
            }
            if (moved > 0) { idle = 0; continue; }
            if (mode == WaitMode.BusyPoll || ++idle < 1000) Thread.SpinWait(20);
            else Thread.Sleep(1);
        }
        _monitor?.Flush();
        SwitchLog.Stopped(Log, _id);
    }

    public void Dispose()
    {
        foreach (var m in _metrics) m.Dispose();
        _metrics.Clear();
        _fileMonitor?.Dispose();
        foreach (var p in _ports) p.Dispose();
        _fast?.Dispose(); // after the ports: their links (and so their programs) are gone
        _fast = null;
    }
}
