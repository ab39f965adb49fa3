using System.CommandLine;
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Netloom.Interop;
using Netloom.Rings;
using Netloom.Run;
using Netloom.Wire;

namespace Netloom.Cli.Commands;

/// <summary>
/// `netloom run`: an unmodified program with its AF_INET sockets on a Netloom stack in its own
/// process. The verb checks the flags, turns them into NETLOOM_* variables, preloads the
/// interposer (native/) that loads the engine (src/Netloom.Run), and returns the program's exit
/// status. docs/RUN.md says how it works.
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var port = new Option<string?>("--port") { Description = $"The port the program's stack uses: {PortSpec.Forms} (with the stack; not with --offload)" };
        var ip = new Option<string?>("--ip") { Description = "The stack's address and prefix, such as 10.0.0.2/24 (with the stack; not with --offload)" };
        var offload = new Option<bool>("--offload") { Description = "Keep the program's TCP sockets on the kernel and batch their calls through io_uring (multishot accept and receive, queued sends, epoll_wait as one io_uring_enter), as ESCA does without the kernel patch" };
        var coalesce = new Option<int>("--coalesce") { Description = "With --offload: microseconds a wait in the ring may collect completions before it returns (io_uring's minimum wait; 0: off). Fewer system calls and more requests per wake-up under load, up to that much more latency; an idle program is not delayed", DefaultValueFactory = _ => 0 };
        var singleIssuer = new Option<bool>("--single-issuer") { Description = "With --offload: the ring is entered only by the thread that opened the first socket (SINGLE_ISSUER, DEFER_TASKRUN), which wakes only once per batch of completions: less CPU for a server whose sockets one event loop serves; its other threads are served only as often as that thread calls" };
        var ringEntries = new Option<int>("--ring-entries") { Description = "With --offload: io_uring submission entries (a power of two, 64 to 32768)", DefaultValueFactory = _ => 1024 };
        var gateway = new Option<string?>("--gateway") { Description = "Default gateway (without one, destinations off the subnet stay on the kernel)" };
        var ip6 = new Option<string?>("--ip6") { Description = "A static IPv6 address and prefix for the stack, such as fd00::2/64 (IPv6 is on without it: a link-local address, and SLAAC when a router advertises a prefix)" };
        var gateway6 = new Option<string?>("--gateway6") { Description = "A static IPv6 default router (advertising routers are used too)" };
        var noIp6 = new Option<bool>("--no-ip6") { Description = "IPv4 only: the program's AF_INET6 sockets stay on the kernel" };
        var tapPeer6 = new Option<string?>("--tap-peer6") { Description = "With --tap-peer: the kernel side's IPv6 address and prefix too (such as fd00::1/64)" };
        var mtu = new Option<int>("--mtu") { Description = "MTU (576 to 65522)", DefaultValueFactory = _ => 1500 };
        var busyPoll = new Option<int>("--busy-poll") { Description = "Microseconds a blocked call spins on the stack before sleeping (like Onload's EF_POLL_USEC)", DefaultValueFactory = _ => 0 };
        var pcap = new Option<string?>("--pcap") { Description = "Capture the stack's frames to this .pcapng or .pcap file" };
        var tapPeer = new Option<string?>("--tap-peer") { Description = "For a tap: port, the kernel side's address and prefix (such as 10.0.0.1/24): the TAP is made, addressed and removed by this command" };
        var program = new Argument<string[]>("program") { Description = "-- PROGRAM ARGS...", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("run", "Run an unmodified program with its TCP and UDP sockets on a Netloom user-level stack (LD_PRELOAD), as Onload does")
            { port, ip, gateway, ip6, gateway6, noIp6, mtu, busyPoll, pcap, tapPeer, tapPeer6, offload, ringEntries, coalesce, singleIssuer, program };
        cmd.SetAction(r => r.GetValue(offload)
            ? RunOffload(r.GetValue(busyPoll), r.GetValue(ringEntries), r.GetValue(coalesce), r.GetValue(singleIssuer), r.GetValue(port) ?? r.GetValue(ip) ?? r.GetValue(gateway) ?? r.GetValue(pcap) ?? r.GetValue(tapPeer)
                ?? r.GetValue(ip6) ?? r.GetValue(gateway6) ?? r.GetValue(tapPeer6) ?? (r.GetValue(noIp6) ? "--no-ip6" : null), r.GetValue(program)!)
            : r.GetValue(coalesce) != 0 ? CliErrors.Report("--coalesce applies to --offload (io_uring's waits); the user-level stack has none", CliErrors.BadInput)
            : r.GetValue(singleIssuer) ? CliErrors.Report("--single-issuer applies to --offload (who enters its io_uring); the user-level stack has no ring", CliErrors.BadInput)
            : r.GetValue(noIp6) && (r.GetValue(ip6) ?? r.GetValue(gateway6)) is not null
                ? CliErrors.Report($"--no-ip6 and {(r.GetValue(ip6) is not null ? "--ip6" : "--gateway6")} contradict each other", CliErrors.BadInput)
            : Run(new Dictionary<string, string?>
        {
            ["NETLOOM_PORT"] = r.GetValue(port),
            ["NETLOOM_IP"] = r.GetValue(ip),
            ["NETLOOM_GATEWAY"] = r.GetValue(gateway),
            ["NETLOOM_IP6"] = r.GetValue(noIp6) ? "off" : r.GetValue(ip6),
            ["NETLOOM_GATEWAY6"] = r.GetValue(gateway6),
            ["NETLOOM_MTU"] = r.GetValue(mtu).ToString(),
            ["NETLOOM_BUSY_POLL"] = r.GetValue(busyPoll).ToString(),
            ["NETLOOM_PCAP"] = r.GetValue(pcap) is { } p ? Path.GetFullPath(p) : null,
        }, r.GetValue(tapPeer), r.GetValue(tapPeer6), r.GetValue(program)!));
        return cmd;
    }

    /// <summary>`run --offload`: no stack, so none of its flags; the program's TCP sockets stay the kernel's.</summary>
    private static int RunOffload(int busyPoll, int ringEntries, int coalesce, bool singleIssuer, string? stackFlag, string[] program)
    {
        if (stackFlag is not null)
            return CliErrors.Report("--offload keeps the program's sockets on the kernel: --port, --ip, --gateway, --ip6, --gateway6, --no-ip6, --pcap, --tap-peer and --tap-peer6 do not apply", CliErrors.BadInput);
        if (ringEntries is < 64 or > 32768 || (ringEntries & (ringEntries - 1)) != 0)
            return CliErrors.Report($"--ring-entries {ringEntries}: a power of two from 64 to 32768", CliErrors.BadInput);
        if (busyPoll is < 0 or > 10_000_000) return CliErrors.Report($"--busy-poll {busyPoll}: microseconds from 0 to 10000000", CliErrors.BadInput);
        if (coalesce is < 0 or > 10_000) return CliErrors.Report($"--coalesce {coalesce}: microseconds from 0 to 10000", CliErrors.BadInput);
        return Launch(new Dictionary<string, string?>
        {
            ["NETLOOM_MODE"] = "offload",
            ["NETLOOM_RING_ENTRIES"] = ringEntries.ToString(),
            ["NETLOOM_BUSY_POLL"] = busyPoll.ToString(),
            ["NETLOOM_COALESCE"] = coalesce.ToString(),
            ["NETLOOM_SINGLE_ISSUER"] = singleIssuer ? "1" : "0",
        }, program);
    }

    private static int Run(Dictionary<string, string?> env, string? tapPeer, string? tapPeer6, string[] program)
    {
        if (EngineConfig.FromEnvironment(k => env.GetValueOrDefault(k), out var error) is not { } config)
            return CliErrors.Report(FlagNames(error!), CliErrors.BadInput);
        if (!PortSpec.TryParse(config.Port, out var spec, out var portError)) return CliErrors.Report($"--port: {portError}", CliErrors.BadInput);
        Ipv6Address peer6 = default;
        int prefix6 = 0;
        if (tapPeer6 is not null)
        {
            if (tapPeer is null) return CliErrors.Report("--tap-peer6 needs --tap-peer (which makes the TAP)", CliErrors.BadInput);
            if (!config.Ipv6) return CliErrors.Report("--tap-peer6 needs IPv6 on the stack (no --no-ip6, and --mtu of at least 1280)", CliErrors.BadInput);
            var parts6 = tapPeer6.Split('/');
            if (parts6.Length != 2 || !Ipv6Address.TryParse(parts6[0], out peer6) || !int.TryParse(parts6[1], out prefix6) || prefix6 is < 1 or > 128
                || peer6.IsUnspecified || peer6.IsMulticast || peer6.IsLoopback || peer6.IsIpv4Mapped)
                return CliErrors.Report($"--tap-peer6 '{tapPeer6}': expected ADDRESS/PREFIX such as fd00::1/64", CliErrors.BadInput);
            if (config.Address6 == peer6) return CliErrors.Report($"--tap-peer6 {peer6} is the stack's own address (--ip6)", CliErrors.BadInput);
        }
        string? madeTap = null;
        if (tapPeer is not null)
        {
            if (spec!.Kind != PortKind.Tap) return CliErrors.Report("--tap-peer needs a tap: port", CliErrors.BadInput);
            var parts = tapPeer.Split('/');
            if (parts.Length != 2 || !Ipv4Address.TryParse(parts[0], out var peer) || !int.TryParse(parts[1], out int prefix) || prefix is < 1 or > 32)
                return CliErrors.Report($"--tap-peer '{tapPeer}': expected ADDRESS/PREFIX such as 10.0.0.1/24", CliErrors.BadInput);
            if (peer == config.Address) return CliErrors.Report($"--tap-peer {peer} is the stack's own address (--ip)", CliErrors.BadInput);
            try
            {
                Netdevice.CreatePersistentTap(spec!.Name, peer.Value, prefix);
                madeTap = spec.Name;
                if (tapPeer6 is not null) AddKernelAddress6(spec.Name, $"{peer6}/{prefix6}");
            }
            catch (IOException e)
            {
                if (madeTap is not null) try { Netdevice.DeletePersistentTap(madeTap); } catch (IOException) { }
                return CliErrors.Report($"--tap-peer: {e.Message}", CliErrors.Failed);
            }
        }
        try { return Launch(env, program); }
        finally
        {
            if (madeTap is not null)
                try { Netdevice.DeletePersistentTap(madeTap); } catch (IOException) { }
        }
    }

    /// <summary>Starts the program with the interposer preloaded and the engine's variables set; its exit status.</summary>
    private static int Launch(Dictionary<string, string?> env, string[] program)
    {
        if (!TryFindRunParts(out var preload, out var engine, out var missing)) return CliErrors.Report(missing!, CliErrors.Failed);
        if (Which(program[0]) is not { } path) return CliErrors.Report($"{program[0]}: command not found", 127);
        if (IsStaticElf(path))
            Console.Error.WriteLine($"netloom: {program[0]} is statically linked, so no preloaded library can reach its sockets; it runs on the kernel");
        try
        {
            var psi = new ProcessStartInfo(path) { UseShellExecute = false };
            foreach (var a in program.Skip(1)) psi.ArgumentList.Add(a);
            foreach (var (k, v) in env) psi.Environment[k] = v;
            psi.Environment["NETLOOM_ENGINE"] = engine;
            string? existing = Environment.GetEnvironmentVariable("LD_PRELOAD");
            psi.Environment["LD_PRELOAD"] = string.IsNullOrEmpty(existing) ? preload : $"{preload} {existing}";
            using var child = Process.Start(psi)!;
            // Signals sent to this command reach the program, which leaves through its own exit
            // path (the engine's too); this command waits for its status.
            using (Signals.ForwardTo(child)) child.WaitForExit();
            return child.ExitCode;
        }
        catch (Win32Exception e) { return CliErrors.Report($"{program[0]}: {e.Message}", 126); }
    }

    /// <summary>
    /// The kernel side's IPv6 address on the TAP, with `ip` (iproute2), without duplicate address
    /// detection so that it answers the stack at once.
    /// </summary>
    private static void AddKernelAddress6(string tap, string addressAndPrefix)
    {
        try
        {
            var psi = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardError = true };
            foreach (var a in new[] { "-6", "addr", "add", addressAndPrefix, "dev", tap, "nodad" }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new IOException($"ip -6 addr add {addressAndPrefix} dev {tap}: {err.Trim()}");
        }
        catch (Win32Exception e) { throw new IOException($"--tap-peer6 needs the ip command (iproute2): {e.Message}"); }
    }

    /// <summary>The engine's messages name NETLOOM_* variables; here the user typed flags.</summary>
    internal static string FlagNames(string message) => message
        .Replace("NETLOOM_PORT and NETLOOM_IP must both be set", "--port and --ip are both needed")
        .Replace("NETLOOM_GATEWAY6 and NETLOOM_IP6=off", "--gateway6 and --no-ip6")
        .Replace("NETLOOM_IP6", "--ip6").Replace("NETLOOM_GATEWAY6", "--gateway6")
        .Replace("NETLOOM_IP", "--ip").Replace("NETLOOM_GATEWAY", "--gateway").Replace("NETLOOM_MTU", "--mtu")
        .Replace("NETLOOM_BUSY_POLL", "--busy-poll").Replace("NETLOOM_PORT", "--port");

    /// <summary>
    /// The interposer and the engine, built by the launcher into .build/run (or NETLOOM_RUN_DIR).
    /// </summary>
    public static bool TryFindRunParts(out string preload, out string engine, out string? missing)
    {
        string dir = Environment.GetEnvironmentVariable("NETLOOM_RUN_DIR") is { Length: > 0 } d
            ? d : Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "run"));
        preload = Path.Combine(dir, "libnetloom-preload.so");
        engine = Path.Combine(dir, "Netloom.Run.so");
        missing = null;
        if (File.Exists(preload) && File.Exists(engine)) return true;
        missing = $"the interposer and engine are not built in {dir}; start netloom through its launcher (./netloom run ...), which builds them";
        return false;
    }

    /// <summary>The program's path as the shell would find it.</summary>
    private static string? Which(string program)
    {
        if (program.Contains('/')) return File.Exists(program) ? Path.GetFullPath(program) : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, program);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>An ELF executable without a PT_INTERP header is static: LD_PRELOAD cannot reach it.</summary>
    internal static bool IsStaticElf(string path)
    {
        try
        {
            using var f = File.OpenRead(path);
            Span<byte> h = stackalloc byte[64];
            if (f.Read(h) < 64 || h[0] != 0x7F || h[1] != (byte)'E' || h[2] != (byte)'L' || h[3] != (byte)'F' || h[4] != 2) return false;
            long phoff = BitConverter.ToInt64(h[32..]);
            int phentsize = BitConverter.ToUInt16(h[54..]), phnum = BitConverter.ToUInt16(h[56..]);
            if (phentsize < 4 || phnum > 512) return false;
            Span<byte> ph = stackalloc byte[4];
            for (int i = 0; i < phnum; i++)
            {
                f.Position = phoff + (long)i * phentsize;
                if (f.Read(ph) < 4) return false;
                if (BitConverter.ToUInt32(ph) == 3) return false; // PT_INTERP: dynamically linked
            }
            return true;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }
}
