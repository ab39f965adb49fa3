using Netloom.Rings;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Sockets;

/// <summary>How a <see cref="NetStack"/> runs.</summary>
public sealed record NetStackOptions
{
    /// <summary>Block (sleep until a frame or timer) or BusyPoll (spin on the port: lowest latency, a whole core).</summary>
    public WaitMode Wait { get; init; } = WaitMode.Block;
    /// <summary>Wraps the port's device (impairment, capture): the stack sends and receives through what this returns.</summary>
    internal Func<IFrameDevice, Func<Instant>, IFrameDevice>? Device { get; init; }
    /// <summary>When a device decorator next has a frame due (delay lines), so the owner wakes for it.</summary>
    internal Func<Instant?>? DeviceDue { get; init; }
    /// <summary>Seed for the stack's randomness (0: unpredictable, as production wants).</summary>
    public int Seed { get; init; }
    /// <summary>Dispose the port with the stack.</summary>
    public bool OwnsPort { get; init; } = true;
}

/// <summary>
/// A user-level TCP/IP stack on one port, with its owner thread (Onload's stack and its lock).
/// The socket API comes from <see cref="SocketStack"/>.
/// The owner thread polls the port and runs timers; calls from any thread take the stack lock,
/// do their work (a send goes out on the caller's thread) and leave. Sockets come from
/// <see cref="Listen"/>, <see cref="ConnectAsync"/> and <see cref="OpenUdp"/>.
/// </summary>
public sealed class NetStack : SocketStack, IDisposable
{
    private static readonly long MaxSleepNs = 10_000_000; // callers may arm timers while the owner sleeps
    private readonly IPort _port;
    private readonly NetStackOptions _settings;
    private readonly Thread _owner;
    private readonly MonotonicClock _clock = new();
    private volatile bool _stopping;
    private Exception? _failure;

    public NetStack(IPort port, StackOptions options, NetStackOptions? settings = null)
    {
        _port = port;
        _settings = settings ?? new NetStackOptions();
        IFrameDevice device = new PortDevice(port, options.Mtu);
        if (_settings.Device is { } wrap) device = wrap(device, () => Now);
        Interface = new Interface(options, device, _settings.Seed);
        Interface.Poll(Now);
        _owner = new Thread(Run) { IsBackground = true, Name = $"netloom {options.Address}" };
        _owner.Start();
    }

    /// <summary>Opens the port named by a spec (see <see cref="PortSpec"/>) and runs a stack on it.</summary>
    public static NetStack Open(string portSpec, StackOptions options, NetStackOptions? settings = null) =>
        new(Ports.Open(portSpec), options, settings);

    internal override Interface Interface { get; }
    /// <summary>Bytes the owner thread has allocated since it started (flat in steady state).</summary>
    public long OwnerAllocatedBytes { get; private set; }
    /// <summary>Monotonic wall-clock time as the stack sees it.</summary>
    public override Instant Now => _clock.Now;

    private protected override void ThrowIfStopped()
    {
        if (_failure is not null) throw new InvalidOperationException($"the stack's owner thread failed: {_failure.Message}", _failure);
        ObjectDisposedException.ThrowIf(_stopping, this);
    }

    private void Run()
    {
        _port.WaitMode = _settings.Wait;
        long allocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            while (!_stopping)
            {
                int moved;
                Instant? next;
                lock (Lock)
                {
                    moved = Interface.Poll(Now);
                    next = Interface.PollAt();
                    if (_settings.DeviceDue?.Invoke() is { } d && (next is null || d < next.Value)) next = d;
                }
                OwnerAllocatedBytes = GC.GetAllocatedBytesForCurrentThread() - allocatedAtStart;
                if (moved > 0) continue;
                if (_settings.Wait == WaitMode.BusyPoll) { Thread.SpinWait(10); continue; }
                long waitNs = next is { } n ? Math.Clamp(n.Nanoseconds - Now.Nanoseconds, 0, MaxSleepNs) : MaxSleepNs;
                if (waitNs > 0) _port.WaitRx(Duration.FromNanoseconds(waitNs));
            }
        }
        catch (Exception e)
        {
            _failure = e;
            Console.Error.WriteLine($"netloom: stack owner thread failed: {e}");
        }
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _owner.Join();
        if (_settings.OwnsPort) _port.Dispose();
    }
}
