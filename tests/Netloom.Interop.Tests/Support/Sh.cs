using System.Diagnostics;
using System.Text;

namespace Netloom.Interop.Tests.Support;

/// <summary>Runs external programs with a timeout; output is captured.</summary>
internal static class Sh
{
    public static (int Code, string Out, string Err) Run(string file, params string[] args) => Run(TimeSpan.FromSeconds(60), file, args);

    public static (int Code, string Out, string Err) Run(TimeSpan timeout, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in {timeout.TotalSeconds} s");
        }
        return (p.ExitCode, o.Result, e.Result);
    }

    /// <summary>Runs and requires exit code 0.</summary>
    public static string Ok(string file, params string[] args)
    {
        var (code, o, e) = Run(file, args);
        if (code != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {code}: {e}{o}");
        return o;
    }
}

/// <summary>
/// A long-running program (a capture, a server). Waits for a readiness line on stderr or stdout;
/// stopped with SIGINT (so captures flush), then killed if it lingers.
/// </summary>
internal sealed class Background : IDisposable
{
    private readonly Process _p;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string? _readyText;

    public Background(string? readyText, string file, params string[] args)
    {
        _readyText = readyText;
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        _p = new Process { StartInfo = psi };
        _p.OutputDataReceived += (_, e) => OnLine(e.Data);
        _p.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _p.Start();
        _p.BeginOutputReadLine();
        _p.BeginErrorReadLine();
        if (readyText is null) _ready.TrySetResult();
    }

    private void OnLine(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
        if (_readyText is not null && line.Contains(_readyText)) _ready.TrySetResult();
    }

    public string Log { get { lock (_log) return _log.ToString(); } }

    public void WaitReady(int seconds = 20)
    {
        if (!_ready.Task.Wait(TimeSpan.FromSeconds(seconds)))
            throw new TimeoutException($"'{_p.StartInfo.FileName} {string.Join(' ', _p.StartInfo.ArgumentList)}' never printed '{_readyText}'. Output:\n{Log}");
    }

    /// <summary>Waits for the program to end by itself, and then for the last of its output to reach <see cref="Log"/>.</summary>
    public bool WaitForExit(int milliseconds)
    {
        if (!_p.WaitForExit(milliseconds)) return false;
        _p.WaitForExit(); // a timed wait returns before the redirected output is drained
        return true;
    }

    /// <summary>SIGINT and wait, so a capture writes its last packets.</summary>
    public void Stop()
    {
        if (_p.HasExited) return;
        Sh.Run("kill", "-INT", _p.Id.ToString());
        if (!_p.WaitForExit(10_000)) _p.Kill(entireProcessTree: true);
        _p.WaitForExit();
    }

    /// <summary>Runs once the program is gone, such as removing files a killed program could not.</summary>
    public Action? AfterStop { get; init; }

    public void Dispose()
    {
        try { Stop(); } catch (InvalidOperationException) { }
        _p.Dispose();
        AfterStop?.Invoke();
    }
}
