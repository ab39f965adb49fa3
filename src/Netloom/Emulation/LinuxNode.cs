using System.Diagnostics;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;

namespace Netloom.Emulation;

/// <summary>
/// A real Linux network namespace in the emulated network: a TAP device is created, moved into a
/// new namespace and addressed there, so the kernel's own stack (curl, ping, iperf3 run with
/// <c>ip netns exec</c>) talks through the emulated links. It needs root and real time: the
/// kernel does not run on virtual time. Disposing the network deletes the namespace.
/// </summary>
public sealed class LinuxNode : Node, IDisposable, IAttachedNode
{
    private readonly PortAttachment _tap;
    private bool _disposed;

    private readonly string _device;

    private LinuxNode(Network network, int id, string name, string ns, IPort tap, string device, int mtu) : base(network, id, name)
    {
        Namespace = ns;
        _device = device;
        _tap = new PortAttachment(tap, mtu);
        AddPort();
    }

    /// <summary>The namespace's name: run commands in it with <c>ip netns exec NAME ...</c>.</summary>
    public string Namespace { get; }
    internal NodePort Port => Ports[0];
    public long FramesFromKernel => _tap.FramesIn;
    public long FramesToKernel => _tap.FramesOut;

    /// <summary>Makes the namespace and its TAP device, addressed <paramref name="address"/>/<paramref name="prefixLength"/>.</summary>
    internal static LinuxNode Create(Network network, int id, string name, Wire.Ipv4Address address, int prefixLength, Wire.Ipv4Address? gateway, int mtu)
    {
        if (!OperatingSystem.IsLinux() || !Environment.IsPrivilegedProcess)
            throw new InvalidOperationException($"linux node {name}: needs Linux and root");
        int pid = Environment.ProcessId % 100000, ordinal = network.RealTimeOrdinal;
        string ns = ordinal == 0 ? $"nl{pid}-{name}" : $"nl{pid}n{ordinal}-{name}";
        string tapName = $"nlt{pid}x{Network.NextKernelObject()}"; // at most 15 characters below a million
        Ip($"netns add {ns}");
        IPort? tap = null;
        try
        {
            tap = Rings.Ports.Open($"tap:{tapName}", new PortOptions { RingSize = 512, BufferSize = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(2048, mtu + 14)) });
            Ip($"link set {tapName} netns {ns}");
            Ip($"-n {ns} link set lo up");
            Ip($"-n {ns} link set {tapName} mtu {mtu} up");
            Ip($"-n {ns} addr add {address}/{prefixLength} dev {tapName}");
            if (gateway is { } gw) Ip($"-n {ns} route add default via {gw}");
            return new LinuxNode(network, id, name, ns, tap, tapName, mtu);
        }
        catch
        {
            tap?.Dispose();
            TryIp($"netns del {ns}");
            throw;
        }
    }

    /// <summary>The IPv6 address of a dual-stack topology, and its default router (no DAD: the file's addresses are checked unique).</summary>
    internal void AddIpv6(Prefix6 address, Wire.Ipv6Address? gateway)
    {
        Ip($"-n {Namespace} -6 addr add {address} dev {_device} nodad");
        if (gateway is { } gw) Ip($"-n {Namespace} -6 route add default via {gw} dev {_device}");
        Ipv6 = address;
    }

    /// <summary>The namespace's IPv6 address, when the topology speaks IPv6.</summary>
    internal Prefix6? Ipv6 { get; private set; }

    private static void Ip(string args)
    {
        if (!TryIp(args, out string err)) throw new InvalidOperationException($"ip {args}: {err.Trim()}");
    }

    private static bool TryIp(string args) => TryIp(args, out _);

    private static bool TryIp(string args, out string error)
    {
        var psi = new ProcessStartInfo("ip", args) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0;
    }

    internal override void Receive(NodePort port, SimFrame frame, long now) => DeliverTo(_tap, frame);

    /// <summary>Takes what the kernel sent and puts it on the link (called by the real-time loop).</summary>
    int IAttachedNode.Poll(long now) => PollFrom(_tap, now);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _tap.Dispose();
        TryIp($"netns del {Namespace}");
    }
}
