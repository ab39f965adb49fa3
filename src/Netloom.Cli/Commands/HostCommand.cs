using System.CommandLine;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Stack.Devices;
using Netloom.Time;
using Netloom.Wire;
using Netloom.Wire.Capture;
using Spectre.Console;

namespace Netloom.Cli.Commands;

/// <summary>`netloom host`: one user-level host on a port until Ctrl-C, with its counters on exit.</summary>
internal static class HostCommand
{
    public static Command Create()
    {
        var port = new Option<string>("--port") { Description = $"The port: {PortSpec.Forms}", Required = true };
        var ip = new Option<string>("--ip") { Description = "Address and prefix, such as 10.0.0.2/24", Required = true };
        var gateway = new Option<string?>("--gateway") { Description = "Default gateway" };
        var mtu = new Option<int>("--mtu") { Description = "MTU (576 to 9000)", DefaultValueFactory = _ => 1500 };
        var mac = new Option<string?>("--mac") { Description = "MAC address (default 02:4e:4c plus the address's last three bytes)" };
        var serve = new Option<string[]>("--serve") { Description = "An app to run: udp-echo:PORT (repeatable)" };
        var impair = new Option<string?>("--impair") { Description = "Faults on the port, both directions: loss=P%,delay=D,jitter=J,duplicate=P%,reorder=P%" };
        var seed = new Option<int>("--seed") { Description = "Seed for --impair", DefaultValueFactory = _ => 1 };
        var pcap = new Option<string?>("--pcap") { Description = "Capture the host's frames to this .pcapng or .pcap file" };
        var wait = new Option<WaitMode>("--wait") { Description = "Block (sleep until a frame or timer) or BusyPoll", DefaultValueFactory = _ => WaitMode.Block };
        var duration = new Option<double>("--duration") { Description = "Stop after this many seconds (0: until Ctrl-C)", DefaultValueFactory = _ => 0 };
        var cmd = new Command("host", "Run one user-level IPv4 host (ARP, ICMP, UDP) on a port; prints its counters on exit")
            { port, ip, gateway, mtu, mac, serve, impair, seed, pcap, wait, duration };
        cmd.SetAction(r => Run(r.GetValue(port)!, r.GetValue(ip)!, r.GetValue(gateway), r.GetValue(mtu), r.GetValue(mac), r.GetValue(serve) ?? [],
            r.GetValue(impair), r.GetValue(seed), r.GetValue(pcap), r.GetValue(wait), r.GetValue(duration)));
        return cmd;
    }

