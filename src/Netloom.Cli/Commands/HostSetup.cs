using System.CommandLine;
using Netloom.Netem;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Stack.Devices;
using Netloom.Time;
using Netloom.Wire;
using Netloom.Wire.Capture;
using Spectre.Console;

namespace Netloom.Cli.Commands;

/// <summary>
/// The options every verb that runs a user-level stack shares (host, get), and turning them into
/// a running <see cref="NetStack"/> with its impairment and capture decorators.
/// </summary>
internal sealed class HostSetup : IDisposable
{
    public sealed class Options
    {
        public readonly Option<string> Port = new("--port") { Description = $"The port: {PortSpec.Forms}", Required = true };
        public readonly Option<string> Ip = new("--ip") { Description = "Address and prefix, such as 10.0.0.2/24", Required = true };
        public readonly Option<string?> Gateway = new("--gateway") { Description = "Default gateway" };
        public readonly Option<string?> Ip6 = new("--ip6") { Description = "A static IPv6 address and prefix, such as fd00::2/64 (without it the host takes one by SLAAC when a router advertises a prefix)" };
        public readonly Option<string?> Gateway6 = new("--gateway6") { Description = "A static IPv6 default router (advertising routers are used too)" };
        public readonly Option<bool> NoIp6 = new("--no-ip6") { Description = "IPv4 only: no link-local address, neighbour or router discovery" };
        public readonly Option<int> Mtu = new("--mtu") { Description = "MTU (576 to 65522; the port's buffers must hold MTU + 14 bytes)", DefaultValueFactory = _ => 1500 };
        public readonly Option<string?> Mac = new("--mac") { Description = "MAC address (default 02:4e:4c plus the address's last three bytes)" };
        public readonly Option<string?> Impair = new("--impair") { Description = "Faults on the port, both directions: loss=P%,delay=D,jitter=J,duplicate=P%,reorder=P%" };
        public readonly Option<int> Seed = new("--seed") { Description = "Seed for --impair", DefaultValueFactory = _ => 1 };
        public readonly Option<string?> Pcap = new("--pcap") { Description = "Capture the host's frames to this .pcapng or .pcap file" };
        public readonly Option<WaitMode> Wait = new("--wait") { Description = "Block (sleep until a frame or timer) or BusyPoll", DefaultValueFactory = _ => WaitMode.Block };
        public readonly Option<bool> FullChecksums = new("--full-checksums") { Description = "Do not declare the checksum capability on a shm port: compute and verify every TCP/UDP checksum even when the peer is a Netloom stack that declares it" };

        public void AddTo(Command c)
        {
            foreach (var o in new Option[] { Port, Ip, Gateway, Ip6, Gateway6, NoIp6, Mtu, Mac, Impair, Seed, Pcap, Wait, FullChecksums }) c.Options.Add(o);
        }
    }

    private ICaptureWriter? _writer;
    public NetStack Stack { get; private set; } = null!;
    public ImpairedDevice? Impaired { get; private set; }
    public string Description { get; private set; } = "";

