using System.Text.Json;

namespace Netloom.Cli.Emulate;

/// <summary>
/// Where running <c>emulate --serve</c> and <c>netloom switch</c> processes say where they listen, so <c>netloom extcap</c>
/// can find them: one small JSON file per process in a per-user directory
/// (<c>$NETLOOM_RUNTIME_DIR</c>, else <c>$XDG_RUNTIME_DIR/netloom</c>, else <c>/tmp/netloom-USER</c>).
/// Files of processes that are gone are ignored and removed.
/// </summary>
internal static class ServeRegistry
{
    public static string Directory
    {
        get
        {
            if (Environment.GetEnvironmentVariable("NETLOOM_RUNTIME_DIR") is { Length: > 0 } d) return d;
            if (Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } x) return Path.Combine(x, "netloom");
            return $"/tmp/netloom-{Environment.UserName}";
        }
    }

    public sealed record Entry(int Pid, string Url, string Name);

    public static string Register(Uri url, string name)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string file = Path.Combine(Directory, $"emulate-{Environment.ProcessId}.json");
        File.WriteAllText(file, JsonSerializer.Serialize(new Entry(Environment.ProcessId, url.ToString(), name)));
        return file;
    }

    /// <summary>A running `netloom switch`: where it takes capture requests, and its ports in order.</summary>
    public sealed record SwitchEntry(int Pid, string Socket, string[] Ports);

    public static string RegisterSwitch(string socket, string[] ports)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string file = Path.Combine(Directory, $"switch-{Environment.ProcessId}.json");
        File.WriteAllText(file, JsonSerializer.Serialize(new SwitchEntry(Environment.ProcessId, socket, ports)));
        return file;
    }

    public static List<SwitchEntry> RunningSwitches() => Read<SwitchEntry>("switch-*.json", e => e.Pid);

    public static List<Entry> Running() => Read<Entry>("emulate-*.json", e => e.Pid);

    private static List<T> Read<T>(string pattern, Func<T, int> pid) where T : class
    {
        var list = new List<T>();
        if (!System.IO.Directory.Exists(Directory)) return list;
        foreach (var file in System.IO.Directory.GetFiles(Directory, pattern).Order(StringComparer.Ordinal))
        {
            T? e = null;
            try { e = JsonSerializer.Deserialize<T>(File.ReadAllText(file)); }
            catch (Exception ex) when (ex is JsonException or IOException) { }
            if (e is null || !System.IO.Directory.Exists($"/proc/{pid(e)}"))
            {
                try { File.Delete(file); } catch (IOException) { } catch (UnauthorizedAccessException) { }
                continue;
            }
            list.Add(e);
        }
        return list;
    }
}
