using System.CommandLine;
using System.Text;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Switching;
using Netloom.Time;
using Netloom.Wire;
using Netloom.Wire.Capture;
using Spectre.Console;

namespace Netloom.Cli.Commands;

/// <summary>
/// `netloom demo`: the emulator's default scenario (examples/two-lans.yaml, built in): two LANs
/// joined by a WAN link with delay, jitter, loss and a rate limit; ping, a bulk transfer and
/// request/response across it; the WAN fails for two seconds midway; the summary tables and one
/// capture per link. `--hosts` runs the earlier demo (two stacks and the switch on pipes, decoded),
/// `--wire` a synthetic exchange built with the wire layer.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var output = new Option<FileInfo>("--out") { Description = "Where --hosts and --wire write their capture", DefaultValueFactory = _ => new FileInfo("netloom-demo.pcapng") };
        var pcap = new Option<string>("--pcap") { Description = "Directory for the emulated network's captures (one pcapng per link)", DefaultValueFactory = _ => "netloom-demo" };
        var report = new Option<string?>("--report") { Description = "Also write the figures as JSON" };
        var hosts = new Option<bool>("--hosts") { Description = "Instead: two user-level hosts through the learning switch on pipes, decoded, then a timed TCP transfer" };
        var wire = new Option<bool>("--wire") { Description = "Instead: a synthetic exchange built with the wire layer alone" };
        var cmd = new Command("demo", "The emulator's default scenario: two LANs joined by an impaired WAN link, ping, bulk TCP and request/response, a link failure midway; summary tables and captures") { output, pcap, report, hosts, wire };
        cmd.SetAction(r => r.GetValue(wire) ? RunWire(r.GetValue(output)!) : r.GetValue(hosts) ? RunHosts(r.GetValue(output)!) : RunEmulation(r.GetValue(pcap)!, r.GetValue(report)));
        return cmd;
    }

    /// <summary>The built-in copy of examples/two-lans.yaml, run in virtual time.</summary>
    private static int RunEmulation(string pcap, string? report)
    {
        using var stream = typeof(DemoCommand).Assembly.GetManifestResourceStream("two-lans.yaml")!;
        string yaml = new StreamReader(stream).ReadToEnd();
        return EmulateCommand.Run(() => Netloom.Emulation.Topology.Scenario.Build(Netloom.Emulation.Topology.TopologyParser.Parse(yaml, "examples/two-lans.yaml")),
            "examples/two-lans.yaml", pcap, report, realtime: false);
    }

    /// <summary>Two hosts and a switch in one process, in virtual time: the same bytes every run.</summary>
    private static int RunHosts(FileInfo output)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200; // a log or pipe: do not wrap at 80
        ICaptureWriter writer;
        try { writer = CaptureWriter.Create(output.FullName); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { return CliErrors.Report($"cannot write {output}: {e.Message}"); }
        var ipA = Ipv4Address.Parse("10.0.0.1");
        var ipB = Ipv4Address.Parse("10.0.0.2");
        string tag = $"demo{Environment.ProcessId}";
        var (hostA, swA) = PipePort.OpenPair(tag + "a");
        var (hostB, swB) = PipePort.OpenPair(tag + "b");
        var results = new List<string>();
        using (var sw = new Netloom.Switching.Switch(new LearningTable()))
        using (hostA)
        using (hostB)
        {
            sw.AddPort(swA, "sw-port-a");
            sw.AddPort(swB, "sw-port-b");
            sw.Capture(writer, 0, 1);
            var a = new Interface(new StackOptions { Mac = WireDemo.MacA, Address = ipA }, new PortDevice(hostA), seed: 1);
            var b = new Interface(new StackOptions { Mac = WireDemo.MacB, Address = ipB }, new PortDevice(hostB), seed: 2);
            var echo = b.OpenUdp(7);
            var client = a.OpenUdp(40000);
            var now = Instant.FromSeconds(1_767_225_600);
            var buf = new byte[4096];
            void Step(int rounds = 20)
            {
                for (int i = 0; i < rounds; i++)
                {
                    a.Poll(now);
                    sw.Forward(now);
                    b.Poll(now);
                    while (echo.TryReceive(buf, out int n, out var from, out ushort port)) echo.SendTo(buf.AsSpan(0, n), from, port);
                    sw.Forward(now);
                    now += Duration.FromMicroseconds(50);
                }
            }
            Step();
            for (ushort seq = 1; seq <= 3; seq++)
            {
                var sent = now;
                a.SendPing(ipB, 0x4e4c, seq, Encoding.ASCII.GetBytes("netloom demo ping"));
                Step();
                while (a.TryTakePingReply(out var r)) results.Add($"ping {r.From} seq={r.Sequence}: reply, {r.DataLength} bytes, {(r.Received - sent).Microseconds} us (virtual time)");
                now += Duration.FromMilliseconds(100);
            }
            a.SendPing(ipB, 0x4e4c, 4, new byte[3000]);
            Step();
            while (a.TryTakePingReply(out var r)) results.Add($"ping {r.From} seq={r.Sequence}: reply, {r.DataLength} bytes in fragments, reassembled both ways");
            client.SendTo("hello over UDP"u8, ipB, 7);
            Step();
            if (client.TryReceive(buf, out int got, out var src, out ushort srcPort))
                results.Add($"udp echo from {src}:{srcPort}: \"{Encoding.ASCII.GetString(buf, 0, got)}\"");

            // TCP: a handshake, a request and its answer, and both FINs, captured.
            var listener = b.Listen(80);
            var conn = a.Connect(ipB, 80);
            Step();
            if (listener.TryAccept(out var server))
            {
                conn.Send("GET /demo HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n"u8);
                Step();
                int n = server.Receive(buf);
                server.Send("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nnetloom"u8);
                Step();
                n = conn.Receive(buf);
                results.Add($"tcp {conn.LocalAddress}:{conn.LocalPort} -> {ipB}:80: mss {conn.MaxSegmentSize}, window scale {conn.SendWindowScale}, sack {conn.SackEnabled}, timestamps {conn.TimestampsEnabled}; answer \"{Encoding.ASCII.GetString(buf, 0, n).Split("\r\n")[0]}\"");
                conn.Shutdown();
                Step();
                server.Shutdown();
                Step();
                results.Add($"tcp close: client {conn.State}, server {server.State}");
            }

            // Then a bulk transfer through the switch in real time, left out of the capture.
            sw.StopCapture();
            results.Add(BulkTransfer(a, b, sw, ipB));
        }
        writer.Dispose();
        AnsiConsole.MarkupLine("[bold]Netloom demo[/]: hosts [blue]10.0.0.1[/] and [blue]10.0.0.2[/] (user-level stacks) through a learning switch, on in-process pipes, in virtual time.");
        foreach (var line in results) AnsiConsole.MarkupLine(Markup.Escape(line));
        return ShowCapture(output, "the switch's capture of both ports");
    }

    /// <summary>64 MiB from A to B through the switch, all three polled on this thread in real time.</summary>
    private static string BulkTransfer(Interface a, Interface b, Netloom.Switching.Switch sw, Ipv4Address ipB)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var time = new MonotonicClock(Instant.FromSeconds(1_767_225_700)); // after the virtual time so far
        var listener = b.Listen(5001);
        var sender = a.Connect(ipB, 5001);
        TcpSocket? receiver = null;
        var chunk = new byte[64 << 10];
        new Random(1).NextBytes(chunk);
        var sink = new byte[64 << 10];
        const long total = 64L << 20;
        long sent = 0, received = 0;
        var t0 = clock.Elapsed;
        while (received < total && clock.Elapsed.TotalSeconds < 60)
        {
            var now = time.Now;
            a.Poll(now);
            sw.Forward(now);
            b.Poll(now);
            sw.Forward(now);
            if (receiver is null && listener.TryAccept(out var r)) { receiver = r; t0 = clock.Elapsed; }
            if (sender.IsConnected) while (sent < total && sender.SendSpace > 0) sent += sender.Send(chunk.AsSpan(0, (int)Math.Min(chunk.Length, total - sent)));
            if (receiver is not null) { int n; while ((n = receiver.Receive(sink)) > 0) received += n; }
        }
        double seconds = (clock.Elapsed - t0).TotalSeconds;
        return received == total
            ? $"tcp bulk: {total >> 20} MiB from 10.0.0.1 to {ipB} through the switch in {seconds:F2} s = {total * 8 / seconds / 1e9:F2} Gbit/s (one thread runs both stacks and the switch; {sender.Retransmits} retransmissions)"
            : $"tcp bulk: only {received:N0} of {total:N0} bytes arrived";
    }

    private static int RunWire(FileInfo output)
    {
        int frames;
        try
        {
            frames = WireDemo.Write(output.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return CliErrors.Report($"cannot write {output}: {e.Message}");
        }

        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
        AnsiConsole.MarkupLine($"[bold]Netloom wire demo[/]: {frames} frames built with the wire layer's reprs and writers.");
        return ShowCapture(output, "the synthetic exchange");
    }

    /// <summary>Reads a capture back and prints it as a table, as Wireshark's packet list would.</summary>
    private static int ShowCapture(FileInfo output, string what)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("No.").AddColumn("Time").AddColumn("Source").AddColumn("Destination")
            .AddColumn("If").AddColumn("Protocol").AddColumn(new TableColumn("Length").RightAligned()).AddColumn("Info");
        using var reader = CaptureReader.Open(output.FullName);
        int n = 0;
        long first = 0;
        while (reader.Read(out var p) == CaptureReadResult.Packet)
        {
            if (++n == 1) first = p.Timestamp.Nanoseconds;
            var d = DecodedFrame.Decode(p.Data);
            var (src, dst, proto, info) = FrameFormatter.Describe(d);
            string dir = p.Direction switch { PacketDirection.Inbound => " in", PacketDirection.Outbound => " out", _ => "" };
            table.AddRow(n.ToString(), $"{(p.Timestamp.Nanoseconds - first) / 1e9:F6}", src, dst, $"{p.InterfaceId}{dir}", proto, d.Length.ToString(), Markup.Escape(info));
        }
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200; // a log or pipe: do not wrap at 80
        AnsiConsole.MarkupLine($"{n} frames of {what} written to [blue]{Markup.Escape(output.ToString())}[/], read back and decoded:");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"Open it in Wireshark, or run [grey]./netloom pcap decode {Markup.Escape(output.ToString())} --json[/].");
        return reader.Error is null ? CliErrors.Ok : CliErrors.Report(reader.Error);
    }
}

