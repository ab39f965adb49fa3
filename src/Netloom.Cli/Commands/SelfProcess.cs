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
}
