using System.CommandLine;
using System.Net;
using Netloom.Offload;
using Netloom.Offload.Kv;

namespace Netloom.Cli.Commands;

public enum KvEngine { Uring, Sockets }

/// <summary>`netloom kv`: the RESP key-value server on io_uring or on .NET sockets.</summary>
internal static class KvCommand
{
    public static Command Create()
    {
        var engine = new Option<KvEngine>("--engine") { Description = "uring (io_uring, one ring per thread) or sockets (System.Net.Sockets)", DefaultValueFactory = _ => KvEngine.Uring };
        var listen = new Option<string>("--listen") { Description = "ADDRESS:PORT to listen on", DefaultValueFactory = _ => "127.0.0.1:6380" };
        var threads = new Option<int>("--threads") { Description = "io_uring threads (one ring each)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var duration = new Option<double>("--duration") { Description = "Stop after this many seconds (0: until Ctrl-C)", DefaultValueFactory = _ => 0 };
        var sqpoll = new Option<bool>("--sqpoll") { Description = "io_uring: a kernel thread polls each submission queue (fewer system calls, one more busy thread per ring)" };
        var zcThreshold = new Option<int>("--zerocopy-from") { Description = "io_uring: send responses of at least this many bytes with SEND_ZC (0: never)", DefaultValueFactory = _ => 16 << 10 };
        var plainFds = new Option<bool>("--no-registered-files") { Description = "io_uring: plain descriptors instead of a registered file table" };
        var bundles = new Option<bool>("--send-bundles") { Description = "io_uring: each connection queues output batches in its own buffer ring and one send takes them all (IORING_RECVSEND_BUNDLE, 6.10+; replaces SEND_ZC)" };
        var busyPoll = new Option<int>("--busy-poll") { Description = "io_uring: spin this many microseconds on the ring before sleeping (0: never); no wake-ups under load, a busy core per thread", DefaultValueFactory = _ => 0 };
        var cmd = new Command("kv", "An in-memory key-value server speaking RESP2 (redis-cli, redis-benchmark) on io_uring or on .NET sockets")
            { engine, listen, threads, duration, sqpoll, zcThreshold, plainFds, bundles, busyPoll };
        cmd.SetAction(r => Run(r.GetValue(engine), r.GetValue(listen)!, r.GetValue(threads), r.GetValue(duration),
            new UringServerOptions { SqPoll = r.GetValue(sqpoll), ZeroCopyThreshold = Math.Max(0, r.GetValue(zcThreshold)), RegisteredFiles = !r.GetValue(plainFds), BusyPollMicroseconds = r.GetValue(busyPoll), SendBundles = r.GetValue(bundles) }));
        return cmd;
    }

    private static int Run(KvEngine engine, string listen, int threads, double seconds, UringServerOptions uringOptions)
    {
        if (!IPEndPoint.TryParse(listen, out var endpoint) || endpoint.Port == 0 && !listen.EndsWith(":0"))
            return CliErrors.Report($"--listen '{listen}': expected ADDRESS:PORT such as 127.0.0.1:6380", CliErrors.BadInput);
        if (threads < 1 || threads > 64) return CliErrors.Report("--threads must be from 1 to 64", CliErrors.BadInput);
        if (uringOptions.BusyPollMicroseconds is < 0 or > 1_000_000) return CliErrors.Report("--busy-poll must be from 0 to 1000000 microseconds", CliErrors.BadInput);
        if (engine == KvEngine.Uring && uringOptions.BusyPollMicroseconds > 0 && threads >= Environment.ProcessorCount)
            Console.Error.WriteLine($"netloom kv: warning: {threads} busy-polling threads on {Environment.ProcessorCount} cores leave none for the clients; --threads {Math.Max(1, Environment.ProcessorCount - 1)} is usually faster");
        var handler = new KvHandler();
        IDisposable server;
        EndPoint bound;
        try
        {
            if (engine == KvEngine.Uring)
            {
                try
                {
                    var u = new UringServer(endpoint, handler, threads, uringOptions);
                    u.Start();
                    (server, bound) = (u, u.LocalEndPoint);
                }
                catch (UringUnavailableException e)
                {
                    // Feature detection failed: serve anyway, on the sockets engine, and say so.
                    Console.Error.WriteLine($"netloom kv: {e.Message}; falling back to --engine sockets");
                    engine = KvEngine.Sockets;
                    var s = new SocketsServer(endpoint, handler);
                    s.Start();
                    (server, bound) = (s, s.LocalEndPoint);
                }
            }
            else
            {
                var s = new SocketsServer(endpoint, handler);
                s.Start();
                (server, bound) = (s, s.LocalEndPoint);
            }
        }
        catch (System.Net.Sockets.SocketException e) { return CliErrors.Report($"cannot listen on {listen}: {e.Message}"); }

        using (server)
        {
            Console.Error.WriteLine($"netloom kv ({engine.ToString().ToLowerInvariant()}{(server is UringServer u2 ? $", {threads} thread{(threads == 1 ? "" : "s")}, {u2.Features}" : "")}) listening on {bound}; Ctrl-C to stop");
            using var stop = new ManualResetEventSlim();
            using var signals = Signals.OnStop(stop.Set);
            if (seconds > 0) stop.Wait(TimeSpan.FromSeconds(seconds)); else stop.Wait();
            if (server is UringServer us && us.Failure is { } f) return CliErrors.Report($"an io_uring loop failed: {f.Message}");
            Console.Error.WriteLine($"netloom kv: {handler.Commands:N0} commands, {handler.Keys:N0} keys{(server is UringServer u3 ? $", {u3.Counters.Enters:N0} io_uring_enter calls, {u3.Counters.ZeroCopySends:N0} zero-copy sends" : "")}");
        }
        return CliErrors.Ok;
    }
}
