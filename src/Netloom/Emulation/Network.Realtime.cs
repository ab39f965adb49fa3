using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Emulation;

public sealed partial class Network : IDisposable
{
    private readonly List<IAttachedNode> _attached = [];

    // The kernel objects real-time nodes make (namespaces, TAP devices, shm files) are named after
    // the process id. A process that builds several networks at once (tests do) tells its
    // networks' namespaces apart by this ordinal, 0 for its first (so the CLI's are nlPID-NAME),
    // and its devices and files by a count over all of them.
    private static int s_realTimeNetworks, s_kernelObjects;
    private int _realTimeOrdinal = -1;

    /// <summary>This network's place among the process's networks with real-time nodes.</summary>
    internal int RealTimeOrdinal
    {
        get
        {
            if (_realTimeOrdinal < 0) _realTimeOrdinal = Interlocked.Increment(ref s_realTimeNetworks) - 1;
            return _realTimeOrdinal;
        }
    }

    /// <summary>A number no other TAP device or shm file of this process's nodes has.</summary>
    internal static int NextKernelObject() => Interlocked.Increment(ref s_kernelObjects) - 1;

    /// <summary>True when the network must run in real time (it has a <see cref="LinuxNode"/> or a process node).</summary>
    public bool NeedsRealTime => _attached.Count > 0;

    /// <summary>Adds a real Linux namespace as a node (root only; real time only: see <see cref="RunRealTime"/>).</summary>
    public LinuxNode AddLinux(string name, Ipv4Address address, int prefixLength = 24, Ipv4Address? gateway = null, int mtu = 1500)
    {
        CheckName(name);
        var node = LinuxNode.Create(this, _nodes.Count, name, address, prefixLength, gateway, mtu);
        _attached.Add(node);
        return AddNode(node);
    }

    /// <summary>As <see cref="AddLinux(string, Ipv4Address, int, Ipv4Address?, int)"/>; IPv6 throws <see cref="ArgumentException"/> (not supported yet).</summary>
    public LinuxNode AddLinux(string name, System.Net.IPAddress address, int prefixLength = 24, System.Net.IPAddress? gateway = null, int mtu = 1500) =>
        AddLinux(name, Ipv4Address.FromIPAddress(address), prefixLength, gateway is null ? null : Ipv4Address.FromIPAddress(gateway), mtu);

    /// <summary>A program under <c>netloom run</c> as a node (real time only; see <see cref="ProcessNode"/>).</summary>
    internal ProcessNode AddProcess(string name, string[] argv, Ipv4Address address, int prefixLength, Ipv4Address? gateway, int mtu, long startAfterNs, string? workingDirectory)
    {
        CheckName(name);
        var node = ProcessNode.Create(this, _nodes.Count, name, argv, address, prefixLength, gateway, mtu, startAfterNs, workingDirectory);
        _attached.Add(node);
        return AddNode(node);
    }

    /// <summary>
    /// Runs for <paramref name="span"/> of wall-clock time: virtual time follows the monotonic clock,
    /// events run when their time comes, and linux nodes' kernels are polled in between.
    /// <paramref name="stop"/> ends the run early when it returns true (checked every turn).
    /// </summary>
    public void RunRealTime(Duration span, Func<bool>? stop = null)
    {
        StartOnce();
        var clock = new MonotonicClock(Now);
        long end = NowNs + span.Nanoseconds;
        var spin = new SpinWait();
        while (NowNs < end && stop?.Invoke() != true)
        {
            long now = Math.Min(end, clock.Now.Nanoseconds);
            int work = 0;
            while (HasEventBy(now)) { StepCore(); work++; }
            NowNs = Math.Max(NowNs, now);
            foreach (var a in _attached) work += a.Poll(NowNs);
            if (work > 0) { spin.Reset(); continue; }
            // Idle: the kernel side is polled, so sleep briefly rather than for the next event's full gap.
            long gap = (_queue.Count > 0 ? _queue.PeekTime : end) - now;
            if (gap > 2_000_000) Thread.Sleep(1);
            else spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    /// <summary>Closes captures, removes the namespaces of linux nodes and stops process nodes' programs.</summary>
    public void Dispose()
    {
        CloseCaptures();
        foreach (var a in _attached) a.Dispose();
        _attached.Clear();
    }
}
