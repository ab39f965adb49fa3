using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Time;

namespace Netloom.Emulation.Async;

/// <summary>
/// An emulated host's <see cref="SocketStack"/>: the same sockets as a <see cref="NetStack"/>'s,
/// driven by the emulator in virtual time. Awaits continue on the host's context, in the event
/// queue's order, whatever the awaiter asked (ConfigureAwait(false) included); each socket call
/// asks the host for a poll, so what it sent or armed is handled at the same instant.
/// </summary>
internal sealed class HostSockets(HostNode host) : SocketStack, ISignalScheduler
{
    private readonly HashSet<Signal> _waiting = [];

    internal override Interface Interface => host.Stack;
    public override Instant Now => host.Network.Now;

    private protected override void ThrowIfStopped()
    {
        if (!host.IsUp) throw new IOException($"host {host.Name} is crashed");
    }

    private protected override void AfterCall() => host.WakeAtTime(host.Network.NowNs);

    internal override Signal NewSignal() => new(Lock, this);
    internal override bool CanBlock => false;

    internal override CancellationTokenSource CancelAfter(TimeSpan delay)
    {
        var cts = new CancellationTokenSource();
        host.Network.Post(host, host.Network.NowNs + (long)(delay.Ticks * 100), static s =>
        {
            try { ((CancellationTokenSource)s!).Cancel(); }
            catch (ObjectDisposedException) { } // the operation finished first
        }, cts);
        return cts;
    }

    void ISignalScheduler.Post(Action<object?> continuation, object? state) => host.Network.Post(host, host.Network.NowNs, continuation, state);
    void ISignalScheduler.Armed(Signal signal) => _waiting.Add(signal);
    void ISignalScheduler.Disarmed(Signal signal) => _waiting.Remove(signal);

    /// <summary>The host crashed: every socket operation waiting on it fails.</summary>
    internal void FailAll(Exception error)
    {
        lock (Lock)
            foreach (var s in _waiting.ToArray()) s.Fail(error);
    }
}

/// <summary>
/// A host's synchronization context: whatever is posted to it (await continuations, Task.Yield)
/// runs in the emulator's event queue at the current virtual instant.
/// </summary>
internal sealed class HostContext(HostNode host) : SynchronizationContext
{
    public override void Post(SendOrPostCallback d, object? state) => host.Network.PostFromContext(host, d, state);

    public override void Send(SendOrPostCallback d, object? state) =>
        throw new NotSupportedException("a synchronous Send would stop the emulator's only thread; use Post");

    public override SynchronizationContext CreateCopy() => this;
}