    /// <summary>Validates the options and starts the stack; on a problem returns the exit code with the message printed.</summary>
    public static int TryStart(ParseResult r, Options o, out HostSetup setup)
    {
        setup = new HostSetup();
        string portSpec = r.GetValue(o.Port)!, ipText = r.GetValue(o.Ip)!;
        var slash = ipText.Split('/');
        if (slash.Length != 2 || !Ipv4Address.TryParse(slash[0], out var address) || !int.TryParse(slash[1], out int prefix) || prefix is < 0 or > 32)
            return CliErrors.Report($"--ip '{ipText}': expected ADDRESS/PREFIX such as 10.0.0.2/24", CliErrors.BadInput);
        Ipv4Address? gateway = null;
        if (r.GetValue(o.Gateway) is { } gatewayText)
        {
            if (!Ipv4Address.TryParse(gatewayText, out var g)) return CliErrors.Report($"--gateway '{gatewayText}' is not an IPv4 address", CliErrors.BadInput);
            gateway = g;
        }
        bool ipv6 = !r.GetValue(o.NoIp6);
        Ipv6Address? address6 = null, gateway6 = null;
        int prefix6 = 64;
        if (r.GetValue(o.Ip6) is { } ip6Text)
        {
            if (!ipv6) return CliErrors.Report("--ip6 and --no-ip6 contradict each other", CliErrors.BadInput);
            var parts = ip6Text.Split('/');
            if (parts.Length != 2 || !Ipv6Address.TryParse(parts[0], out var a6) || !int.TryParse(parts[1], out prefix6) || prefix6 is < 1 or > 128)
                return CliErrors.Report($"--ip6 '{ip6Text}': expected ADDRESS/PREFIX such as fd00::2/64", CliErrors.BadInput);
            address6 = a6;
        }
        if (r.GetValue(o.Gateway6) is { } gw6Text)
        {
            if (!ipv6) return CliErrors.Report("--gateway6 and --no-ip6 contradict each other", CliErrors.BadInput);
            if (!Ipv6Address.TryParse(gw6Text, out var g6)) return CliErrors.Report($"--gateway6 '{gw6Text}' is not an IPv6 address", CliErrors.BadInput);
            gateway6 = g6;
        }
        var b = BitConverter.GetBytes(address.Value);
        var mac = new MacAddress(0x02, 0x4e, 0x4c, b[2], b[1], b[0]);
        if (r.GetValue(o.Mac) is { } macText && !MacAddress.TryParse(macText, out mac)) return CliErrors.Report($"--mac '{macText}' is not a MAC address", CliErrors.BadInput);
        Impairments? impairment = null;
        if (r.GetValue(o.Impair) is { } impairText)
        {
            if (!Impairments.TryParse(impairText, out var imp, out var err)) return CliErrors.Report($"--impair: {err}", CliErrors.BadInput);
            impairment = imp;
        }
        int mtu = r.GetValue(o.Mtu), seed = r.GetValue(o.Seed);
        var options = new StackOptions
        {
            Mac = mac, Address = address, PrefixLength = prefix, Gateway = gateway, Mtu = mtu,
            Ipv6 = ipv6, Ipv6Address = address6, Ipv6PrefixLength = prefix6, Ipv6Gateway = gateway6,
        };
        try { options.Validate(); }
        catch (Exception e) when (e is ArgumentException) { return CliErrors.Report(e.Message.Split(" (Parameter")[0], CliErrors.BadInput); }
        if (r.GetValue(o.Pcap) is { } pcap)
        {
            try { setup._writer = CaptureWriter.Create(pcap); }
            catch (Exception e) when (e is ArgumentException or IOException) { return CliErrors.Report(e.Message, CliErrors.BadInput); }
        }
        IPort port;
        // A stack declares the checksum capability (used only if the port's other end is a stack that declares it too).
        try { port = Ports.Open(portSpec, new PortOptions { ChecksumOffload = !r.GetValue(o.FullChecksums) }); }
        catch (Exception e) when (e is IOException or InvalidOperationException or FormatException or NotSupportedException or UnauthorizedAccessException)
        {
            setup._writer?.Dispose();
            return CliErrors.Report(e.Message, e is FormatException ? CliErrors.BadInput : CliErrors.Failed);
        }
        var s = setup;
        var settings = new NetStackOptions
        {
            Wait = r.GetValue(o.Wait),
            Seed = seed,
            LoggerFactory = StderrLoggerFactory.Instance,
            Device = (device, clock) =>
            {
                if (impairment is not null) device = s.Impaired = new ImpairedDevice(device, impairment, impairment, clock, seed);
                if (s._writer is not null) device = new CaptureDevice(device, s._writer, clock, portSpec);
                return device;
            },
            DeviceDue = () => s.Impaired?.NextDue(),
        };
        try { setup.Stack = new NetStack(port, options, settings); }
        catch (ArgumentException e)
        {
            port.Dispose();
            setup._writer?.Dispose();
            return CliErrors.Report(e.Message, CliErrors.BadInput);
        }
        setup.Description = $"{address}/{prefix}" + (!ipv6 ? "" : address6 is { } v6 ? $" {v6}/{prefix6}" : $" {Ipv6Address.LinkLocalFromMac(mac)}/64 (SLAAC)") + $" ({mac}) on {portSpec}";
        return CliErrors.Ok;
    }

