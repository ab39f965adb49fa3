using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
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
    /// <summary>
    /// Asked by the owner thread whenever it would sleep on the port, with the longest it may
    /// sleep (nanoseconds). It may sleep instead, elsewhere, and answer true: the application's
    /// own threads are taking the frames (Onload's "the application polls the stack"), so the
    /// owner stands back, runs only the timers, and neither competes for the frames nor costs a
    /// wake-up per batch. Answering false makes the owner watch the port as usual.
    /// </summary>
    internal Func<long, bool>? StandBack { get; init; }
    /// <summary>Seed for the stack's randomness (0: unpredictable, as production wants).</summary>
    public int Seed { get; init; }
    /// <summary>Dispose the port with the stack.</summary>
    public bool OwnsPort { get; init; } = true;
    /// <summary>Where the stack logs (category <c>Netloom.Sockets.NetStack</c>); none when null. The library never writes to the console.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }
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
    private readonly IPort _port;
    private readonly NetStackOptions _settings;
    private readonly PortDevice _device;
    private readonly OwnerLoop _loop;
    private readonly Thread _owner;
    private readonly MonotonicClock _clock = new();
    private readonly ILogger _log;
    private readonly IDisposable _stackMetrics, _portMetrics;
    private volatile bool _stopping;
    private Exception? _failure;

    public NetStack(IPort port, StackOptions options, NetStackOptions? settings = null)
    {
        _port = port;
        _settings = settings ?? new NetStackOptions();
        _log = (_settings.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger<NetStack>();
        _device = new PortDevice(port, options.Mtu);
        IFrameDevice device = _device;
        if (_settings.Device is { } wrap) device = wrap(device, () => Now);
        Interface = new Interface(options, device, _settings.Seed);
        Interface.Poll(Now);
        _loop = new OwnerLoop(Interface, port, _clock, Lock, _settings.DeviceDue, _settings.StandBack);
        _stackMetrics = StackMetrics.Register(Interface, port.Name);
        _portMetrics = PortMetrics.Register(port);
        _owner = new Thread(Run) { IsBackground = true, Name = $"netloom {options.Address}" };
        _owner.Start();
        SocketsLog.StackStarted(_log, options.Address, port.Name, _settings.Wait);
    }

    /// <summary>
    /// Opens the port named by a spec (see <see cref="PortSpec"/>) and runs a stack on it. The
    /// port declares the checksum capability (<see cref="PortOptions.ChecksumOffload"/>): over
    /// shm to another stack that declares it, TCP and UDP checksums are neither computed nor
    /// verified. Open the port yourself, without it, for full checksums.
    /// </summary>
    public static NetStack Open(string portSpec, StackOptions options, NetStackOptions? settings = null) =>
        new(Ports.Open(portSpec, new PortOptions { ChecksumOffload = true }), options, settings);

    internal override Interface Interface { get; }
    /// <summary>Bytes the owner thread has allocated since it started (flat in steady state).</summary>
    public long OwnerAllocatedBytes => _loop.AllocatedBytes;
    /// <summary>Monotonic wall-clock time as the stack sees it.</summary>
    public override Instant Now => _clock.Now;

    private protected override void ThrowIfStopped()
    {
        if (_failure is not null) throw new InvalidOperationException($"the stack's owner thread failed: {_failure.Message}", _failure);
        ObjectDisposedException.ThrowIf(_stopping, this);
    }

    private void Run()
    {
        try { _loop.Run(() => _stopping, _settings.Wait); }
        catch (Exception e)
        {
            // Socket calls rethrow it (ThrowIfStopped); the log is for whoever watches the process.
            _failure = e;
            SocketsLog.OwnerFailed(_log, e, Address);
        }
    }

    /// <summary>
    /// Stops the owner thread and releases the port. Not from a thread holding <see cref="SocketStack.Lock"/>:
    /// the owner's port waits take that lock to sync the ring, and this waits for the owner to end.
    /// </summary>
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _owner.Join();
        // Sockets may still be closed after this (a FIN, a RST): they must find the device shut, not the freed port.
        lock (Lock) _device.Close();
        _stackMetrics.Dispose();
        _portMetrics.Dispose();
        if (_settings.OwnsPort) _port.Dispose();
        SocketsLog.StackStopped(_log, Address);
    }
}
