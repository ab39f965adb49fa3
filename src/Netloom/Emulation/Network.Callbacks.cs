using Netloom.Time;

namespace Netloom.Emulation;

public sealed partial class Network
{
    /// <summary>A callback waiting in the event queue: a scenario action, or a continuation of async code on a host.</summary>
    private struct Callback
    {
        public HostNode? Host;
        public object Function; // Action<object?> or SendOrPostCallback
        public object? State;
    }

    private readonly SlotPool<Callback> _callbacks = new();
    private int _ownerThread = Environment.CurrentManagedThreadId;
    private readonly List<Callback> _foreignPosts = [];
    private volatile bool _hasForeignPosts;

    /// <summary>
    /// Continuations that arrived from another thread: code on a host awaited something outside the
    /// emulator (Task.Delay, real I/O). They run at the next event, which makes the run depend on
    /// wall-clock timing: a deterministic test keeps this at zero (use <see cref="HostNode.Delay"/>).
    /// </summary>
    public long ForeignContinuations { get; private set; }

    /// <summary>
    /// Runs <paramref name="function"/>(<paramref name="state"/>) at virtual time <paramref name="at"/>
    /// (absolute nanoseconds), on <paramref name="host"/>'s synchronization context when a host is given.
    /// Callbacks for the same instant run in the order they were posted. Slots are reused, so
    /// posting allocates nothing once the queue has seen its peak.
    /// </summary>
    internal void Post(HostNode? host, long at, Action<object?> function, object? state) => Post(host, at, (object)function, state);

    /// <summary>As Post at the current instant, for a synchronization context's callbacks (from any thread).</summary>
    internal void PostFromContext(HostNode host, SendOrPostCallback function, object? state) => Post(host, NowNs, (object)function, state);

    private void Post(HostNode? host, long at, object function, object? state)
    {
        var callback = new Callback { Host = host, Function = function, State = state };
        if (Environment.CurrentManagedThreadId != _ownerThread)
        {
            lock (_foreignPosts) { _foreignPosts.Add(callback); _hasForeignPosts = true; }
            return;
        }
        Schedule(Math.Max(at, NowNs), callback);
    }

    private void Schedule(long at, in Callback callback) =>
        _queue.Push(at, new SimEvent { Kind = EventKind.Callback, Target = _callbacks.Add(callback) });

    private void TakeForeignPosts()
    {
        lock (_foreignPosts)
        {
            foreach (var c in _foreignPosts) Schedule(NowNs, c);
            ForeignContinuations += _foreignPosts.Count;
            _foreignPosts.Clear();
            _hasForeignPosts = false;
        }
    }

    private void RunCallback(int slot)
    {
        var c = _callbacks.Take(slot);
        if (c.Host is not { } host) { Invoke(c.Function, c.State); return; }
        // On the host: its context (so awaits come back here), its stack's clock brought up to now,
        // and a poll afterwards so whatever the code sent or armed is taken care of.
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(host.Context);
        try
        {
            host.Stack.Advance(Now);
            Invoke(c.Function, c.State);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
            host.WakeAtTime(NowNs);
        }
    }

    private static void Invoke(object function, object? state)
    {
        if (function is Action<object?> action) action(state);
        else ((SendOrPostCallback)function)(state);
    }
}
