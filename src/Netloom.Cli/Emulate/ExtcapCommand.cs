using System.CommandLine;
using System.Runtime.InteropServices;
using Netloom.Cli.Commands;

namespace Netloom.Cli.Emulate;

/// <summary>
/// `netloom extcap`: a Wireshark extcap (the interface Wireshark and tshark use to run external
/// capture programs). Every link of every running <c>netloom emulate --serve</c> is a capture
/// interface; capturing one streams its frames live from the emulation's API into Wireshark's
/// fifo. <c>netloom extcap --install</c> puts a launcher into the personal extcap folders.
/// </summary>
internal static class ExtcapCommand
{
    private const string Prefix = "netloom-";

    public static Command Create()
    {
        var cmd = new Command("extcap", "Wireshark extcap: lists the links of running emulations (emulate --serve) and the ports of running switches as capture interfaces and streams them; --install puts it into Wireshark's extcap folder")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        cmd.SetAction(r => Run([.. r.UnmatchedTokens]));
        return cmd;
    }

    /// <summary>Wireshark's arguments: --extcap-interfaces, --extcap-dlts, --extcap-config, --capture, --fifo, and ours: --install [DIR].</summary>
    public static int Run(string[] args)
    {
        string? Value(string name)
        {
            for (int i = 0; i < args.Length; i++)
            {
                if (args[i] == name && i + 1 < args.Length) return args[i + 1];
                if (args[i].StartsWith(name + "=", StringComparison.Ordinal)) return args[i][(name.Length + 1)..];
            }
            return null;
        }
        bool Has(string name) => args.Any(a => a == name || a.StartsWith(name + "=", StringComparison.Ordinal));

        if (Has("--install")) return Install(Value("--install"));
        if (Has("--extcap-interfaces")) return Interfaces();
        string? iface = Value("--extcap-interface");
        if (Has("--extcap-dlts"))
        {
            if (iface is null) return CliErrors.Report("--extcap-dlts needs --extcap-interface", CliErrors.BadInput);
            Console.WriteLine("dlt {number=1}{name=EN10MB}{display=Ethernet}");
            return CliErrors.Ok;
        }
        if (Has("--extcap-config")) return CliErrors.Ok; // no options to configure
        if (Has("--capture"))
        {
            if (iface is null || Value("--fifo") is not { } fifo) return CliErrors.Report("--capture needs --extcap-interface and --fifo", CliErrors.BadInput);
            return Capture(iface, fifo);
        }
        return CliErrors.Report("netloom extcap is run by Wireshark (--extcap-interfaces, --capture ...); install it with: netloom extcap --install", CliErrors.BadInput);
    }

