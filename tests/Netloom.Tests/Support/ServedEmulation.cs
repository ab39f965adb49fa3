using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Netloom.Tests.Support;

/// <summary>A real `netloom emulate --serve 127.0.0.1:0` process, its address, and an HTTP client for it.</summary>
internal sealed partial class ServedEmulation : IDisposable
{
    private readonly System.Diagnostics.Process _p;
    private readonly StringBuilder _out = new();

    public ServedEmulation(string? file, string runtimeDir, params string[] extra) : this(file, runtimeDir, [], extra) { }

    /// <summary>As above, with <paramref name="environment"/> set for the server (and what it starts).</summary>
    public ServedEmulation(string? file, string runtimeDir, (string Name, string Value)[] environment, params string[] extra)
    {
        var args = new List<string> { "emulate" };
        if (file is not null) args.Add(file);
        args.AddRange(["--serve", "127.0.0.1:0"]);
        args.AddRange(extra);
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NETLOOM_RUNTIME_DIR"] = runtimeDir;
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        _p = new System.Diagnostics.Process { StartInfo = psi };
        _p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_out) _out.AppendLine(e.Data); };
        _p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_out) _out.AppendLine(e.Data); };
        _p.Start();
        _p.BeginOutputReadLine();
        _p.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (UrlPattern().Match(Output) is { Success: true } m) { Url = new Uri(m.Groups[1].Value); break; }
            if (_p.HasExited || DateTime.UtcNow > deadline) throw new InvalidOperationException($"the server did not start:\n{Output}");
            Thread.Sleep(50);
        }
        Http = new HttpClient { BaseAddress = Url, Timeout = TimeSpan.FromSeconds(30) };
    }

    public Uri Url { get; }
    public HttpClient Http { get; }
    public int Pid => _p.Id;
    public string Output { get { lock (_out) return _out.ToString(); } }

    /// <summary>
    /// Waits up to <paramref name="seconds"/> for a line matching <paramref name="pattern"/>: stdout
    /// and stderr are read apart, so a line written before "serving" may be read after it.
    /// </summary>
    public Match WaitForOutput(Regex pattern, int seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var m = pattern.Match(Output);
            if (m.Success || DateTime.UtcNow > deadline) return m;
            Thread.Sleep(20);
        }
    }

    [GeneratedRegex(@"serving .* on (http://127\.0\.0\.1:\d+/)")]
    private static partial Regex UrlPattern();

    public JsonElement Get(string path)
    {
        var r = Http.GetAsync(path).Result;
        string body = r.Content.ReadAsStringAsync().Result;
        Assert.True(r.IsSuccessStatusCode, $"GET {path}: {(int)r.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public (int Status, JsonElement Body) Send(HttpMethod method, string path, string? body = null)
    {
        var req = new HttpRequestMessage(method, path);
        if (body is not null) req.Content = new StringContent(body, Encoding.UTF8, "application/json");
        var r = Http.Send(req);
        string text = r.Content.ReadAsStringAsync().Result;
        return ((int)r.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    public JsonElement Post(string path, string? body = null)
    {
        var (status, json) = Send(HttpMethod.Post, path, body);
        Assert.True(status == 200, $"POST {path}: {status} {json}");
        return json;
    }

    public static JsonElement Link(JsonElement state, string name) =>
        state.GetProperty("links").EnumerateArray().Single(l => l.GetProperty("name").GetString() == name);

    /// <summary>Stops the server with SIGTERM, as Ctrl-C would, and waits for its summary.</summary>
    public bool Stop()
    {
        System.Diagnostics.Process.Start("kill", ["-TERM", _p.Id.ToString()])!.WaitForExit();
        if (!_p.WaitForExit(30_000)) return false;
        _p.WaitForExit(); // and its output is all read
        return true;
    }

    public int ExitCode => _p.ExitCode;

    public void Dispose()
    {
        Http.Dispose();
        // SIGTERM first: the server then removes what it made (linux nodes' namespaces, process
        // nodes' programs and shm files); a kill is the fallback.
        try { if (!_p.HasExited && !Stop()) _p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _p.WaitForExit(5000);
        _p.Dispose();
    }
}
