namespace Netloom.Interop.Tests.Support;

/// <summary>What the machine has: root, and which external tools are on PATH.</summary>
internal static class Machine
{
    public static bool IsRoot => Environment.UserName == "root" || geteuid() == 0;

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern uint geteuid();

    public static bool Has(string tool) =>
        tool == "scapy" ? File.Exists("/usr/lib/python3/dist-packages/scapy/__init__.py")
        : tool.StartsWith('/') ? File.Exists(tool)
        : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, tool)));

    /// <summary>Null when everything is there, else the reason to skip.</summary>
    public static string? Missing(bool needRoot, string[] tools)
    {
        if (needRoot && !IsRoot) return "needs root to create network namespaces (CI runs as root)";
        var missing = tools.Where(t => !Has(t)).ToArray();
        return missing.Length == 0 ? null : $"needs {string.Join(", ", missing)} (./test.sh installs them when run as root)";
    }
}

/// <summary>A test that needs root and the named tools; otherwise it is skipped with the reason.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute(params string[] tools)
    {
        if (Machine.Missing(needRoot: true, tools) is { } why) Skip = why;
    }
}

/// <summary>A test that needs the named tools but not root.</summary>
public sealed class ToolFactAttribute : FactAttribute
{
    public ToolFactAttribute(params string[] tools)
    {
        if (Machine.Missing(needRoot: false, tools) is { } why) Skip = why;
    }
}

/// <summary>A theory that needs the named tools but not root.</summary>
public sealed class ToolTheoryAttribute : TheoryAttribute
{
    public ToolTheoryAttribute(params string[] tools)
    {
        if (Machine.Missing(needRoot: false, tools) is { } why) Skip = why;
    }
}

/// <summary>A theory that needs root and the named tools; otherwise it is skipped with the reason.</summary>
public sealed class RootTheoryAttribute : TheoryAttribute
{
    public RootTheoryAttribute(params string[] tools)
    {
        if (Machine.Missing(needRoot: true, tools) is { } why) Skip = why;
    }
}
