namespace Netloom.Run;

/// <summary>
/// The interposer's counts of the program's signal handlers run on this thread (native/signals.c
/// runs each through a trampoline that counts it), read when a call begins. With them a call
/// knows a handler ran during it even when its wait did not say so (an io_uring_enter that also
/// submitted, a sleep on the port that timed out as the signal came), and whether that handler
/// was installed with SA_RESTART, after which the kernel restarts a blocking recv, send, accept
/// or connect without a timeout instead of returning EINTR.
/// </summary>
internal unsafe struct SignalMark
{
    private nuint _all, _interrupting;
    private SignalMark(nuint all, nuint interrupting) { _all = all; _interrupting = interrupting; }

    public static SignalMark Now => new(Engine.Host->Handled(1), Engine.Host->Handled(0));

    /// <summary>A handler ran since the mark: any, or for a <paramref name="restartable"/> call one without SA_RESTART.</summary>
    public readonly bool Interrupted(bool restartable) => restartable ? Engine.Host->Handled(0) != _interrupting : Engine.Host->Handled(1) != _all;

    /// <summary>
    /// Whether a call whose wait returned <paramref name="slept"/> (0, or -EINTR when the wait saw
    /// a signal) ends now with EINTR. Any call ends when a handler without SA_RESTART ran, or when
    /// its wait saw a signal that no counted handler explains (one installed by the raw system
    /// call). A call that is not <paramref name="restartable"/> (a timeout is set, bytes already
    /// moved, or poll, select and epoll_wait) ends after any handler. A restartable one goes on
    /// after SA_RESTART handlers, from a new mark, so that they do not end it later.
    /// </summary>
    public bool EndsCall(long slept, bool restartable)
    {
        bool ends = restartable ? Interrupted(true) || (slept < 0 && !Interrupted(false)) : slept < 0 || Interrupted(false);
        if (!ends) this = Now;
        return ends;
    }
}
