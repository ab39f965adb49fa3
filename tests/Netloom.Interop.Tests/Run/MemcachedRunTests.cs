using Netloom.Interop.Tests.Support;

namespace Netloom.Interop.Tests.Run;

/// <summary>
/// memcached, a program no issue names, as users run it: four worker threads, each in its own
/// libevent epoll loop, fed accepted connections by the main thread through pipes. memccapable
/// checks the text and binary protocols command by command (quiet commands, CAS, counters,
/// append); memcslap loads it from many connections at once without TCP_NODELAY. Found by hand
/// with them: the stack's classic Nagle held the tail of every set longer than a segment for a
/// delayed ACK, and the stack owner's port wait took a wake-up meant for a worker thread.
/// </summary>
public partial class OffloadTests
{
    [ToolTheory("memcached", "memccapable", "memcslap")]
    [InlineData("0")]
    [InlineData("50")]
    [InlineData("coalesce")]
    [InlineData("single-issuer")]
    public void Memcached_with_four_worker_threads_passes_memccapable_and_serves_memcslap(string variant)
    {
        int port = FreePort();
        var argv = RunLab.OffloadCommand(["memcached", "-u", "root", "-l", "127.0.0.1", "-p", port.ToString(), "-t", "4", "-c", "1024"], VariantFlags(variant));
        using var server = new Background(null, argv[0], argv[1..]);
        string at = $"127.0.0.1:{port}";
        Memcached.WaitServing(() => Sh.Run(Minute, "memcping", $"--servers={at}"), server);
        Memcached.Check(args => Sh.Run(2 * Minute, args[0], args[1..]), at, server);
        server.Stop();
        var (accepted, _) = CountsIn(server.Log);
        Assert.True(accepted >= Memcached.Connections, server.Log); // offloaded, not passed through
        // Its threads wait through eventfds of their own (the owner mode's others wait on the owner).
        if (variant != "single-issuer") Assert.Matches(@"shared waits: [1-9]\d* in ppoll", server.Log);
    }
}

public partial class RunInteropTests
{
    [ToolFact("memcached", "memccapable", "memcslap")]
    public void Memcached_with_four_worker_threads_under_netloom_run_passes_memccapable_and_serves_memcslap_under_netloom_run()
    {
        string name = RunLab.Unique("nlmc"), shm = $"shm:{name}";
        int net = RunLab.Subnet();
        string server = $"10.237.{net}.1", client = $"10.237.{net}.2/24";
        using var memcached = RunLab.Start(null, null, shm, $"{server}/24", ["memcached", "-u", "root", "-l", server, "-p", "11211", "-t", "4", "-c", "1024"]);
        // The first to open shm:NAME is its server: a client started before memcached's stack had
        // opened it would take that role. The region file appears once the server holds the name.
        for (int i = 0; i < 300 && !File.Exists($"/dev/shm/netloom-{name}"); i++) Thread.Sleep(100);
        Assert.True(File.Exists($"/dev/shm/netloom-{name}"), $"memcached's stack never opened {shm}:\n{memcached.Log}");
        string at = $"{server}:11211";
        Memcached.WaitServing(() => RunLab.Run(Minute, null, shm, client, ["memcping", $"--servers={at}"]), memcached);
        Memcached.Check(args => RunLab.Run(2 * Minute, null, shm, client, args), at, memcached);
    }
}

internal static class Memcached
{
    /// <summary>memcslap's connections (one thread each).</summary>
    public const int Connections = 20;

    /// <summary>Until memcping reaches the server (memcached prints nothing when it is ready).</summary>
    public static void WaitServing(Func<(int Code, string Out, string Err)> ping, Background server)
    {
        for (int i = 0; i < 60; i++)
        {
            if (ping().Code == 0) return;
            Thread.Sleep(500);
        }
        Assert.Fail($"memcached did not answer memcping within about a minute:\n{server.Log}");
    }

    /// <summary>memccapable passes every check; memcslap's sets from many connections all complete.</summary>
    public static void Check(Func<string[], (int Code, string Out, string Err)> run, string at, Background server)
    {
        var (host, port) = (at[..at.LastIndexOf(':')], at[(at.LastIndexOf(':') + 1)..]);
        var capable = run(["memccapable", "-h", host, "-p", port]);
        Assert.True(capable.Code == 0, $"memccapable exit {capable.Code}\n{capable.Out}{capable.Err}\n{server.Log}");
        Assert.Contains("All tests passed", capable.Out + capable.Err);
        Assert.DoesNotContain("[fail]", capable.Out + capable.Err);
        var slap = run(["memcslap", $"--servers={at}", $"--concurrency={Connections}", "--execute-number=500"]);
        Assert.True(slap.Code == 0, $"memcslap exit {slap.Code}\n{slap.Out}{slap.Err}\n{server.Log}");
        Assert.Matches(@"Time to set\s+10000 keys by\s+20 threads", slap.Out + slap.Err);
    }
}
