using System.Threading.Tasks.Sources;

namespace Netloom.Sockets;

/// <summary>
/// A reusable one-waiter event for the socket layer's awaits: armed and fired with the stack lock
/// held, so there is no race between checking a condition and waiting for it. Awaiting it
/// allocates nothing; continuations run on the thread pool, never on the stack's owner thread.
/// </summary>
internal sealed class Signal : IValueTaskSource
{
    private readonly Lock _lock;
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private bool _armed;
    private CancellationTokenRegistration _cancel;

    public Signal(Lock stackLock) => _lock = stackLock;

    /// <summary>Call with the stack lock held, after finding the condition false.</summary>
    public ValueTask Arm(CancellationToken ct)
    {
        if (_armed) throw new InvalidOperationException("another operation of the same kind is already waiting on this socket");
        ct.ThrowIfCancellationRequested();
        _core.Reset();
        _armed = true;
        if (ct.CanBeCanceled) _cancel = ct.UnsafeRegister(static (s, token) => ((Signal)s!).Cancel(token), this);
        return new ValueTask(this, _core.Version);
    }

    /// <summary>Call with the stack lock held: wakes the waiter, if any.</summary>
    public void Fire()
    {
        if (!_armed) return;
        _armed = false;
        // Unregister, not Dispose: Dispose waits for a running Cancel callback, which waits for the lock we hold.
        _cancel.Unregister();
        _cancel = default;
        _core.SetResult(true);
    }

    private void Cancel(CancellationToken token)
    {
        lock (_lock)
        {
            if (!_armed) return;
            _armed = false;
            _core.SetException(new OperationCanceledException(token));
        }
    }

    public void GetResult(short token) => _core.GetResult(token);
    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
