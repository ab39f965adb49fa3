namespace Netloom.Cli.Commands;

/// <summary>Finds the external programs benchmarks run beside netloom (iperf3, redis-server, ip...).</summary>
internal static class ExternalTool
{
    /// <summary>The full path of <paramref name="tool"/> on PATH, or null when it is not installed.</summary>
    public static string? Which(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
}
