using System.Collections.Concurrent;
using System.Diagnostics;
using Netloom.Emulation;
using Netloom.Emulation.Topology;
using Netloom.Netem;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Cli.Emulate;

/// <summary>A request the API refuses: the status code and the message the client gets.</summary>
internal sealed class ApiException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// A network running under the control API. One thread, the emulator's, owns the
/// <see cref="Network"/>: it runs time in slices (paced virtual time, as fast as possible, or the
/// wall clock for linux nodes) and, between slices, runs the commands HTTP threads queued with
/// <see cref="Invoke{T}"/>. Nothing else touches the network, so the emulator needs no locks.
/// With no client, a slice costs one volatile read more than a plain run.
/// </summary>
internal sealed partial class LiveEmulation : IDisposable
{
    private const long SampleEveryNs = 500_000_000; // rates are averaged over half a second of network time
    private readonly ConcurrentQueue<Action> _commands = new();
    private readonly AutoResetEvent _wake = new(false);
    private readonly Thread _thread;
    private readonly double _speed;
    private volatile bool _pending;
    private volatile bool _stop;
    private Scenario _sc;
    private long _endNs;
    private bool _paused;
    private bool _repace = true;
    private readonly List<LiveCapture> _taps = [];
    private readonly EventHub _events;
    // Rates, per link direction (2 per link): bytes and counters at the last sample.
    private long _sampleAtNs;
    private long[] _lastBytes = [], _lastSent = [], _lastDrops = [];
    private double[] _rateBps = [], _recentLoss = [];
    private long _nextStatsTicks;

    /// <param name="speed">Virtual seconds per wall second; 0 or less runs as fast as possible. Ignored in real time.</param>
    public LiveEmulation(Scenario scenario, double speed, bool startPaused, EventHub events)
    {
        _sc = scenario;
        _speed = speed;
        _paused = startPaused;
        _events = events;
        _endNs = scenario.Duration.Nanoseconds;
        ResetSamples();
        _thread = new Thread(Loop) { Name = "netloom emulator", IsBackground = true };
    }

    public Network Network => _sc.Network;
    public string Name => _sc.Spec.Name ?? "emulation";
    public bool Finished { get; private set; }
    /// <summary>Set once the emulator's thread has ended (Dispose, or a failure: <see cref="Failure"/>).</summary>
    public Exception? Failure { get; private set; }

    public void Start() => _thread.Start();

    /// <summary>Released each time the network pauses by itself at the end of its time (the file's duration, or resume's "for").</summary>
    public SemaphoreSlim ReachedEnd { get; } = new(0);