    private static int Interfaces()
    {
        Console.WriteLine("extcap {version=1.0}{help=https://github.com/netloom/netloom/blob/main/docs/EMULATION.md}");
        foreach (var e in ServeRegistry.Running())
        {
            List<(string Name, string A, string B)> links;
            try { links = LinksOf(e.Url); }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException) { continue; }
            foreach (var (name, a, b) in links)
                Console.WriteLine($"interface {{value={Prefix}{e.Pid}-{name}}}{{display=netloom {e.Name}: link {name} ({a} <-> {b})}}");
            // Every linked port of every switch: netloom-PID-SWITCH@PORT ('@' is in no node name).
            try
            {
                foreach (var (node, port, link) in SwitchPortsOf(e.Url))
                    Console.WriteLine($"interface {{value={Prefix}{e.Pid}-{node}@{port}}}{{display=netloom {e.Name}: switch {node} port {port} (link {link})}}");
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException) { }
        }
        // Every port of every running `netloom switch`: netloom-swPID-N.
        foreach (var s in ServeRegistry.RunningSwitches())
            for (int i = 0; i < s.Ports.Length; i++)
                Console.WriteLine($"interface {{value={Prefix}{SwitchTag}{s.Pid}-{i}}}{{display=netloom switch {s.Pid}: port {i} ({s.Ports[i]})}}");
        return CliErrors.Ok;
    }

    private const string SwitchTag = "sw";

    /// <summary>A running switch's port: ask its capture socket for the port and copy the pcapng stream into the fifo.</summary>
    private static int CaptureSwitchPort(string iface, string fifo)
    {
        var rest = iface.AsSpan(Prefix.Length + SwitchTag.Length);
        int dash = rest.IndexOf('-');
        if (dash < 0 || !int.TryParse(rest[..dash], out int pid) || !int.TryParse(rest[(dash + 1)..], out int port))
            return CliErrors.Report($"'{iface}' is not a netloom switch interface (netloom-swPID-PORT)", CliErrors.BadInput);
        var entry = ServeRegistry.RunningSwitches().Find(e => e.Pid == pid);
        if (entry is null) return CliErrors.Report($"no running netloom switch with process id {pid}");
        if (port < 0 || port >= entry.Ports.Length) return CliErrors.Report($"switch {pid} has ports 0 to {entry.Ports.Length - 1}, not {port}", CliErrors.BadInput);
        using var stop = new CaptureStop();
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        try
        {
            socket.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(entry.Socket));
            socket.Send(System.Text.Encoding.ASCII.GetBytes($"capture {port}\n"));
            using var source = new System.Net.Sockets.NetworkStream(socket, ownsSocket: false);
            var buffer = new byte[64 << 10];
            int n = source.ReadAsync(buffer, stop.Token).AsTask().GetAwaiter().GetResult();
            if (n > 0 && buffer.AsSpan(0, n).StartsWith("error: "u8))
                return CliErrors.Report($"{iface}: {System.Text.Encoding.ASCII.GetString(buffer, 0, n).Trim()}");
            CopyIntoFifo(source, fifo, buffer, n, stop.Token);
            return CliErrors.Ok;
        }
        catch (OperationCanceledException) { return CliErrors.Ok; } // Wireshark stopped the capture
        catch (IOException) { return CliErrors.Ok; }               // the reader closed the fifo, or the switch stopped
        catch (System.Net.Sockets.SocketException e) { return CliErrors.Report($"{iface}: {e.Message}"); }
    }

    private static List<(string Node, int Port, string Link)> SwitchPortsOf(string url)
    {
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(5) };
        using var doc = System.Text.Json.JsonDocument.Parse(http.GetStringAsync("api/nodes").GetAwaiter().GetResult());
        return [.. doc.RootElement.EnumerateArray()
            .Where(n => n.GetProperty("kind").GetString() == "switch")
            .SelectMany(n => n.GetProperty("ports").EnumerateArray()
                .Where(p => p.GetProperty("link").ValueKind == System.Text.Json.JsonValueKind.String)
                .Select(p => (n.GetProperty("name").GetString()!, p.GetProperty("index").GetInt32(), p.GetProperty("link").GetString()!)))];
    }

    private static List<(string, string, string)> LinksOf(string url)
    {
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(5) };
        using var doc = System.Text.Json.JsonDocument.Parse(http.GetStringAsync("api/links").GetAwaiter().GetResult());
        return doc.RootElement.EnumerateArray().Select(l => (l.GetProperty("name").GetString()!, l.GetProperty("a").GetString()!, l.GetProperty("b").GetString()!)).ToList();
    }

    private static int Capture(string iface, string fifo)
    {
        if (iface.StartsWith(Prefix + SwitchTag, StringComparison.Ordinal)) return CaptureSwitchPort(iface, fifo);
        // netloom-PID-LINK (a link name may hold '-').
        if (!iface.StartsWith(Prefix, StringComparison.Ordinal) || iface.IndexOf('-', Prefix.Length) is var dash && dash < 0
            || !int.TryParse(iface.AsSpan(Prefix.Length, dash - Prefix.Length), out int pid))
            return CliErrors.Report($"'{iface}' is not a netloom interface (netloom-PID-LINK)", CliErrors.BadInput);
        string link = iface[(dash + 1)..];
        var entry = ServeRegistry.Running().Find(e => e.Pid == pid);
        if (entry is null) return CliErrors.Report($"no running emulation with process id {pid}");
        // A switch's port (NODE@PORT) or a link.
        int at = link.LastIndexOf('@');
        string path = at > 0 ? $"api/nodes/{Uri.EscapeDataString(link[..at])}/ports/{Uri.EscapeDataString(link[(at + 1)..])}/capture"
            : $"api/links/{Uri.EscapeDataString(link)}/capture";
        using var stop = new CaptureStop();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(entry.Url), Timeout = Timeout.InfiniteTimeSpan };
            using var response = http.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, stop.Token).GetAwaiter().GetResult();
            if (!response.IsSuccessStatusCode)
                return CliErrors.Report($"{iface}: {(int)response.StatusCode} {response.Content.ReadAsStringAsync().GetAwaiter().GetResult()}");
            using var source = response.Content.ReadAsStream(stop.Token);
            CopyIntoFifo(source, fifo, new byte[64 << 10], 0, stop.Token);
            return CliErrors.Ok;
        }
        catch (OperationCanceledException) { return CliErrors.Ok; } // Wireshark stopped the capture
        catch (IOException) { return CliErrors.Ok; }               // the reader closed the fifo, or the emulation ended
        catch (HttpRequestException e) { return CliErrors.Report($"{iface}: {e.Message}"); }
    }

    /// <summary>Cancelled when Wireshark stops the capture (SIGTERM, or SIGINT from a terminal).</summary>
    private sealed class CaptureStop : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly PosixSignalRegistration _term, _intr;

        public CaptureStop()
        {
            _term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; _stop.Cancel(); });
            _intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; _stop.Cancel(); });
        }

        public CancellationToken Token => _stop.Token;

        public void Dispose()
        {
            _term.Dispose();
            _intr.Dispose();
            _stop.Dispose();
        }
    }

    /// <summary>
    /// Writes the pcapng stream into Wireshark's fifo, each chunk at once, until the stream ends;
    /// the first <paramref name="have"/> bytes are already in <paramref name="buffer"/>.
    /// </summary>
    private static void CopyIntoFifo(Stream source, string fifo, byte[] buffer, int have, CancellationToken stop)
    {
        using var sink = new FileStream(fifo, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
        int n = have;
        do
        {
            sink.Write(buffer, 0, n);
            sink.Flush();
        }
        while ((n = source.ReadAsync(buffer, stop).AsTask().GetAwaiter().GetResult()) > 0);
    }

    /// <summary>Writes a launcher into the personal extcap folders (Wireshark 4.0 and 4.2+ use different ones), or into <paramref name="dir"/>.</summary>
    private static int Install(string? dir)
    {
        string home = Environment.GetEnvironmentVariable("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string[] dirs = dir is not null ? [dir] : [Path.Combine(home, ".config/wireshark/extcap"), Path.Combine(home, ".local/lib/wireshark/extcap")];
        string self = Environment.ProcessPath ?? "dotnet";
        string assembly = typeof(ExtcapCommand).Assembly.Location;
        string launch = Path.GetFileNameWithoutExtension(self) == "dotnet" ? $"exec \"{self}\" \"{assembly}\" extcap \"$@\"" : $"exec \"{self}\" extcap \"$@\"";
        foreach (var d in dirs)
        {
            try
            {
                Directory.CreateDirectory(d);
                string file = Path.Combine(d, "netloom");
                File.WriteAllText(file, $"#!/bin/sh\n# Installed by `netloom extcap --install`: Wireshark runs this to list and capture netloom links.\n{launch}\n");
                File.SetUnixFileMode(file, (UnixFileMode)0b111_101_101);
                Console.WriteLine($"installed {file}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return CliErrors.Report($"cannot install into {d}: {e.Message}"); }
        }
        return CliErrors.Ok;
    }
}
