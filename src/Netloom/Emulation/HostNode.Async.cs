using Netloom.Sockets;
using Netloom.Time;

namespace Netloom.Emulation;

/// <summary>
/// Async code on a host, in virtual time (as turmoil runs Tokio code): <see cref="Spawn"/> starts
/// it on the host, <see cref="Sockets"/> gives it the same socket API a <see cref="NetStack"/>
/// has, and <see cref="Delay"/> waits on the emulator's clock. Every continuation is an event in
/// the network's queue, so the run stays single-threaded and the same seed gives the same run.
/// Awaiting anything else (Task.Delay, real I/O, Task.Run) leaves virtual time: such continuations
/// are counted in <see cref="Network.ForeignContinuations"/>.
/// </summary>
public sealed partial class HostNode
{
    private readonly Async.HostSockets _sockets;

    /// <summary>The host's sockets: listen, connect and open UDP sockets, awaiting in virtual time. Blocking calls throw.</summary>
    public SocketStack Sockets => _sockets;

    /// <summary>The context code on this host runs on.</summary>
    internal SynchronizationContext Context { get; }

    /// <summary>Runs <paramref name="body"/> on this host, starting at the current virtual instant. The task ends with it.</summary>
    public Task Spawn(Func<Task> body) => Spawn(async () => { await body(); return true; });

    /// <summary>Runs <paramref name="body"/> on this host, starting at the current virtual instant; the task gives its result.</summary>
    public Task<T> Spawn<T>(Func<Task<T>> body)
    {
        var done = new TaskCompletionSource<T>();
        Network.Post(this, Network.NowNs, static s =>
        {
            var (body, done) = ((Func<Task<T>>, TaskCompletionSource<T>))s!;
            Forward(body, done);
        }, (body, done));
        return done.Task;

        static async void Forward(Func<Task<T>> body, TaskCompletionSource<T> done)
        {
            try { done.SetResult(await body()); }
            catch (OperationCanceledException e) { done.SetCanceled(e.CancellationToken); }
            catch (Exception e) { done.SetException(e); }
        }
    }

    /// <summary>Completes after <paramref name="span"/> of virtual time, on this host.</summary>
    public Task Delay(Duration span)
    {
        if (span.Nanoseconds < 0) throw new ArgumentOutOfRangeException(nameof(span), span, "a delay cannot be negative");
        var done = new TaskCompletionSource();
        Network.Post(this, Network.NowNs + span.Nanoseconds, static s => ((TaskCompletionSource)s!).SetResult(), done);
        return done.Task;
    }
}
