using System.Diagnostics;

namespace Netloom.Cli.Commands;

/// <summary>Starts this same netloom binary as a child process (benchmarks need real peers in other processes).</summary>
internal static class SelfProcess
{
    /// <summary>
    /// netloom with <paramref name="args"/>, its output captured; run through <paramref name="prefix"/>
    /// (such as "ip netns exec NS") when given. Under `dotnet Netloom.Cli.dll` the dll goes first.
    /// </summary>
    public static Process Start(string[] args, params string[] prefix)
    {
        string self = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(prefix.Length > 0 ? prefix[0] : self) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in prefix.Skip(1)) psi.ArgumentList.Add(a);
        if (prefix.Length > 0) psi.ArgumentList.Add(self);
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(SelfProcess).Assembly.Location);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    /// <summary>What goes between this binary and its arguments: the dll when run as `dotnet Netloom.Cli.dll`.</summary>
    public static string[] PrefixArgs() =>
        Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet" ? [typeof(SelfProcess).Assembly.Location] : [];

    /// <summary>
    /// `netloom ARGS` for a program this process starts (the emulator's process nodes): through the
    /// launcher script when it started this process (it exports NETLOOM_LAUNCHER, and builds the
    /// interposer that `netloom run` needs), else this binary.
    /// </summary>
    public static ProcessStartInfo NetloomStartInfo(IReadOnlyList<string> args)
    {
        string? launcher = Environment.GetEnvironmentVariable("NETLOOM_LAUNCHER");
        bool viaLauncher = !string.IsNullOrEmpty(launcher) && File.Exists(launcher);
        var psi = new ProcessStartInfo(viaLauncher ? launcher! : Environment.ProcessPath!);
        if (!viaLauncher) foreach (var a in PrefixArgs()) psi.ArgumentList.Add(a);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }
}
