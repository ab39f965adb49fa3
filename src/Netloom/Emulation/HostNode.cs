using Netloom.Stack;
using Netloom.Time;

namespace Netloom.Emulation;

/// <summary>
/// A host: one user-level stack (<see cref="Interface"/>) on one port, and the apps running on it.
/// Arriving frames wait in a bounded inbox until the host's next poll, which runs at the same
/// virtual instant; the host then sleeps until its stack's or its apps' next deadline.
/// </summary>
public sealed partial class HostNode : Node
{
    /// <summary>The stack's device: frames in from the inbox, frames out onto the port's link.</summary>
    private sealed class SimDevice(HostNode host, int maxFrame) : IFrameDevice
    {
        private const int InboxLimit = 8192;
        private readonly Queue<SimFrame> _inbox = new();
        private readonly List<SimFrame> _handedOut = [];
        private SimFrame? _tx;

        public int MaxFrameSize => maxFrame;
        public int Waiting => _inbox.Count;

        public bool Enqueue(SimFrame frame)
        {
            if (_inbox.Count >= InboxLimit) return false;
            _inbox.Enqueue(frame);
            return true;
        }

        public bool TryReceive(out ReadOnlySpan<byte> frame)
        {
            if (_inbox.TryDequeue(out var f))
            {
                _handedOut.Add(f);
                frame = f.Span;
                return true;
            }
            frame = default;
            return false;
        }

        public void ReleaseReceived()
        {
            foreach (var f in _handedOut) host.Network.Pool.Return(f);
            _handedOut.Clear();
        }

        public Span<byte> TryAllocateTransmit(int length)
        {
            if (length > maxFrame) return Span<byte>.Empty;
            _tx ??= host.Network.Pool.Rent();
            return _tx is null ? Span<byte>.Empty : _tx.Data.AsSpan(0, length);
        }

        public void CommitTransmit(int length)
        {
            var f = _tx!;
            _tx = null;
            f.Length = length;
            host.Transmit(f);
        }

        public void Flush() { }

        public void Clear()
        {
            while (_inbox.TryDequeue(out var f)) host.Network.Pool.Return(f);
            ReleaseReceived();
        }
    }

    private readonly List<App> _apps = [];
    private readonly int _seed;
    private SimDevice _device;
    private int _generation;

    /// <summary>A host whose stack uses <paramref name="options"/>, with the MAC of the host's port.</summary>
    internal HostNode(Network network, int id, string name, StackOptions options, int seed) : base(network, id, name)
    {
        Options = options with { Mac = AddPort().Mac };
        _seed = seed;
        _device = new SimDevice(this, options.Mtu + 14);
        Stack = new Interface(Options, _device, seed);
        _sockets = new Async.HostSockets(this);
        Context = new Async.HostContext(this);
    }

    public StackOptions Options { get; }

    /// <summary>
    /// The stack options of a dual-stack emulated host: a static IPv6 address and default router,
    /// DAD off (the emulator checks addresses unique when they are given).
    /// </summary>
    internal static Func<StackOptions, StackOptions> StaticIpv6(Prefix6 address, Wire.Ipv6Address? gateway) =>
        o => o with { Ipv6 = true, Ipv6Address = address.Address, Ipv6PrefixLength = address.PrefixLength, Ipv6Gateway = gateway, DadTransmits = 0 };
    /// <summary>The host's stack. Replaced by a fresh one when the host restarts after a crash.</summary>
    internal Interface Stack { get; private set; }
    internal NodePort Port => Ports[0];
    internal IReadOnlyList<App> Apps => _apps;
    private long NowNs => Network.NowNs;

    internal void AddApp(App app) => _apps.Add(app);

    private void Transmit(SimFrame frame) => Send(Port, frame, NowNs);

    internal override void Start(long now) => RequestWake(now);

    internal override void Receive(NodePort port, SimFrame frame, long now)
    {
        if (!IsUp || !_device.Enqueue(frame)) { Discarded++; Network.Pool.Return(frame); return; }
        RequestWake(now);
    }

    internal override void Wake(long now)
    {
        if (!IsUp) return;
        var at = new Instant(now);
        for (int round = 0; round < 64; round++)
        {
            int frames = Stack.Poll(at);
            while (Stack.TryTakePingReply(out var reply))
                foreach (var app in _apps) app.OnPingReply(reply);
            while (Stack.TryTakePingReply6(out var reply6))
                foreach (var app in _apps) app.OnPingReply6(reply6);
            bool busy = false;
            foreach (var app in _apps)
                if (app.Running) busy |= app.Poll(at);
            if (frames == 0 && !busy && _device.Waiting == 0) break;
        }
        long next = Stack.PollAt()?.Nanoseconds ?? long.MaxValue;
        foreach (var app in _apps)
            if (app.Running) next = Math.Min(next, app.WakeAt);
        if (_device.Waiting > 0) next = now; // more frames than the round budget: go on at once
        // A deadline already past means the stack is waiting on something (a full frame pool): retry shortly.
        else if (next <= now) next = now + 10_000;
        if (next != long.MaxValue) RequestWake(next);
    }

    /// <summary>Asks for a poll at <paramref name="at"/> (apps use it when they have a deadline of their own).</summary>
    internal void WakeAtTime(long at) => RequestWake(at);

    private protected override void OnCrash()
    {
        _sockets.FailAll(new IOException($"host {Name} crashed"));
        _device.Clear();
        foreach (var app in _apps) app.HostCrashed();
    }

    private protected override void OnRestart(long now)
    {
        _generation++;
        _device = new SimDevice(this, Options.Mtu + 14);
        Stack = new Interface(Options, _device, _seed + 7919 * _generation);
        foreach (var app in _apps) app.HostRestarted(new Instant(now));
        RequestWake(now);
    }
}
