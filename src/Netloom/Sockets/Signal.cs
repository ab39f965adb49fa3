using System.Threading.Tasks.Sources;

namespace Netloom.Sockets;

/// <summary>
/// Where a <see cref="Signal"/>'s waiter continues, for drivers that run all code on one thread in
/// their own order (the emulator): continuations are posted there whatever the awaiter asked
/// (ConfigureAwait(false) included), and the driver hears which signals are waiting.
/// </summary>
internal interface ISignalScheduler
{
    void Post(Action<object?> continuation, object? state);
    void Armed(Signal signal);
    void Disarmed(Signal signal);
}

/// <summary>
/// A reusable one-waiter event for the socket layer's awaits: armed and fired with the stack lock
/// held, so there is no race between checking a condition and waiting for it. Awaiting it
/// allocates nothing. Continuations run on the thread pool, never on the stack's owner thread;
/// with a scheduler, they run where the scheduler puts them.
/// </summary>
internal sealed class Signal : IValueTaskSource
{
    private readonly Lock _lock;
    private readonly ISignalScheduler? _scheduler;
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private bool _armed;
    private CancellationTokenRegistration _cancel;
    // With a scheduler the continuation is kept here and posted on completion, never run by the core.
    private Action<object?>? _continuation;
    private object? _continuationState;

    public Signal(Lock stackLock, ISignalScheduler? scheduler)
    {
        _lock = stackLock;
        _scheduler = scheduler;
    }

    /// <summary>Call with the stack lock held, after finding the condition false.</summary>
    public ValueTask Arm(CancellationToken ct)
    {
        if (_armed) throw new InvalidOperationException("another operation of the same kind is already waiting on this socket");
        ct.ThrowIfCancellationRequested();
        _core.Reset();
        _armed = true;
        _scheduler?.Armed(this);
        if (ct.CanBeCanceled) _cancel = ct.UnsafeRegister(static (s, token) => ((Signal)s!).Cancel(token), this);
        return new ValueTask(this, _core.Version);
    }

    /// <summary>Call with the stack lock held: wakes the waiter, if any.</summary>
    public void Fire() => Complete(null);

    /// <summary>Call with the stack lock held: the waiter, if any, gets <paramref name="error"/>.</summary>
    public void Fail(Exception error) => Complete(error);

    private void Cancel(CancellationToken token)
    {
        lock (_lock) Complete(new OperationCanceledException(token));
    }

    private void Complete(Exception? error)
    {
        if (!_armed) return;
        _armed = false;
        // Unregister, not Dispose: Dispose waits for a running Cancel callback, which waits for the lock we hold.
        _cancel.Unregister();
        _cancel = default;
        _scheduler?.Disarmed(this);
        if (error is null) _core.SetResult(true);
        else _core.SetException(error);
        if (_continuation is { } c)
        {
            _continuation = null;
            _scheduler!.Post(c, _continuationState);
            _continuationState = null;
        }
    }

    public void GetResult(short token) => _core.GetResult(token);
    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        if (_scheduler is null) { _core.OnCompleted(continuation, state, token, flags); return; }
        lock (_lock) // Complete runs under the lock: no completion slips between the check and the store
        {
            if (_core.GetStatus(token) != ValueTaskSourceStatus.Pending) _scheduler.Post(continuation, state);
            else
            {
                _continuation = continuation;
                _continuationState = state;
            }
        }
    }
}