    private static int Run(string portSpec, string ipText, string? gatewayText, int mtu, string? macText, string[] serve,
        string? impairText, int seed, string? pcap, WaitMode wait, double seconds)
    {
        var slash = ipText.Split('/');
        if (slash.Length != 2 || !Ipv4Address.TryParse(slash[0], out var address) || !int.TryParse(slash[1], out int prefix) || prefix is < 0 or > 32)
            return CliErrors.Report($"--ip '{ipText}': expected ADDRESS/PREFIX such as 10.0.0.2/24", CliErrors.BadInput);
        Ipv4Address? gateway = null;
        if (gatewayText is not null)
        {
            if (!Ipv4Address.TryParse(gatewayText, out var g)) return CliErrors.Report($"--gateway '{gatewayText}' is not an IPv4 address", CliErrors.BadInput);
            gateway = g;
        }
        var b = BitConverter.GetBytes(address.Value);
        var macAddress = new MacAddress(0x02, 0x4e, 0x4c, b[2], b[1], b[0]);
        if (macText is not null && !MacAddress.TryParse(macText, out macAddress)) return CliErrors.Report($"--mac '{macText}' is not a MAC address", CliErrors.BadInput);
        var echoPorts = new List<ushort>();
        foreach (var app in serve)
        {
            var parts = app.Split(':');
            if (parts.Length != 2 || parts[0] != "udp-echo" || !ushort.TryParse(parts[1], out ushort p) || p == 0)
                return CliErrors.Report($"--serve '{app}': this build serves udp-echo:PORT (TCP apps come with the TCP stack)", CliErrors.BadInput);
            echoPorts.Add(p);
        }
        Impairment? impairment = null;
        if (impairText is not null)
        {
            if (!Impairment.TryParse(impairText, out var imp, out var err)) return CliErrors.Report($"--impair: {err}", CliErrors.BadInput);
            impairment = imp;
        }
        var options = new StackOptions { Mac = macAddress, Address = address, PrefixLength = prefix, Gateway = gateway, Mtu = mtu };
        try { options.Validate(); }
        catch (Exception e) when (e is ArgumentException) { return CliErrors.Report(e.Message.Split(" (Parameter")[0], CliErrors.BadInput); }

        IPort ringPort;
        try { ringPort = Ports.Open(portSpec); }
        catch (Exception e) when (e is IOException or InvalidOperationException or FormatException or NotSupportedException or UnauthorizedAccessException)
        {
            return CliErrors.Report(e.Message, e is FormatException ? CliErrors.BadInput : CliErrors.Failed);
        }
        using var portScope = ringPort;
        HostLoop? loop = null;
        Func<Instant> clock = () => loop!.Now;
        IFrameDevice device = new PortDevice(ringPort, mtu);
        ImpairedDevice? impaired = null;
        if (impairment is not null) device = impaired = new ImpairedDevice(device, impairment, impairment, clock, seed);
        ICaptureWriter? writer = null;
        if (pcap is not null)
        {
            try { writer = CaptureWriter.Create(pcap); }
            catch (Exception e) when (e is ArgumentException or IOException) { return CliErrors.Report(e.Message, CliErrors.BadInput); }
            device = new CaptureDevice(device, writer, clock, portSpec);
        }
        using var writerScope = writer;

        var iface = new Interface(options, device, seed);
        loop = new HostLoop(iface, ringPort);
        var sockets = echoPorts.Select(p => iface.OpenUdp(p)).ToList();
        var buffer = new byte[65536];
        long echoed = 0;
        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
        if (seconds > 0) cts.CancelAfter(TimeSpan.FromSeconds(seconds));
        Console.Error.WriteLine($"netloom host {address}/{prefix} ({macAddress}) on {portSpec}{(echoPorts.Count > 0 ? $", udp-echo on {string.Join(", ", echoPorts)}" : "")}; Ctrl-C to stop");

        loop.Run(cts.Token, wait, _ =>
        {
            foreach (var s in sockets)
                while (s.TryReceive(buffer, out int n, out var from, out ushort fromPort))
                    if (s.SendTo(buffer.AsSpan(0, n), from, fromPort)) echoed++;
        }, impaired is null ? null : impaired.NextDue);

        PrintCounters(iface, echoed, impaired);
        return CliErrors.Ok;
    }

    private static void PrintCounters(Interface iface, long echoed, ImpairedDevice? impaired)
    {
        var c = iface.Counters;
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;
        var t = new Table().Border(TableBorder.Rounded).AddColumn("layer").AddColumn(new TableColumn("in").RightAligned()).AddColumn(new TableColumn("out").RightAligned());
        t.AddRow("frames", $"{c.FramesIn:N0}", $"{c.FramesOut:N0}");
        t.AddRow("arp", $"{c.ArpIn:N0}", $"{c.ArpOut:N0}");
        t.AddRow("ipv4", $"{c.Ipv4In:N0}", $"{c.Ipv4Out:N0}");
        t.AddRow("fragments", $"{c.FragmentsIn:N0} ({c.Reassembled:N0} datagrams reassembled)", $"{c.FragmentsOut:N0}");
        t.AddRow("icmp", $"{c.IcmpIn:N0}", $"{c.IcmpOut:N0}");
        t.AddRow("udp", $"{c.UdpIn:N0}", $"{c.UdpOut:N0} ({echoed:N0} echoed)");
        AnsiConsole.Write(t);
        foreach (var (reason, count) in c.NonZeroDrops()) AnsiConsole.MarkupLine($"drop {reason}: {count:N0}");
        if (impaired is not null)
            AnsiConsole.MarkupLine($"impairment: {impaired.Lost:N0} lost, {impaired.Duplicated:N0} duplicated, {impaired.Reordered:N0} reordered, {impaired.LineFull:N0} over the delay line");
    }
}
