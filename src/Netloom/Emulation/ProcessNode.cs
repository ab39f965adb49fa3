using System.Diagnostics;
using Netloom.Rings;
using Netloom.Wire;

namespace Netloom.Emulation;

/// <summary>
/// An unmodified program as a node: it runs under <c>netloom run</c>, whose user-level stack reaches
/// the emulated network through a shm port this node creates (the emulator is the port's server,
/// the program's engine its client). The program's kernel sockets are not involved, so it needs no
/// namespace and no root, but it runs on the wall clock: the network must run in real time.
/// <para>
/// The program starts <see cref="StartAfter"/> into the run. A crash stops it (SIGTERM, which
/// <c>netloom run</c> passes on, then SIGKILL after two seconds) and a restart starts it again: the
/// shm port takes the new engine as its peer. Its output is kept (the last 200 lines) and passed
/// to <see cref="Output"/>.
/// </para>
/// </summary>
internal sealed class ProcessNode : Node, IAttachedNode
{
    private const int KeptLines = 200;

    /// <summary>
    /// How to start <c>netloom ARGS</c>: set by the netloom CLI, which knows where it is and builds
    /// the interposer. Without it, a topology with process nodes cannot be built.
    /// </summary>
    internal static Func<IReadOnlyList<string>, ProcessStartInfo>? Launcher { get; set; }

    /// <summary>Where each line the programs print goes, prefixed with the node's name (the CLI sets stderr).</summary>
    internal static Action<string>? Output { get; set; }

    private readonly PortAttachment _shm;
    private readonly Queue<string> _lines = new();
    private Launched? _process;
    private Task _stopping = Task.CompletedTask;
    private bool _disposed;

    private ProcessNode(Network network, int id, string name, IPort shm, string portSpec, string[] argv, Ipv4Address address, int prefixLength,
        Ipv4Address? gateway, int mtu, long startAfterNs, string? workingDirectory) : base(network, id, name)
    {
        WorkingDirectory = workingDirectory;
        _shm = new PortAttachment(shm, mtu);
        PortSpec = portSpec;
        Program = argv;
        Address = address;
        PrefixLength = prefixLength;
        Gateway = gateway;
        Mtu = mtu;
        StartAfterNs = startAfterNs;
        AddPort();
    }

    internal NodePort Port => Ports[0];
    public string PortSpec { get; }
    public IReadOnlyList<string> Program { get; }
    public Ipv4Address Address { get; }
    public int PrefixLength { get; }
    public Ipv4Address? Gateway { get; }
    public int Mtu { get; }
    public long StartAfterNs { get; }
    /// <summary>Where the program runs: the topology file's folder, so paths in its arguments can be relative to the file.</summary>
    public string? WorkingDirectory { get; }
    public long FramesFromProgram => _shm.FramesIn;
    public long FramesToProgram => _shm.FramesOut;
    /// <summary>How many times the program was started.</summary>
    public int Starts { get; private set; }
    public int? Pid { get; private set; }
    /// <summary>The exit status of the last run that ended (128 + N when a signal N ended it).</summary>
    public int? ExitCode { get; private set; }
    public bool Running => _process is { } l && !HasExited(l.Process);

    /// <summary>The last lines the program printed (stdout and stderr together).</summary>
    public IReadOnlyList<string> RecentOutput { get { lock (_lines) return [.. _lines]; } }

