using System.Runtime.InteropServices;
using Netloom.Rings;
using Netloom.Run.Native;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Stack.Devices;
using Netloom.Wire;
using Netloom.Wire.Capture;

namespace Netloom.Run;

/// <summary>
/// The process's one engine: a user-level stack on the configured port (its owner thread keeps
/// ACKs, timers and retransmissions going while the program computes or sleeps), the table from
/// descriptor numbers to sockets, and the threads sleeping until a socket changes.
/// Every call takes the stack lock, so any number of program threads may use sockets at once.
/// </summary>
internal sealed unsafe partial class Engine : ISocketEngine
{
    public const int MaxFd = 1 << 20; // NL_MAX_FD
    private static HostTable* _host;
    public static Engine? Instance { get; private set; }

    public readonly EngineConfig Config;
    public readonly NetStack Stack;
    private readonly ICaptureWriter? _capture;
    private readonly DescriptorTable<RunSocket> _fds = new();
    private readonly List<Waiter> _sleepers = new();
    private readonly Dictionary<int, EpollSet> _epolls = new();
    // The port when a thread sleeping on it can be woken by other events (shm and pipe ports; a
    // TAP's wait sleeps in poll(2), so there threads sleep on their eventfds and the owner thread
    // watches the port).
    private readonly PortBase? _wakeablePort;
    private readonly IPort _port;

    private Engine(EngineConfig config, NetStack stack, ICaptureWriter? capture, IPort port)
    {
        Config = config;
        Stack = stack;
        _capture = capture;
        _port = port;
        _wakeablePort = port is PortBase { RxWaitInterruptible: true } p ? p : null;
        _ownerKick = _wakeablePort is null ? -1 : Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        _ipv6Settled = !config.Ipv6;
        ScopeId = KernelIndex(config.Port);
    }

    public Lock Lock => Stack.Lock;
    public Interface Interface => Stack.Interface;