/// <summary>The synthetic exchange between two hosts that the demo writes.</summary>
public static class WireDemo
{
    public static readonly MacAddress MacA = MacAddress.Parse("02:00:00:00:00:01"), MacB = MacAddress.Parse("02:00:00:00:00:02");
    public static readonly Ipv4Address IpA = Ipv4Address.Parse("10.0.0.1"), IpB = Ipv4Address.Parse("10.0.0.2");

    /// <summary>Writes the exchange to a capture file and returns the number of frames.</summary>
    public static int Write(string path)
    {
        using var writer = CaptureWriter.Create(path);
        int iface = writer.AddInterface(LinkType.Ethernet, "demo0");
        var t = Instant.FromSeconds(1_767_225_600); // 2026-01-01T00:00:00Z: fixed, so the file is reproducible
        int count = 0;
        foreach (var frame in Frames())
        {
            writer.Write(iface, t, frame);
            t += Duration.FromMicroseconds(250);
            count++;
        }
        return count;
    }

    /// <summary>ARP, an ICMP echo, and an HTTP request over a TCP connection with options, closed by FIN.</summary>
    public static IEnumerable<byte[]> Frames()
    {
        var buf = new byte[1600];
        var ab = new EthernetRepr(MacA, MacB, EtherType.Ipv4);
        var ba = new EthernetRepr(MacB, MacA, EtherType.Ipv4);

        yield return buf[..FrameBuilder.Arp(buf, new EthernetRepr(MacA, MacAddress.Broadcast, EtherType.Arp), ArpRepr.Request(MacA, IpA, IpB))];
        yield return buf[..FrameBuilder.Arp(buf, new EthernetRepr(MacB, MacA, EtherType.Arp), ArpRepr.Reply(MacB, IpB, MacA, IpA))];

        var ping = Encoding.ASCII.GetBytes("netloom ping payload: abcdefghijklmnopqrstuvwxyz012345");
        yield return buf[..FrameBuilder.Icmp(buf, ab, Ip(IpA, IpB, 0x1001), IcmpRepr.Echo(true, 0x4e4c, 1, 0), ping)];
        yield return buf[..FrameBuilder.Icmp(buf, ba, Ip(IpB, IpA, 0x2001), IcmpRepr.Echo(false, 0x4e4c, 1, 0), ping)];

        const ushort cport = 40000, sport = 80;
        uint cisn = 0x1000_0000, sisn = 0x5000_0000;
        var syn = Tcp(cport, sport, cisn, 0, TcpFlags.Syn, 64240);
        syn.MaxSegmentSize = 1460; syn.SackPermitted = true; syn.WindowScale = 7; syn.Timestamp = new TcpTimestamp(1000, 0);
        yield return buf[..FrameBuilder.Tcp(buf, ab, Ip(IpA, IpB, 0x1002), syn, default)];
        var synAck = Tcp(sport, cport, sisn, cisn + 1, TcpFlags.Syn | TcpFlags.Ack, 65160);
        synAck.MaxSegmentSize = 1460; synAck.SackPermitted = true; synAck.WindowScale = 7; synAck.Timestamp = new TcpTimestamp(5000, 1000);
        yield return buf[..FrameBuilder.Tcp(buf, ba, Ip(IpB, IpA, 0), synAck, default)];

        uint c = cisn + 1, s = sisn + 1, tsA = 1001, tsB = 5001;
        yield return buf[..FrameBuilder.Tcp(buf, ab, Ip(IpA, IpB, 0x1003), Ts(Tcp(cport, sport, c, s, TcpFlags.Ack, 502), tsA, tsB - 1), default)];
        var request = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: 10.0.0.2\r\nUser-Agent: netloom-demo\r\n\r\n");
        yield return buf[..FrameBuilder.Tcp(buf, ab, Ip(IpA, IpB, 0x1004), Ts(Tcp(cport, sport, c, s, TcpFlags.Psh | TcpFlags.Ack, 502), tsA, tsB - 1), request)];
        c += (uint)request.Length;
        yield return buf[..FrameBuilder.Tcp(buf, ba, Ip(IpB, IpA, 0x2002), Ts(Tcp(sport, cport, s, c, TcpFlags.Ack, 509), tsB, tsA), default)];
        var response = Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nhello, world\n");
        yield return buf[..FrameBuilder.Tcp(buf, ba, Ip(IpB, IpA, 0x2003), Ts(Tcp(sport, cport, s, c, TcpFlags.Psh | TcpFlags.Ack, 509), tsB, tsA), response)];
        s += (uint)response.Length;
        yield return buf[..FrameBuilder.Tcp(buf, ab, Ip(IpA, IpB, 0x1005), Ts(Tcp(cport, sport, c, s, TcpFlags.Ack, 501), tsA + 1, tsB), default)];
        yield return buf[..FrameBuilder.Tcp(buf, ab, Ip(IpA, IpB, 0x1006), Ts(Tcp(cport, sport, c, s, TcpFlags.Fin | TcpFlags.Ack, 501), tsA + 2, tsB), default)];
        yield return buf[..FrameBuilder.Tcp(buf, ba, Ip(IpB, IpA, 0x2004), Ts(Tcp(sport, cport, s, c + 1, TcpFlags.Fin | TcpFlags.Ack, 509), tsB + 1, tsA + 2), default)];
        yield return buf[..FrameBuilder.Tcp(buf, ab, Ip(IpA, IpB, 0x1007), Ts(Tcp(cport, sport, c + 1, s + 1, TcpFlags.Ack, 501), tsA + 3, tsB + 1), default)];
    }

    private static Ipv4Repr Ip(Ipv4Address src, Ipv4Address dst, ushort id) =>
        new(src, dst, IpProtocol.Tcp, 0) { Identification = id, DontFragment = true };

    private static TcpRepr Tcp(ushort sp, ushort dp, uint seq, uint ack, TcpFlags flags, ushort window) => new()
    {
        SourcePort = sp, DestinationPort = dp, SequenceNumber = seq, AcknowledgmentNumber = ack, Flags = flags, Window = window,
    };

    private static TcpRepr Ts(TcpRepr r, uint value, uint echo)
    {
        r.Timestamp = new TcpTimestamp(value, echo);
        return r;
    }
}