    /// <summary>Runs <paramref name="command"/> on the emulator's thread between two slices; its exception goes to the caller.</summary>
    public Task<T> Invoke<T>(Func<T> command)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (_stop) { tcs.SetException(new ApiException(503, "the emulation is shutting down")); return tcs.Task; }
        _commands.Enqueue(() =>
        {
            try { tcs.SetResult(command()); }
            catch (Exception e) { tcs.SetException(e); }
        });
        _pending = true;
        _wake.Set();
        return tcs.Task;
    }

    private void Drain()
    {
        _pending = false;
        while (_commands.TryDequeue(out var c)) c();
    }

    private void Loop()
    {
        try
        {
            long paceTicks = 0, paceVirt = 0;
            while (!_stop)
            {
                if (_pending) Drain();
                var net = _sc.Network;
                long elapsed = net.Elapsed.Nanoseconds;
                if (!_paused && elapsed >= _endNs)
                {
                    // The file's duration is over: pause, and let resume or step go on past it.
                    _paused = true;
                    Finished = true;
                    _endNs = long.MaxValue;
                    _events.Publish("paused", new { reason = "finished", virtual_seconds = net.Elapsed.TotalSeconds });
                    ReachedEnd.Release();
                }
                if (_paused)
                {
                    FlushTaps();
                    Stats();
                    _wake.WaitOne(100);
                    _repace = true;
                    continue;
                }
                if (_repace) { paceTicks = Stopwatch.GetTimestamp(); paceVirt = elapsed; _repace = false; }
                long left = _endNs - elapsed;
                if (_sc.RealTime)
                    net.RunRealTime(Duration.FromNanoseconds(Math.Min(left, 50_000_000)), () => _pending || _stop);
                else if (_speed <= 0)
                    net.Run(Duration.FromNanoseconds(Math.Min(left, 10_000_000)));
                else
                {
                    long target = paceVirt + (long)(Stopwatch.GetElapsedTime(paceTicks).Ticks * 100 * _speed);
                    if (target > elapsed) net.Run(Duration.FromNanoseconds(Math.Min(target - elapsed, left)));
                    else _wake.WaitOne(1);
                }
                Sample();
                if (_taps.Count > 0) FlushTaps();
                if (_events.HasSubscribers) Stats();
            }
        }
        catch (Exception e)
        {
            Failure = e;
            Console.Error.WriteLine($"netloom: the emulation failed: {e}");
        }
        finally
        {
            foreach (var t in _taps) { _sc.Network.StopCapture(t.Link, t); t.Dispose(); }
            _taps.Clear();
            // Whoever still waits gets an answer.
            while (_commands.TryDequeue(out var c)) c();
        }
    }

    /// <summary>Publishes the state as a "stats" event once a second of wall time, while someone listens.</summary>
    private void Stats()
    {
        if (!_events.HasSubscribers) return;
        long now = Stopwatch.GetTimestamp();
        if (now < _nextStatsTicks) return;
        _nextStatsTicks = now + Stopwatch.Frequency;
        _events.Publish("stats", State());
    }

    private void ResetSamples()
    {
        int n = _sc.Network.Links.Count * 2;
        _lastBytes = new long[n];
        _lastSent = new long[n];
        _lastDrops = new long[n];
        _rateBps = new double[n];
        _recentLoss = new double[n];
        _sampleAtNs = _sc.Network.Elapsed.Nanoseconds;
    }

    private void Sample()
    {
        var net = _sc.Network;
        long now = net.Elapsed.Nanoseconds;
        if (now - _sampleAtNs < SampleEveryNs) return;
        double seconds = (now - _sampleAtNs) / 1e9;
        for (int i = 0; i < net.Links.Count; i++)
            for (int d = 0; d < 2; d++)
            {
                var c = net.Links[i].Direction(d).Counters;
                int k = i * 2 + d;
                long bytes = c.DeliveredBytes, sent = c.Sent, drops = c.TotalDrops;
                _rateBps[k] = (bytes - _lastBytes[k]) * 8 / seconds;
                long dSent = sent - _lastSent[k];
                _recentLoss[k] = dSent > 0 ? (double)(drops - _lastDrops[k]) / dSent : 0;
                (_lastBytes[k], _lastSent[k], _lastDrops[k]) = (bytes, sent, drops);
            }
        _sampleAtNs = now;
    }

    private void FlushTaps()
    {
        for (int i = _taps.Count - 1; i >= 0; i--)
        {
            var t = _taps[i];
            t.Flush();
            if (!t.Done) continue;
            _sc.Network.StopCapture(t.Link, t);
            t.Dispose();
            _taps.RemoveAt(i);
        }
    }

    // ---- commands (each runs on the emulator's thread) ----

    public object State()
    {
        var net = _sc.Network;
        return new
        {
            name = Name,
            state = _paused ? "paused" : "running",
            finished = Finished,
            mode = _sc.RealTime ? "realtime" : _speed <= 0 ? "virtual-max" : "virtual",
            speed = _sc.RealTime ? 1 : _speed,
            virtual_seconds = net.Elapsed.TotalSeconds,
            duration_seconds = _sc.Duration.TotalSeconds,
            events = net.EventsProcessed,
            packet_hops = net.PacketHops,
            nodes = Nodes(),
            links = Links(),
            apps = Apps(),
        };
    }

    public List<object> Nodes() => _sc.Network.Nodes.Where(n => !n.Removed).Select(NodeState).ToList();
    public List<object> Links() => _sc.Network.Links.Where(l => !l.Removed).Select(LinkState).ToList();
    public List<AppReport> Apps() => _sc.Network.Apps.Select(a => a.Report(_sc.Network.Now)).ToList();

    private static object NodeState(Node n) => new
    {
        name = n.Name,
        addresses = n switch
        {
            HostNode h => h.Options.Ipv6Address is { } h6 ? [$"{h.Options.Address}/{h.Options.PrefixLength}", $"{h6}/{h.Options.Ipv6PrefixLength}"] : [$"{h.Options.Address}/{h.Options.PrefixLength}"],
            RouterNode r => Enumerable.Range(0, r.Ports.Count).Select(i => r.AddressOf(i) is { } a ? $"{a.Address}/{a.PrefixLength}" : null)
                .Concat(Enumerable.Range(0, r.Ports.Count).Select(i => r.Address6Of(i)?.ToString())).OfType<string>().ToList(),
            ProcessNode p => p.Ipv6 is { } p6 ? [$"{p.Address}/{p.PrefixLength}", p6.ToString()] : [$"{p.Address}/{p.PrefixLength}"],
            _ => new List<string>(),
        },
        kind = n switch { HostNode => "host", SwitchNode => "switch", RouterNode => "router", LinuxNode => "linux", ProcessNode => "process", _ => "node" },
        @namespace = n is LinuxNode ln ? ln.Namespace : null, // where `ip netns exec` runs commands in a linux node
        process = n is ProcessNode pn ? new
        {
            program = pn.Program,
            port = pn.PortSpec,
            running = pn.Running,
            pid = pn.Pid,
            starts = pn.Starts,
            exit_code = pn.ExitCode,
            frames_from_program = pn.FramesFromProgram,
            frames_to_program = pn.FramesToProgram,
            output = pn.RecentOutput.TakeLast(20).ToList(),
        } : null,
        up = n.IsUp,
        discarded = n.Discarded,
        links = n.Ports.Where(p => p.Link is not null).Select(p => p.Link!.Name).ToList(),
        ports = n.Ports.Select(p => new { index = p.Index, link = p.Link?.Name }).ToList(),
    };

    public object LinkState(Link l) => new
    {
        name = l.Name,
        a = l.A.Node.Name,
        b = l.B.Node.Name,
        up = l.IsUp,
        directions = new[] { Direction(l, 0), Direction(l, 1) },
    };

    private object Direction(Link l, int d)
    {
        var dir = l.Direction(d);
        var c = dir.Counters;
        int k = l.Id * 2 + d;
        var drops = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var r in Enum.GetValues<LinkDrop>())
            if (c.Drops(r) > 0) drops[r.ToString().ToLowerInvariant()] = c.Drops(r);
        var imp = dir.Impairments;
        return new
        {
            from = dir.From.Node.Name,
            to = dir.To.Node.Name,
            sent = c.Sent,
            sent_bytes = c.SentBytes,
            delivered = c.Delivered,
            delivered_bytes = c.DeliveredBytes,
            drops,
            total_drops = c.TotalDrops,
            duplicated = c.Duplicated,
            corrupted = c.Corrupted,
            reordered = c.Reordered,
            queued = dir.QueuedFrames,
            throughput_bps = k < _rateBps.Length ? _rateBps[k] : 0,
            recent_loss = k < _recentLoss.Length ? _recentLoss[k] : 0,
            impairments = Impairments(imp),
        };
    }

    private static object Impairments(Impairments i) => new
    {
        delay_us = i.Delay.Nanoseconds / 1000.0,
        jitter_us = i.Jitter.Nanoseconds / 1000.0,
        distribution = i.Distribution.ToString().ToLowerInvariant(),
        loss = i.GilbertElliott is { } ge ? ge.MeanLoss : i.Loss,
        gilbert_elliott = i.GilbertElliott is { } g ? new { p = g.P, r = g.R, bad = g.LossInBad, good = g.LossInGood } : null,
        duplicate = i.Duplicate,
        corrupt = i.Corrupt,
        reorder = i.Reorder,
        rate_bps = i.RateBitsPerSecond,
        queue_packets = i.QueuePackets,
        queue_bytes = i.QueueBytes,
        overhead = i.Overhead,
    };

    public Link FindLink(string name) =>
        _sc.Network.Links.FirstOrDefault(l => l.Name == name && !l.Removed) ?? throw new ApiException(404, $"no link named '{name}'");

    public Node FindNode(string name, int status = 404) =>
        _sc.Network.Nodes.FirstOrDefault(n => n.Name == name && !n.Removed) ?? throw new ApiException(status, $"no node named '{name}'");

    public object SetImpairments(string link, string body)
    {
        var l = FindLink(link);
        Func<Impairments, Impairments>? ab, ba;
        try { (ab, ba) = TopologyParser.ParseLinkChange(body); }
        catch (TopologyException e) { throw new ApiException(400, string.Join("; ", e.Errors.Select(x => x.ToString()))); }
        // Both directions are checked before either changes.
        var newAb = ab is null ? l.AtoB.Impairments : ab(l.AtoB.Impairments);
        var newBa = ba is null ? l.BtoA.Impairments : ba(l.BtoA.Impairments);
        if (newAb.Validate() is { } e1) throw new ApiException(400, $"link {link} {l.A.Node.Name}->{l.B.Node.Name}: {e1}");
        if (newBa.Validate() is { } e2) throw new ApiException(400, $"link {link} {l.B.Node.Name}->{l.A.Node.Name}: {e2}");
        l.AtoB.Impairments = newAb;
        l.BtoA.Impairments = newBa;
        var state = LinkState(l);
        _events.Publish("link", new { link = l.Name, action = "set", at = _sc.Network.Elapsed.TotalSeconds });
        return state;
    }

    public object LinkUpDown(string link, bool up)
    {
        var l = FindLink(link);
        if (up) { l.Up(); l.DownByPartition = false; }
        else l.Down();
        _events.Publish("link", new { link = l.Name, action = up ? "up" : "down", at = _sc.Network.Elapsed.TotalSeconds });
        return LinkState(l);
    }

    public object Partition(List<List<string>> groups)
    {
        if (groups.Count == 0) throw new ApiException(400, "partition needs groups, such as {\"groups\": [[\"h1\", \"s1\"], [\"h2\"]]}");
        var nodes = groups.Select(g => g.Select(n => FindNode(n, 400)).ToList()).ToList();
        try { _sc.Network.Partition(nodes); }
        catch (ArgumentException e) { throw new ApiException(400, e.Message); }
        var cut = _sc.Network.Links.Where(l => l.DownByPartition).Select(l => l.Name).ToList();
        _events.Publish("partition", new { groups, cut, at = _sc.Network.Elapsed.TotalSeconds });
        return new { cut };
    }

    public object Heal()
    {
        var healed = _sc.Network.Links.Where(l => l.DownByPartition).Select(l => l.Name).ToList();
        _sc.Network.Heal();
        _events.Publish("heal", new { healed, at = _sc.Network.Elapsed.TotalSeconds });
        return new { healed };
    }

    public object CrashRestart(string node, bool crash)
    {
        var n = FindNode(node);
        if (crash) n.Crash(); else n.Restart();
        _events.Publish("node", new { node = n.Name, action = crash ? "crash" : "restart", at = _sc.Network.Elapsed.TotalSeconds });
        return NodeState(n);
    }

    public object Pause()
    {
        if (!_paused) _events.Publish("paused", new { reason = "request", virtual_seconds = _sc.Network.Elapsed.TotalSeconds });
        _paused = true;
        return Clock();
    }

    public object Resume(Duration? forSpan)
    {
        if (_paused) _events.Publish("resumed", new { virtual_seconds = _sc.Network.Elapsed.TotalSeconds });
        if (forSpan is { } f) _endNs = _sc.Network.Elapsed.Nanoseconds + f.Nanoseconds;
        _paused = false;
        _repace = true;
        return Clock();
    }

    public object Step(long events, Duration? span)
    {
        if (!_paused) throw new ApiException(409, "step needs the network paused: POST /api/pause first");
        var net = _sc.Network;
        long done = 0;
        if (span is { } s)
        {
            if (_sc.RealTime) throw new ApiException(409, "a real-time network (linux nodes) cannot step by duration");
            long before = net.EventsProcessed;
            net.Run(s);
            done = net.EventsProcessed - before;
        }
        else
            while (done < events && net.Step()) done++;
        Sample();
        FlushTaps();
        return new { stepped_events = done, virtual_seconds = net.Elapsed.TotalSeconds, state = "paused" };
    }

    private object Clock() => new { state = _paused ? "paused" : "running", virtual_seconds = _sc.Network.Elapsed.TotalSeconds };

    /// <summary>Replaces the running network with one built from <paramref name="yaml"/> (JSON works too: it is YAML).</summary>
    public object Load(string yaml, bool realTime)
    {
        Scenario sc;
        try { sc = Scenario.Build(TopologyParser.Parse(yaml, "<request>"), realTime: realTime); }
        catch (TopologyException e) { throw new ApiException(400, string.Join("\n", e.Errors.Select(x => x.ToString()))); }
        catch (InvalidOperationException e) { throw new ApiException(400, e.Message); }
        foreach (var t in _taps) { _sc.Network.StopCapture(t.Link, t); t.Dispose(); }
        _taps.Clear();
        _sc.Network.Dispose();
        _sc = sc;
        _endNs = sc.Duration.Nanoseconds;
        Finished = false;
        _paused = false;
        _repace = true;
        ResetSamples();
        _events.Publish("scenario", new { name = Name, nodes = sc.Network.Nodes.Count, links = sc.Network.Links.Count });
        return State();
    }

    /// <summary>Stops or starts an app. A client that ran cannot start again (its figures are of that run); a server can.</summary>
    public AppReport StartStopApp(string name, bool start)
    {
        var net = _sc.Network;
        var app = net.Apps.FirstOrDefault(a => a.Name == name) ?? throw new ApiException(404, $"no app named '{name}'");
        if (start)
        {
            if (app.Running) throw new ApiException(409, $"app '{name}' is running already");
            if (app.Started && !app.Restartable) throw new ApiException(409, $"app '{name}' is a client that already ran; its figures are of that run");
            if (!app.Host.IsUp) throw new ApiException(409, $"app '{name}': host {app.Host.Name} is crashed");
            app.Begin(net.Now);
        }
        else
        {
            if (!app.Running) throw new ApiException(409, $"app '{name}' is not running");
            app.Stop();
        }
        _events.Publish("app", new { app = name, action = start ? "start" : "stop", at = net.Elapsed.TotalSeconds });
        return app.Report(net.Now);
    }

    public LiveCapture StartCapture(string link, long frames)
    {
        var l = FindLink(link);
        if (_taps.Count >= 64) throw new ApiException(429, "64 live captures are running already; stop one first");
        var tap = new LiveCapture(l, frames);
        _sc.Network.Capture(l, tap);
        _taps.Add(tap);
        tap.Flush(); // the section and interface blocks go out at once, so a reader sees a valid file before any frame
        return tap;
    }

    /// <summary>A live capture of one port of a node (a switch's or a router's), as a capture on a real device's port.</summary>
    public LiveCapture StartPortCapture(string node, int port, long frames)
    {
        var n = FindNode(node);
        if (port < 0 || port >= n.Ports.Count) throw new ApiException(404, $"{node} has ports 0 to {n.Ports.Count - 1}, not {port}");
        var l = n.Ports[port].Link ?? throw new ApiException(409, $"{node}:{port} has no link");
        if (_taps.Count >= 64) throw new ApiException(429, "64 live captures are running already; stop one first");
        var tap = new LiveCapture(l, frames);
        _sc.Network.Capture(n.Ports[port], tap);
        _taps.Add(tap);
        tap.Flush();
        return tap;
    }

    public bool StopCapture(LiveCapture tap)
    {
        if (!_taps.Remove(tap)) return false;
        _sc.Network.StopCapture(tap.Link, tap);
        tap.Dispose();
        return true;
    }

    public void Dispose()
    {
        _stop = true;
        _wake.Set();
        if (_thread.IsAlive) _thread.Join();
        _events.Complete();
    }
}