    /// <summary>Starts the engine; null (after one line on stderr) when it cannot, and the program stays on the kernel.</summary>
    public static Engine? Start(HostTable* host)
    {
        _host = host;
        _ = ExitLingerMs; // the environment as it is now (the type's static fields read it once, here)
        var config = EngineConfig.FromEnvironment(Environment.GetEnvironmentVariable, out var error);
        if (config is null) { Warn($"{error}; this program's sockets stay on the kernel"); return null; }
        ICaptureWriter? capture = null;
        try
        {
            var b = BitConverter.GetBytes(config.Address.Value);
            var options = new StackOptions
            {
                Mac = config.Mac ?? new MacAddress(0x02, 0x4e, 0x4c, b[2], b[1], b[0]),
                Address = config.Address, PrefixLength = config.PrefixLength, Gateway = config.Gateway, Mtu = config.Mtu,
                Ipv6 = config.Ipv6, Ipv6Address = config.Address6, Ipv6PrefixLength = config.PrefixLength6, Ipv6Gateway = config.Gateway6,
            };
            options.Validate();
            if (config.Pcap is { } pcap) capture = CaptureWriter.Create(pcap);
            // Frames above the default buffers (a large MTU over shm, as loopback's 64 KiB) need
            // bigger buffers, and fewer of them so the shared region stays small.
            int frame = config.Mtu + 14;
            var portOptions = frame <= PacketPool.DefaultBufferSize ? null
                : new PortOptions { BufferSize = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)frame), RingSize = 256 };
            var port = Ports.Open(config.Port, portOptions);
            var settings = new NetStackOptions
            {
                Device = capture is null ? null : (device, clock) => new CaptureDevice(device, capture, clock, config.Port),
                StandBack = static maxNs => Instance?.StandBack(maxNs) ?? false,
            };
            var stack = new NetStack(port, options, settings);
            return Instance = new Engine(config, stack, capture, port);
        }
        catch (Exception e)
        {
            capture?.Dispose();
            Warn($"cannot start the stack on {config.Port} ({e.Message}); this program's sockets stay on the kernel");
            return null;
        }
    }

    /// <summary>
    /// NETLOOM_EXIT_LINGER_MS, read when the engine starts: a program may empty its environment
    /// later (nginx does), and exit must still know it.
    /// </summary>
    public static readonly int ExitLingerMs =
        int.TryParse(Environment.GetEnvironmentVariable("NETLOOM_EXIT_LINGER_MS"), out int ms) ? Math.Clamp(ms, 0, 60_000) : 2000;

    /// <summary>NETLOOM_STATS=1 (read at start, as <see cref="ExitLingerMs"/>): the engine prints its counts at exit (<see cref="StatsLine"/>, the offload engine's Report).</summary>
    public static readonly bool PrintStats = Environment.GetEnvironmentVariable("NETLOOM_STATS") == "1";

    /// <summary>Keeps the interposer's table for <see cref="Warn"/> and the descriptor marks (either engine).</summary>
    public static void SetHost(HostTable* host) => _host = host;

    /// <summary>The interposer's table.</summary>
    public static HostTable* Host => _host;

    /// <summary>One line on stderr through the interposer (the engine's only output).</summary>
    public static void Warn(string message)
    {
        if (_host is null) return;
        int n = System.Text.Encoding.UTF8.GetMaxByteCount(message.Length) + 1;
        byte[] bytes = new byte[n];
        int written = System.Text.Encoding.UTF8.GetBytes(message, bytes);
        bytes[written] = 0;
        fixed (byte* p = bytes) _host->Warn(p);
    }

    // ---- descriptors ----

    /// <summary>The socket named by fd, or null. Call with the lock held.</summary>
    public RunSocket? Get(int fd) => _fds[fd];

    /// <summary>Names a socket by fd and tells the interposer it is ours. Call with the lock held.</summary>
    public bool Adopt(int fd, RunSocket socket)
    {
        if (!_fds.Name(fd, socket)) return false;
        socket.Names++;
        return true;
    }

    /// <summary>Forgets fd as a name of its socket (the interposer's table first). Call with the lock held.</summary>
    public RunSocket? Forget(int fd)
    {
        var s = _fds.Forget(fd);
        if (s is null) return null;
        s.Names--;
        s.Epoll.Closed(fd);
        return s;
    }

    /// <summary>
    /// Hands fd to the kernel: it is a kernel socket already (the placeholder), with every option
    /// the program set mirrored onto it, so libc can simply do the call. Onload does the same for
    /// destinations its stack does not serve.
    /// </summary>
    public long HandOver(int fd)
    {
        // A thread waiting on the socket under this descriptor looks again (and finds it the kernel's).
        if (Forget(fd) is { } s) WakeSleepers(s);
        return Abi.Kernel;
    }

    /// <summary>True when the stack serves this destination: on its subnet, or through its gateway, and not loopback.</summary>
    public bool Serves(Ipv4Address to) =>
        !to.IsLoopback && !to.IsUnspecified && (to.SameSubnet(Config.Address, Config.PrefixLength) || Config.Gateway is not null || to.IsBroadcast);

    public void MarkEpoll(int epfd, bool ours) => _host->MarkEpoll(epfd, ours ? 1 : 0);

    /// <summary>Whether kernel descriptors were ever added to epfd: when not, epoll_wait need not ask the kernel.</summary>
    public bool EpollHasKernelMembers(int epfd) => _host->EpollKernel(epfd) != 0;

    public EpollSet? GetEpoll(int epfd) => _epolls.GetValueOrDefault(epfd);

    public EpollSet GetOrAddEpoll(int epfd)
    {
        if (!_epolls.TryGetValue(epfd, out var set)) _epolls[epfd] = set = new EpollSet(epfd);
        return set;
    }

    public void RemoveEpoll(int epfd)
    {
        if (_epolls.Remove(epfd, out var set)) set.Clear();
    }

    // ---- waiting ----

    /// <summary>
    /// Before a socket call: the stack's clock brought up to now, and whatever frames already wait
    /// on the port taken in on the calling thread (Onload's "the application polls the stack"),
    /// so a busy program finds its data without waiting for the owner thread to wake and hand it
    /// over. Call with the lock held.
    /// </summary>
    public void Advance()
    {
        var now = Stack.Now;
        NotePoll(now.Nanoseconds);
        Interface.Poll(now);
    }

    /// <summary>A deadline in monotonic nanoseconds for a timeout (0 or less: none).</summary>
    public static long Deadline(long timeoutNs) => timeoutNs <= 0 ? long.MaxValue : Clock.NowNs() + timeoutNs;

    /// <summary>
    /// Registers this thread to be woken by the next event of <paramref name="interest"/> (a
    /// socket, an epoll set; null: of any socket). Call with the lock held.
    /// </summary>
    public void Register(Waiter w, object? interest = null)
    {
        if (w.Registered) { w.Interest = null; return; } // a wait inside a wait (a handler's call): any event wakes it
        w.Registered = true;
        w.Interest = interest;
        w.Reset();
        _sleepers.Add(w);
    }

    private void Unregister(Waiter w)
    {
        lock (Lock)
        {
            if (!w.Registered) return;
            w.Registered = false;
            w.Interest = null; // holds no socket or set alive past the wait
            _sleepers.Remove(w);
        }
    }

    /// <summary>
    /// After <see cref="Register"/> and leaving the lock: spins for the busy-poll budget (polling
    /// the stack itself, as Onload's EF_POLL_USEC does), then sleeps until woken, the deadline or
    /// a signal. Returns 0 or -EINTR.
    /// </summary>
    public long Sleep(Waiter w, long deadlineNs, void* sigmask)
    {
        try
        {
            if (Config.BusyPollMicroseconds > 0)
            {
                long spinEnd = Math.Min(deadlineNs, Clock.NowNs() + Config.BusyPollMicroseconds * 1000L);
                w.SetMode(Waiter.Spinning); // a wake-up only sets the flag: no eventfd to write and read
                while (!w.Signalled && Clock.NowNs() < spinEnd)
                {
                    lock (Lock) Advance();
                }
                if (w.SetMode(Waiter.OnEventFd)) return 0; // (a wake-up racing the switch may leave the eventfd set: one spurious wake-up later)
            }
            if (SleepOnPort(w, deadlineNs, sigmask, -1) is { } slept) return slept;
            BeginEventfdSleep();
            try { return w.Sleep(deadlineNs, sigmask); }
            finally { EndEventfdSleep(); }
        }
        finally { Unregister(w); }
    }

    /// <summary>
    /// Something changed on <paramref name="changed"/>: wakes the sleeping threads it concerns
    /// (those waiting on it, on an epoll set watching it, or on any socket) to look again. Waking
    /// every sleeper instead made each reply to one of memcslap's 50 threads wake all 50.
    /// Called with the lock held.
    /// </summary>
    public void WakeSleepers(RunSocket changed)
    {
        var list = _sleepers;
        for (int i = 0; i < list.Count; i++)
        {
            var w = list[i];
            if (w.Interest is null || w.Interest == changed || (w.Interest is EpollSet set && changed.Epoll.Watches(set)))
                w.Wake(_wakeablePort);
        }
    }

    /// <summary>An epoll_ctl made an entry of <paramref name="set"/> ready: wakes the threads waiting on it. Called with the lock held.</summary>
    public void WakeSleepers(EpollSet set)
    {
        var list = _sleepers;
        for (int i = 0; i < list.Count; i++)
            if (list[i].Interest is null || list[i].Interest == set) list[i].Wake(_wakeablePort);
    }

    /// <summary>Raises SIGPIPE on the calling thread, as the kernel does for a send on a broken connection without MSG_NOSIGNAL.</summary>
    public static void RaiseSigPipe() => Sys.Raise(Abi.SIGPIPE);

    /// <summary>Makes a placeholder: a kernel socket of the same family and type that holds the fd number (never bound or connected).</summary>
    public static int NewPlaceholder(int family, int type) => Libc.Socket(family, type, 0);
}