    /// <summary>
    /// Waits (up to <paramref name="limit"/>) until the stack has an IPv6 source address for
    /// <paramref name="destination"/> that passed duplicate address detection.
    /// </summary>
    public bool WaitForIpv6(Ipv6Address destination, TimeSpan limit)
    {
        var end = DateTime.UtcNow + limit;
        while (true)
        {
            using (Stack.Lock.EnterScope())
            {
                if (Stack.Interface.Ipv6Address is { } a && (destination.IsLinkLocal || !a.IsLinkLocal)) return true;
            }
            if (DateTime.UtcNow > end) return false;
            Thread.Sleep(50);
        }
    }

    /// <summary>The stack's counters as a table, plus the impairment's.</summary>
    public void PrintCounters(string? extraUdp = null, string? extraTcp = null)
    {
        var c = Stack.GetCounters();
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;
        var t = new Table().Border(TableBorder.Rounded).AddColumn("layer").AddColumn(new TableColumn("in").RightAligned()).AddColumn(new TableColumn("out").RightAligned());
        t.AddRow("frames", $"{c.FramesIn:N0}", $"{c.FramesOut:N0}");
        t.AddRow("arp", $"{c.ArpIn:N0}", $"{c.ArpOut:N0}");
        t.AddRow("ipv4", $"{c.Ipv4In:N0}", $"{c.Ipv4Out:N0}");
        long v6In, v6Out, ndpIn, ndpOut;
        using (Stack.Lock.EnterScope()) { v6In = Stack.Interface.Ipv6In; v6Out = Stack.Interface.Ipv6Out; ndpIn = Stack.Interface.Counters.NdpIn; ndpOut = Stack.Interface.Counters.NdpOut; }
        if (v6In + v6Out > 0) t.AddRow("ipv6", $"{v6In:N0} ({ndpIn:N0} ndp)", $"{v6Out:N0} ({ndpOut:N0} ndp)");
        t.AddRow("fragments", $"{c.FragmentsIn:N0} ({c.Reassembled:N0} datagrams reassembled)", $"{c.FragmentsOut:N0}");
        t.AddRow("icmp", $"{c.IcmpIn:N0}", $"{c.IcmpOut:N0}");
        t.AddRow("udp", $"{c.UdpIn:N0}", $"{c.UdpOut:N0}{extraUdp}");
        t.AddRow("tcp", $"{c.TcpIn:N0} ({c.TcpPassiveOpens:N0} accepted, {c.TcpResetsIn:N0} resets)",
            $"{c.TcpOut:N0} ({c.TcpActiveOpens:N0} opened, {c.TcpResetsOut:N0} resets, {c.TcpChallengeAcks:N0} challenge acks, {c.TcpSynCookiesSent:N0} syn cookies){extraTcp}");
        AnsiConsole.Write(t);
        foreach (var (reason, count) in c.NonZeroDrops()) AnsiConsole.MarkupLine($"drop {reason}: {count:N0}");
        long leftOut, notVerified;
        using (Stack.Lock.EnterScope()) { leftOut = Stack.Interface.ChecksumsLeftOut; notVerified = Stack.Interface.ChecksumsNotVerified; }
        AnsiConsole.MarkupLine($"checksum offload: {leftOut:N0} TCP/UDP checksums left out, {notVerified:N0} not verified");
        if (Impaired is { } i)
            AnsiConsole.MarkupLine($"impairment: {i.Lost:N0} lost, {i.Duplicated:N0} duplicated, {i.Reordered:N0} reordered, {i.LineFull:N0} over the delay line");
    }

    public void Dispose()
    {
        Stack?.Dispose();
        _writer?.Dispose();
    }
}
