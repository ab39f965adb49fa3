using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Netloom.Interop.Tests.Run;
using Netloom.Interop.Tests.Support;

namespace Netloom.Interop.Tests.AspNetCore;

/// <summary>
/// The test app (tests/Netloom.AspNetCore.TestApp, an ordinary minimal-API program) running in its
/// own process on one transport. "iouring" (and "sockets", Kestrel's own) listen on loopback;
/// "stack" runs the app inside a namespace the lab makes, on a TAP it creates, with the kernel's
/// address on the other side of the TAP, so curl, h2load and the test's own clients are the
/// kernel's TCP. Clients run where the server can be reached (<see cref="Exec"/>, <see cref="Connect"/>).
/// </summary>
internal sealed class KestrelLab : IDisposable
{
    private readonly Process _app;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public readonly string Transport;
    public readonly string? Ns;
    public readonly string Host;
    public readonly int Port;
    public readonly TempDir Dir = new();

    public static string AppDll
    {
        get
        {
            // Same configuration as this test assembly (bin/<Configuration>/net10.0).
            var config = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
            return Path.Combine(RunLab.Root, "tests", "Netloom.AspNetCore.TestApp", "bin", config, "net10.0", "Netloom.AspNetCore.TestApp.dll");
        }
    }

    public KestrelLab(string transport, params string[] extra)
    {
        Transport = transport;
        var args = new List<string>();
        if (transport == "stack")
        {
            Ns = RunLab.Unique("nlk");
            string dev = RunLab.Unique("nlkt");
            int subnet = RunLab.Subnet();
            Host = $"10.231.{subnet}.2";
            Port = 80;
            Sh.Ok("ip", "netns", "add", Ns);
            Sh.Ok("ip", "-n", Ns, "link", "set", "lo", "up");
            args.AddRange(["ip", "netns", "exec", Ns, "dotnet", AppDll, "--Transport", "stack", "--PortSpec", $"tap:{dev}", "--Address", $"{Host}/24"]);
            _kernelSide = () => Sh.Ok("ip", "-n", Ns, "addr", "add", $"10.231.{subnet}.1/24", "dev", dev);
        }
        else if (transport == "stack-shm")
        {
            // The app's stack serves a shm port; clients run under `netloom run` on the other end.
            int subnet = RunLab.Subnet();
            Host = $"10.233.{subnet}.2";
            Port = 80;
            _shm = $"shm:{RunLab.Unique("nlks")}";
            _clientIp = $"10.233.{subnet}.1/24";
            args.AddRange(["dotnet", AppDll, "--Transport", "stack", "--PortSpec", _shm, "--Address", $"{Host}/24"]);
        }
        else
        {
            Host = "127.0.0.1";
            using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                Port = ((IPEndPoint)probe.LocalEndPoint!).Port;
            }
            args.AddRange(["dotnet", AppDll, "--Transport", transport == "iouring-threadpool" ? "iouring" : transport]);
            if (transport == "iouring-threadpool") args.AddRange(["--Inline", "false"]);
        }
        args.AddRange(["--urls", $"http://{Host}:{Port}"]);
        args.AddRange(extra);
        var psi = new ProcessStartInfo(args[0]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args.Skip(1)) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_gcServer"] = "0";
        _app = new Process { StartInfo = psi };
        _app.OutputDataReceived += (_, e) => OnLine(e.Data);
        _app.ErrorDataReceived += (_, e) => OnLine(e.Data);
        try
        {
            _app.Start();
            _app.BeginOutputReadLine();
            _app.BeginErrorReadLine();
            if (!_ready.Task.Wait(TimeSpan.FromSeconds(60)))
                throw new TimeoutException($"the test app on {transport} never said 'Application started'. Output:\n{Log}");
            _kernelSide?.Invoke();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private readonly Action? _kernelSide;
    private readonly string? _shm, _clientIp;

    private void OnLine(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
        if (line.Contains("Application started")) _ready.TrySetResult();
    }

    public string Log { get { lock (_log) return _log.ToString(); } }
    public string Url(string path) => $"http://{Host}:{Port}{path}";
    public bool HasExited => _app.HasExited;
    public int ExitCode => _app.ExitCode;

    /// <summary>Runs a client program where the server is reachable (inside the namespace for the stack).</summary>
    public (int Code, string Out, string Err) Exec(int seconds, params string[] command) =>
        _shm is not null ? RunLab.Run(TimeSpan.FromSeconds(seconds), null, _shm, _clientIp!, command)
        : Ns is null ? Sh.Run(TimeSpan.FromSeconds(seconds), command[0], command[1..]) : Sh.Run(TimeSpan.FromSeconds(seconds), "ip", ["netns", "exec", Ns, .. command]);

    /// <summary>Starts a client program in the background (same place as <see cref="Exec"/>).</summary>
    public Process Start(params string[] command)
    {
        var argv = _shm is not null ? RunLab.Command(null, _shm, _clientIp!, command) : Ns is null ? command : ["ip", "netns", "exec", Ns, .. command];
        var psi = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    /// <summary>A kernel TCP socket connected to the app, made in the namespace when there is one.</summary>
    public async ValueTask<Socket> ConnectAsync(CancellationToken ct = default)
    {
        if (_shm is not null) throw new NotSupportedException("over shm, clients are programs under netloom run (Exec)");
        var s = Ns is null ? NewSocket() : InNamespace.Run(Ns, NewSocket);
        try
        {
            await s.ConnectAsync(new IPEndPoint(IPAddress.Parse(Host), Port), ct);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }

        static Socket NewSocket() => new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
    }

    /// <summary>An HTTP handler whose connections come from <see cref="ConnectAsync"/> (HTTP/2 cleartext allowed).</summary>
    public SocketsHttpHandler Handler() => new()
    {
        ConnectCallback = async (_, ct) => new NetworkStream(await ConnectAsync(ct), ownsSocket: true),
        EnableMultipleHttp2Connections = false,
    };

    /// <summary>Asks the app to stop as a service manager would (SIGTERM): Kestrel shuts down gracefully.</summary>
    public void Terminate() => Sh.Run("kill", "-TERM", _app.Id.ToString());

    public bool WaitForExit(int seconds) => _app.WaitForExit(TimeSpan.FromSeconds(seconds));

    public void Dispose()
    {
        try
        {
            if (!_app.HasExited)
            {
                Terminate();
                if (!_app.WaitForExit(TimeSpan.FromSeconds(15))) _app.Kill(entireProcessTree: true);
            }
            _app.WaitForExit();
        }
        catch (InvalidOperationException) { } // never started
        _app.Dispose();
        if (Ns is not null) Sh.Run("ip", "netns", "del", Ns);
        Dir.Dispose();
    }
}
