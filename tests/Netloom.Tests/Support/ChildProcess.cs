using System.Diagnostics;
using System.Text;

namespace Netloom.Tests.Support;

/// <summary>A child process (the CLI, or python3) whose output is collected; killed at dispose.</summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process _p;
    private readonly StringBuilder _out = new();

    private ChildProcess(ProcessStartInfo psi)
    {
        psi.RedirectStandardOutput = psi.RedirectStandardError = psi.RedirectStandardInput = true;
        _p = new Process { StartInfo = psi };
        _p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_out) _out.AppendLine(e.Data); };
        _p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_out) _out.AppendLine(e.Data); };
        _p.Start();
        _p.BeginOutputReadLine();
        _p.BeginErrorReadLine();
    }

    /// <summary>Runs the netloom CLI built beside the tests.</summary>
    public static ChildProcess Netloom(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        return new ChildProcess(psi);
    }

    public static ChildProcess Python(string script)
    {
        var psi = new ProcessStartInfo("python3");
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        return new ChildProcess(psi);
    }

    public int Id => _p.Id;
    public bool HasExited => _p.HasExited;
    public int ExitCode => _p.ExitCode;
    public string Output { get { lock (_out) return _out.ToString(); } }

    public void Kill9() => Process.Start("kill", ["-9", _p.Id.ToString()])!.WaitForExit();

    /// <summary>Waits for exit; once exited, also waits until all its output has been collected.</summary>
    public bool WaitForExit(int ms)
    {
        if (!_p.WaitForExit(ms)) return false;
        _p.WaitForExit();
        return true;
    }

    public void Dispose()
    {
        try { if (!_p.HasExited) _p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _p.WaitForExit(5000);
        _p.Dispose();
    }
}
