using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using Netloom.Cli.Commands;
using Netloom.Emulation;
using Netloom.Emulation.Topology;

namespace Netloom.Cli.Emulate;

/// <summary>`netloom emulate [FILE] --serve ADDR:PORT`: runs the network under the control API until SIGINT or SIGTERM.</summary>
internal static class ServeCommand
{
    /// <summary>The network a server starts with when no file is given: nothing yet (PUT /api/scenario).</summary>
    private const string EmptyScenario = "name: empty\nduration: 1s\nnodes: {}\n";

    public static int Run(string? file, string address, int? seed, string? pcap, string? reportPath, bool realtime, string? speedText, bool paused)
    {
        if (!IPEndPoint.TryParse(address, out var endpoint) || !address.Contains(':') || address.EndsWith(':'))
            return CliErrors.Report($"--serve {address}: expected ADDR:PORT, such as 127.0.0.1:8080 (port 0 picks a free one)", CliErrors.BadInput);
        double speed = 1;
        if (speedText is not null && speedText != "max" && (!double.TryParse(speedText, System.Globalization.CultureInfo.InvariantCulture, out speed) || speed <= 0 || speed > 1e6))
            return CliErrors.Report($"--speed {speedText}: expected a positive number (virtual seconds per wall second) or 'max'", CliErrors.BadInput);
        if (speedText == "max") speed = 0;

        Scenario sc;
        try { sc = file is null ? Scenario.Build(TopologyParser.Parse(EmptyScenario), seed, realtime) : Scenario.Load(file, seed, realtime); }
        catch (TopologyException e)
        {
            foreach (var err in e.Errors) Console.Error.WriteLine(err);
            return CliErrors.Report($"{e.Errors.Count} problem{(e.Errors.Count == 1 ? "" : "s")} in {file}", CliErrors.BadInput);
        }
        catch (InvalidOperationException e) { return CliErrors.Report(e.Message); }
        if (pcap is not null)
        {
            try { sc.CaptureTo(pcap); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { sc.Network.Dispose(); return CliErrors.Report($"cannot write captures to {pcap}: {e.Message}"); }
        }

        foreach (var l in sc.Network.Nodes.OfType<LinuxNode>())
            Console.Error.WriteLine($"linux node {l.Name}: run commands in it with: ip netns exec {l.Namespace} COMMAND");
        var events = new EventHub();
        var live = new LiveEmulation(sc, speed, paused, events);
        ControlServer server;
        try { server = ControlServer.StartAsync(endpoint, live, events, realtime).GetAwaiter().GetResult(); }
        catch (IOException e)
        {
            sc.Network.Dispose();
            return CliErrors.Report($"cannot listen on {address}: {e.Message}");
        }
        var wall = Stopwatch.StartNew();
        live.Start();
        string? registered = null;
        try { registered = ServeRegistry.Register(server.Address, live.Name); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Console.Error.WriteLine($"netloom: extcap will not see this emulation: {e.Message}"); }
        Console.WriteLine($"serving {live.Name} on {server.Address} (live view {server.Address}, API {server.Address}api/state, OpenAPI {server.Address}openapi.json); Ctrl-C stops");
        Console.Out.Flush();

        using var done = new ManualResetEventSlim();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; done.Set(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; done.Set(); });
        done.Wait();

        server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        live.Dispose();
        if (registered is not null) try { File.Delete(registered); } catch (IOException) { }
        wall.Stop();
        var net = live.Network;
        var rep = EmulationReport.From(net, live.Name);
        net.Dispose();
        if (Console.IsOutputRedirected)
        {
            Spectre.Console.AnsiConsole.Profile.Width = 200;
            Spectre.Console.AnsiConsole.Profile.Capabilities.Ansi = false;
        }
        EmulateCommand.Summary(rep, TimeSpan.Zero, wall.Elapsed, pcap);
        if (reportPath is not null)
        {
            try
            {
                using var f = File.Create(reportPath);
                rep.WriteJson(f);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return CliErrors.Report($"cannot write {reportPath}: {e.Message}"); }
        }
        return live.Failure is null ? CliErrors.Ok : CliErrors.Failed;
    }
}
