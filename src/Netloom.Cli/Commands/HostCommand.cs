using System.CommandLine;
using Netloom.Cli.Apps;

namespace Netloom.Cli.Commands;

/// <summary>`netloom host`: one user-level host on a port running apps until Ctrl-C, with its counters on exit.</summary>
internal static class HostCommand
{
    public static Command Create()
    {
        var o = new HostSetup.Options();
        var serve = new Option<string[]>("--serve") { Description = "An app to run (repeatable): udp-echo:PORT, tcp-echo:PORT, discard:PORT, http:PORT:DIR" };
        var duration = new Option<double>("--duration") { Description = "Stop after this many seconds (0: until Ctrl-C)", DefaultValueFactory = _ => 0 };
        var cmd = new Command("host", "Run one user-level dual-stack host (ARP, IPv4, IPv6 with NDP and SLAAC, ICMP, UDP, TCP) on a port, serving apps; prints its counters on exit") { serve, duration };
        o.AddTo(cmd);
        cmd.SetAction(r => Run(r, o, r.GetValue(serve) ?? [], r.GetValue(duration)));
        return cmd;
    }

    private static int Run(ParseResult r, HostSetup.Options o, string[] serve, double seconds)
    {
        var apps = new List<Func<Netloom.Sockets.SocketStack, CancellationToken, Task>>();
        foreach (var text in serve)
        {
            if (!Servers.TryParse(text, out var app, out _, out var error)) return CliErrors.Report(error!, CliErrors.BadInput);
            apps.Add(app!);
        }
        int code = HostSetup.TryStart(r, o, out var setup);
        if (code != CliErrors.Ok) return code;
        using (setup)
        {
            using var cts = new CancellationTokenSource();
            using var signals = Signals.OnStop(cts.Cancel);
            if (seconds > 0) cts.CancelAfter(TimeSpan.FromSeconds(seconds));
            // Each app binds before its first await, so calling them here means the line below is
            // printed only once every listener is in place (a client that waits for it is not refused).
            var running = apps.Select(a => a(setup.Stack, cts.Token)).ToArray();
            Console.Error.WriteLine($"netloom host {setup.Description}{(serve.Length > 0 ? $", serving {string.Join(", ", serve)}" : "")}; Ctrl-C to stop");
            try { cts.Token.WaitHandle.WaitOne(); } catch (ObjectDisposedException) { }
            Task.WaitAll(running, TimeSpan.FromSeconds(2));
            setup.PrintCounters($" ({Servers.UdpEchoed:N0} echoed)", $" ({Servers.TcpEchoedBytes:N0} bytes echoed, {Servers.DiscardedBytes:N0} discarded)");
        }
        return CliErrors.Ok;
    }
}
