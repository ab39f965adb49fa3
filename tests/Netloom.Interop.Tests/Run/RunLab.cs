using System.Diagnostics;
using Netloom.Interop.Tests.Support;

namespace Netloom.Interop.Tests.Run;

/// <summary>
/// What the `netloom run` tests share: the interposer and engine (built once through the
/// launcher, as a user's first `./netloom run` builds them), the C semantics program (built with
/// gcc), and commands that run a program under `netloom run` through the test build of the CLI.
/// </summary>
internal static class RunLab
{
    private static readonly Lazy<string> s_root = new(FindRoot);
    private static readonly Lazy<string> s_runDir = new(BuildRunParts);
    private static readonly Lazy<string> s_semantics = new(() => Compile("semantics.c", "semantics"));
    private static int s_counter;

    public static string Root => s_root.Value;
    public static string RunDir => s_runDir.Value;
    public static string Semantics => s_semantics.Value;
    public static string Cli => Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll");

    /// <summary>A name unique to this test process and call, for namespaces, TAPs and shm ports.</summary>
    public static string Unique(string prefix) => $"{prefix}{Environment.ProcessId % 10000}x{Interlocked.Increment(ref s_counter)}";

    /// <summary>A /24 unique to this process and call: 10.230.N.0.</summary>
    public static int Subnet() => (Environment.ProcessId + Interlocked.Increment(ref s_counter) * 7) % 250 + 1;

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "netloom")) && Directory.Exists(Path.Combine(d.FullName, "native"))) return d.FullName;
        throw new InvalidOperationException("cannot find the repository root (the netloom launcher and native/) above " + AppContext.BaseDirectory);
    }

    private static string BuildRunParts()
    {
        var (code, o, e) = Sh.Run(TimeSpan.FromMinutes(15), "bash", Path.Combine(Root, "netloom"), "--build-run");
        if (code != 0) throw new InvalidOperationException($"./netloom --build-run failed ({code}): {e}{o}");
        return o.Trim().Split('\n')[^1].Trim();
    }

    /// <summary>Compiles one of this folder's C programs with gcc (-O2 -Wall -Werror) into a temp file.</summary>
    public static string Compile(string source, string name, params string[] extra)
    {
        string src = Path.Combine(Root, "tests", "Netloom.Interop.Tests", "Run", source);
        string dir = Directory.CreateTempSubdirectory("netloom-run-").FullName;
        string exe = Path.Combine(dir, name);
        Sh.Ok("gcc", ["-O2", "-Wall", "-Werror", "-o", exe, src, .. extra, "-lpthread"]);
        return exe;
    }

    /// <summary>The argv that runs <paramref name="program"/> under netloom run (in <paramref name="ns"/> when given).</summary>
    public static string[] Command(string? ns, string port, string ip, string[] program, params string[] flags)
    {
        var args = new List<string>();
        if (ns is not null) args.AddRange(["ip", "netns", "exec", ns]);
        args.AddRange(["env", $"NETLOOM_RUN_DIR={RunDir}", "dotnet", Cli, "run", "--port", port, "--ip", ip]);
        args.AddRange(flags);
        args.Add("--");
        args.AddRange(program);
        return [.. args];
    }

    /// <summary>The argv that runs <paramref name="program"/> under `netloom run --offload`, with the engine's counts printed at exit.</summary>
    public static string[] OffloadCommand(string[] program, params string[] flags) =>
        ["env", $"NETLOOM_RUN_DIR={RunDir}", "NETLOOM_STATS=1", "dotnet", Cli, "run", "--offload", .. flags, "--", .. program];

    public static (int Code, string Out, string Err) Run(TimeSpan timeout, string? ns, string port, string ip, string[] program, params string[] flags)
    {
        var argv = Command(ns, port, ip, program, flags);
        return Sh.Run(timeout, argv[0], argv[1..]);
    }

    public static Background Start(string? readyText, string? ns, string port, string ip, string[] program, params string[] flags)
    {
        var argv = Command(ns, port, ip, program, flags);
        // A program that dies of the stop signal (no handler, so no exit path) leaves its shm file.
        string? shmFile = port.StartsWith("shm:", StringComparison.Ordinal) ? $"/dev/shm/netloom-{port[4..]}" : null;
        return new Background(readyText, argv[0], argv[1..]) { AfterStop = shmFile is null ? null : () => File.Delete(shmFile) };
    }

    /// <summary>Waits until a TCP port accepts in a namespace (a server under netloom run starts in its own time).</summary>
    public static void WaitForPort(string ns, string ip, int port, int seconds = 30)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            var r = Sh.Run(TimeSpan.FromSeconds(5), "ip", "netns", "exec", ns, "bash", "-c", $"exec 3<>/dev/tcp/{ip}/{port}");
            if (r.Code == 0) return;
            Thread.Sleep(200);
        }
        throw new TimeoutException($"nothing accepted on {ip}:{port} in {ns} within {seconds} s");
    }

    /// <summary>
    /// redis-cli's command families against a fresh server, through <paramref name="cli"/> (which
    /// runs one redis-cli command and returns its trimmed output): strings, lists, hashes, sets,
    /// sorted sets, counters, expiry, the key space and INFO. Leaves six keys.
    /// </summary>
    public static void RedisCommandFamilies(Func<string[], string> cli)
    {
        string Cli(params string[] args) => cli(args);
        Assert.Equal("PONG", Cli("PING"));
        Assert.Equal("OK", Cli("SET", "greeting", "hello"));
        Assert.Equal("hello", Cli("GET", "greeting"));
        Assert.Equal("3", Cli("RPUSH", "list", "a", "b", "c"));
        Assert.Equal("a\nb\nc", Cli("LRANGE", "list", "0", "-1"));
        Assert.Equal("2", Cli("HSET", "hash", "f1", "v1", "f2", "v2"));
        Assert.Equal("v2", Cli("HGET", "hash", "f2"));
        Assert.Equal("2", Cli("SADD", "set", "x", "y"));
        Assert.Equal("1", Cli("ZADD", "zset", "1.5", "m"));
        Assert.Equal("11", Cli("INCRBY", "counter", "11"));
        Assert.Equal("1", Cli("EXPIRE", "greeting", "100"));
        Assert.Equal("6", Cli("DBSIZE"));
        Assert.Equal("1", Cli("DEL", "set"));
        Assert.Contains("redis_version", Cli("INFO", "server"));
    }

    /// <summary>An nginx.conf for one process in the foreground (master_process off), serving <paramref name="dir"/> on <paramref name="listen"/>.</summary>
    public static string NginxConf(TempDir dir, string listen, int connections = 256, string http = "")
    {
        string conf = dir.File("nginx.conf");
        File.WriteAllText(conf, $$"""
            master_process off;
            daemon off;
            worker_processes 1;
            pid {{dir.File("nginx.pid")}};
            error_log {{dir.File("error.log")}};
            events { worker_connections {{connections}}; }
            http {
              access_log off;
              sendfile on;
              {{http}}
              client_body_temp_path {{dir.Path}}/body;
              proxy_temp_path {{dir.Path}}/proxy;
              fastcgi_temp_path {{dir.Path}}/fastcgi;
              uwsgi_temp_path {{dir.Path}}/uwsgi;
              scgi_temp_path {{dir.Path}}/scgi;
              server { listen {{listen}}; root {{dir.Path}}; }
            }
            """);
        return conf;
    }

    public static string Sha256(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(f));
    }
}

