using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Netloom.Cli.Commands;

/// <summary>
/// Signals between netloom and the programs it starts. A program is asked to stop (SIGTERM) before
/// it is killed, so one under `netloom run` leaves through its exit path, where the engine
/// removes its shm file and flushes what it still has to send.
/// </summary>
internal static class Signals
{
    private const int SigInt = 2, SigTerm = 15;

    [DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);

    [DllImport("libc", EntryPoint = "isatty")]
    private static extern int IsATty(int fd);

    [DllImport("libc", EntryPoint = "tcgetpgrp")]
    private static extern int TcGetPgrp(int fd);

    [DllImport("libc", EntryPoint = "getpgrp")]
    private static extern int GetPgrp();

    /// <summary>SIGTERM, up to <paramref name="graceMs"/> to exit, then SIGKILL to the whole tree.</summary>
    public static void Stop(Process p, int graceMs = 5000)
    {
        try
        {
            if (p.HasExited) return;
            Kill(p.Id, SigTerm);
            if (!p.WaitForExit(graceMs)) p.Kill(entireProcessTree: true);
            p.WaitForExit(5000);
        }
        catch (InvalidOperationException) { } // it was never started, or is gone already
    }

    /// <summary>
    /// Passes SIGTERM, SIGHUP and SIGQUIT on to <paramref name="child"/> as they are, and SIGINT
    /// too unless a terminal already delivered it to the whole foreground group (Ctrl-C).
    /// This process stays alive to report the child's exit status.
    /// </summary>
    public static IDisposable ForwardTo(Process child)
    {
        bool terminalDeliversInt = IsATty(0) == 1 && TcGetPgrp(0) == GetPgrp();
        var registrations = new List<PosixSignalRegistration>();
        foreach (var (signal, number) in new[] { (PosixSignal.SIGTERM, 15), (PosixSignal.SIGHUP, 1), (PosixSignal.SIGQUIT, 3), (PosixSignal.SIGINT, SigInt) })
        {
            bool forward = signal != PosixSignal.SIGINT || !terminalDeliversInt;
            registrations.Add(PosixSignalRegistration.Create(signal, c =>
            {
                c.Cancel = true;
                if (forward) Kill(child.Id, number);
            }));
        }
        return new Registrations(registrations);
    }

    /// <summary>
    /// Runs <paramref name="stop"/> on Ctrl-C (SIGINT), Ctrl-\ (SIGQUIT, as Console.CancelKeyPress
    /// did) and SIGTERM instead of dying at once, so
    /// a long-running command leaves through its own ending (its counters printed, a shm server's
    /// file removed) whether a terminal, kill, systemd or docker stop asked it to.
    /// </summary>
    public static IDisposable OnStop(Action stop)
    {
        var registrations = new List<PosixSignalRegistration>();
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGQUIT, PosixSignal.SIGTERM })
            registrations.Add(PosixSignalRegistration.Create(signal, c => { c.Cancel = true; stop(); }));
        return new Registrations(registrations);
    }

    private sealed class Registrations(List<PosixSignalRegistration> all) : IDisposable
    {
        public void Dispose() { foreach (var r in all) r.Dispose(); }
    }
}