    internal static ProcessNode Create(Network network, int id, string name, string[] argv, Ipv4Address address, int prefixLength,
        Ipv4Address? gateway, int mtu, long startAfterNs, string? workingDirectory)
    {
        if (Launcher is null)
            throw new InvalidOperationException($"process node {name}: process nodes run their program under `netloom run`; run the topology with the netloom CLI");
        if (argv.Length == 0) throw new ArgumentException($"process node {name}: no program to run", nameof(argv));
        string spec = $"shm:nlp{Environment.ProcessId % 100000}x{Network.NextKernelObject()}";
        int buffer = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(2048, mtu + 14));
        var port = Rings.Ports.Open(spec, new PortOptions { RingSize = 1024, BufferSize = buffer });
        return new ProcessNode(network, id, name, port, spec, argv, address, prefixLength, gateway, mtu, startAfterNs, workingDirectory);
    }

    internal override void Start(long now) => Network.Post(null, now + StartAfterNs, _ => Launch(), null);

    // The stop waits for the program, so it runs off the emulator's thread; a restart waits for it.
    private protected override void OnCrash()
    {
        var p = _process;
        _process = null;
        _stopping = Task.Run(() => Stop(p));
    }

    /// <summary>The node's IPv6 address and default router, when the topology speaks IPv6 (given to `netloom run` as --ip6 and --gateway6).</summary>
    internal Prefix6? Ipv6 { get; private set; }
    internal Wire.Ipv6Address? Gateway6 { get; private set; }

    internal void SetIpv6(Prefix6 address, Wire.Ipv6Address? gateway) => (Ipv6, Gateway6) = (address, gateway);

    private protected override void OnRestart(long now) => Launch();

    private void Launch()
    {
        if (_disposed || !IsUp || Running) return;
        if (!_stopping.IsCompleted)
        {
            // The shm port takes one peer at a time: the new engine connects once the old one is gone.
            Network.Post(null, Network.NowNs + 100_000_000, _ => Launch(), null);
            return;
        }
        var args = new List<string> { "run", "--port", PortSpec, "--ip", $"{Address}/{PrefixLength}", "--mtu", Mtu.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (Gateway is { } g) { args.Add("--gateway"); args.Add(g.ToString()); }
        if (Ipv6 is { } a6) { args.Add("--ip6"); args.Add(a6.ToString()); }
        if (Gateway6 is { } g6) { args.Add("--gateway6"); args.Add(g6.ToString()); }
        args.Add("--");
        args.AddRange(Program);
        var psi = Launcher!(args);
        if (WorkingDirectory is not null) psi.WorkingDirectory = WorkingDirectory;
        // The node's MAC, so a restarted program keeps it and its neighbours' ARP caches stay right.
        psi.Environment["NETLOOM_MAC"] = Port.Mac.ToString();
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.RedirectStandardInput = true;
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var launched = new Launched(p);
        p.OutputDataReceived += (_, e) => Line(e.Data);
        p.ErrorDataReceived += (_, e) => Line(e.Data);
        // An end of its own (a stop reports it too). Off the thread that raised the event: that can
        // be any thread reading HasExited first (Running, on the emulator's thread), and the report
        // may wait for the program's output.
        p.Exited += (_, _) => Task.Run(() => ReportEnd(launched));
        try { p.Start(); }
        catch (System.ComponentModel.Win32Exception e)
        {
            Line($"(could not start: {e.Message})");
            p.Dispose();
            return;
        }
        p.StandardInput.Close();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _process = launched;
        Pid = p.Id;
        Starts++;
    }

    private void Line(string? line)
    {
        if (line is null) return;
        lock (_lines)
        {
            if (_lines.Count == KeptLines) _lines.Dequeue();
            _lines.Enqueue(line);
        }
        Output?.Invoke($"{Name}| {line}");
    }

    private static bool HasExited(Process p)
    {
        try { return p.HasExited; }
        catch (InvalidOperationException) { return true; }
    }

    /// <summary>One start of the program, and whether its end is reported.</summary>
    private sealed class Launched(Process process)
    {
        public Process Process { get; } = process;
        public bool Reported;
    }

    /// <summary>
    /// The program's last lines, then "(exited with status N)", once per start, whichever of the
    /// exit event and a stop comes first; the other waits until it is written. (The exit event runs
    /// on a pool thread, and Process.WaitForExit returns without waiting for a handler another
    /// thread is running: a stop followed at once by the emulator's exit could lose the line.)
    /// </summary>
    private void ReportEnd(Launched l)
    {
        lock (l)
        {
            if (l.Reported) return;
            l.Reported = true;
            // Output the program wrote before it ended may still be on its way through the pipes:
            // up to 2 s for it (a child it left behind may hold them open).
            using var drained = new CancellationTokenSource(2000);
            try { l.Process.WaitForExitAsync(drained.Token).Wait(); }
            catch (AggregateException) { }
            try { ExitCode = l.Process.ExitCode; }
            catch (InvalidOperationException) { ExitCode = null; }
            Line(ExitCode is { } code ? $"(exited with status {code})" : "(exited)");
        }
    }

    /// <summary>SIGTERM (netloom run passes it to the program), then SIGKILL to the tree if it lingers.</summary>
    private void Stop(Launched? l)
    {
        if (l is null) return;
        var p = l.Process;
        if (!HasExited(p))
        {
            try
            {
                Process.Start(new ProcessStartInfo("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { RedirectStandardError = true })?.WaitForExit(2000);
                if (!p.WaitForExit(2000)) p.Kill(entireProcessTree: true);
                p.WaitForExit(2000);
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { }
        }
        if (HasExited(p)) ReportEnd(l);
        p.Dispose();
    }

    internal override void Receive(NodePort port, SimFrame frame, long now) => DeliverTo(_shm, frame);

    int IAttachedNode.Poll(long now) => PollFrom(_shm, now);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stopping.Wait();
        Stop(_process);
        _process = null;
        _shm.Dispose();
    }
}