/// <summary>
/// A namespace with a TAP whose kernel side has an address (made persistent, so the program
/// under netloom run can open it by name): the kernel is the peer.
/// </summary>
internal sealed class TapNamespace : IDisposable
{
    public string Ns { get; } = RunLab.Unique("nlR");
    public string Tap { get; }
    public string KernelIp { get; }
    public string NetloomIp { get; }
    public string Port => $"tap:{Tap}";

    public TapNamespace(bool makeTap = true)
    {
        int net = RunLab.Subnet();
        Tap = RunLab.Unique("nlr");
        KernelIp = $"10.230.{net}.1";
        NetloomIp = $"10.230.{net}.2";
        Sh.Ok("ip", "netns", "add", Ns);
        try
        {
            Sh.Ok("ip", "-n", Ns, "link", "set", "lo", "up");
            if (!makeTap) return;
            Sh.Ok("ip", "-n", Ns, "tuntap", "add", "dev", Tap, "mode", "tap");
            Sh.Ok("ip", "-n", Ns, "addr", "add", $"{KernelIp}/24", "dev", Tap);
            Sh.Ok("ip", "-n", Ns, "link", "set", Tap, "up");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public (int Code, string Out, string Err) Kernel(int seconds, params string[] argv) =>
        Sh.Run(TimeSpan.FromSeconds(seconds), "ip", ["netns", "exec", Ns, .. argv]);

    public void Dispose() => Sh.Run("ip", "netns", "del", Ns); // the TAP and everything in it go with it
}
