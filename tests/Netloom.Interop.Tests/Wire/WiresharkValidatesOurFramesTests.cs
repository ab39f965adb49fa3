using Netloom.Interop.Tests.Support;
using Netloom.Time;
using Netloom.Wire;
using Netloom.Wire.Capture;
using Xunit.Abstractions;

namespace Netloom.Interop.Tests.Wire;

/// <summary>
/// Frames built only by our reprs and writers, in a pcapng written by our writer: Wireshark
/// verifies every checksum and finds nothing malformed.
/// </summary>
public class WiresharkValidatesOurFramesTests(ITestOutputHelper output)
{
    private static readonly MacAddress A = MacAddress.Parse("02:00:00:00:00:0a"), B = MacAddress.Parse("02:00:00:00:00:0b");
    private static readonly Ipv4Address IpA = Ipv4Address.Parse("10.9.0.1"), IpB = Ipv4Address.Parse("10.9.0.2");

    private static IEnumerable<byte[]> Frames()
    {
        var rng = new Random(99);
        var buf = new byte[2000];
        var payload = new byte[1500];
        rng.NextBytes(payload);
        var eth = new EthernetRepr(A, B, EtherType.Ipv4);
        var tagged = eth;
        tagged.TagCount = 1;
        tagged.OuterTag = VlanTag.Dot1Q(7, 3);

        yield return buf[..FrameBuilder.Arp(buf, new EthernetRepr(A, MacAddress.Broadcast, EtherType.Arp), ArpRepr.Request(A, IpA, IpB))];
        yield return buf[..FrameBuilder.Arp(buf, tagged, ArpRepr.Reply(B, IpB, A, IpA))];
        for (int len = 0; len < 1400; len += 97)
        {
            var ip = new Ipv4Repr(IpA, IpB, IpProtocol.Udp, 0) { Identification = (ushort)len, Ttl = (byte)(1 + len % 255) };
            if (len % 3 == 0) ip.Options = OptionBytes.From([0x94, 0x04, 0x00, 0x00]); // router alert (RFC 2113)
            yield return buf[..FrameBuilder.Udp(buf, len % 2 == 0 ? eth : tagged, ip, new UdpRepr((ushort)(41000 + len), 40002, 0), payload.AsSpan(0, len))];
            yield return buf[..FrameBuilder.Icmp(buf, eth, ip, IcmpRepr.Echo(len % 2 == 0, 0x1234, (ushort)len, 0), payload.AsSpan(0, len))];

            var tcp = new TcpRepr
            {
                SourcePort = 40000, DestinationPort = 40003, SequenceNumber = (uint)rng.NextInt64(), AcknowledgmentNumber = (uint)rng.NextInt64(),
                Flags = TcpFlags.Ack | (len % 2 == 0 ? TcpFlags.Psh : 0), Window = (ushort)rng.Next(65536),
                Timestamp = new TcpTimestamp((uint)len, 77),
            };
            if (len % 5 == 0)
            {
                tcp.Sack.TryAdd(new SackBlock(tcp.AcknowledgmentNumber + 1000, tcp.AcknowledgmentNumber + 2000));
                tcp.Sack.TryAdd(new SackBlock(tcp.AcknowledgmentNumber + 3000, tcp.AcknowledgmentNumber + 4000));
            }
            yield return buf[..FrameBuilder.Tcp(buf, eth, ip, tcp, payload.AsSpan(0, len))];
        }
        var syn = new TcpRepr { SourcePort = 1, DestinationPort = 2, Flags = TcpFlags.Syn, Window = 65535, MaxSegmentSize = 1460, SackPermitted = true, WindowScale = 7, Timestamp = new TcpTimestamp(1, 0) };
        yield return buf[..FrameBuilder.Tcp(buf, eth, new Ipv4Repr(IpA, IpB, IpProtocol.Tcp, 0), syn, default)];

        // An ICMP port unreachable quoting a UDP datagram we built, as a stack would send it.
        int quoted = FrameBuilder.Udp(buf, eth, new Ipv4Repr(IpA, IpB, IpProtocol.Udp, 0), new UdpRepr(5000, 6000, 0), payload.AsSpan(0, 30));
        var datagram = buf[14..quoted];
        var reply = new byte[2000];
        yield return reply[..FrameBuilder.Icmp(reply, new EthernetRepr(B, A, EtherType.Ipv4), new Ipv4Repr(IpB, IpA, IpProtocol.Icmp, 0),
            IcmpRepr.Unreachable(UnreachableCode.Port, 0), datagram.AsSpan(0, 28))];
    }

    [ToolFact("tshark")]
    public void Wireshark_verifies_every_checksum_and_finds_nothing_malformed()
    {
        using var dir = new TempDir();
        string file = Environment.GetEnvironmentVariable("NETLOOM_KEEP_CAPTURE") ?? dir.File("ours.pcapng");
        int count = 0;
        using (var w = CaptureWriter.Create(file))
        {
            int i = w.AddInterface(LinkType.Ethernet, "built");
            var t = Instant.FromSeconds(1_800_000_000);
            foreach (var f in Frames()) { w.Write(i, t, f); t += Duration.FromMicroseconds(10); count++; }
        }

        var rows = Tshark.Fields(file, "frame.number", "_ws.malformed", "_ws.expert.severity", "ip.checksum.status", "icmp.checksum.status", "udp.checksum.status", "tcp.checksum.status", "vlan.id", "ip.opt.type", "icmp.type");
        Assert.Equal(count, rows.Count);
        int checkedGood = 0;
        foreach (var r in rows)
        {
            Assert.True(r["_ws.malformed"] == "", $"frame {r["frame.number"]} is malformed to Wireshark");
            foreach (var key in new[] { "ip.checksum.status", "icmp.checksum.status", "udp.checksum.status", "tcp.checksum.status" })
            {
                // In an ICMP error, tshark's udp fields describe the quoted (truncated) datagram: unverifiable.
                if (key == "udp.checksum.status" && r["icmp.type"] == "3" && r[key] == "2") continue;
                Assert.True(r[key] is "" or "1", $"frame {r["frame.number"]}: {key} = {r[key]}");
                if (r[key] == "1") checkedGood++;
            }
        }
        // Checksums were really verified, and the special cases were in the file.
        int ipFrames = rows.Count(r => r["ip.checksum.status"] != "");
        Assert.True(ipFrames >= count - 2, $"{ipFrames} IPv4 frames of {count}");
        Assert.Equal(2 * ipFrames, checkedGood); // the IPv4 header and the transport checksum of each
        Assert.Contains(rows, r => r["vlan.id"] == "7");
        Assert.Contains(rows, r => r["ip.opt.type"] != "");
        // Nothing Wireshark flags as an error (severity "error" is 0x00800000).
        var (_, errors, _) = Sh.Run("tshark", ["-r", file, .. Tshark.Preferences, "-Y", "_ws.expert.severity == error || _ws.malformed"]);
        Assert.True(errors.Trim() == "", errors);
        output.WriteLine($"{count} frames, {checkedGood} checksums verified good by Wireshark");
    }

    [ToolFact("tshark")]
    public void The_demo_capture_of_two_stacks_through_the_switch_is_clean_to_wireshark()
    {
        using var dir = new TempDir();
        string file = dir.File("demo.pcapng");
        var (code, _, err) = Sh.Run("dotnet", Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll"), "demo", "--hosts", "--out", file);
        Assert.True(code == 0, err);
        var rows = Tshark.Fields(file, "frame.number", "_ws.malformed", "ip.checksum.status", "icmp.checksum.status", "udp.checksum.status", "frame.packet_flags_direction");
        Assert.True(rows.Count >= 30);
        foreach (var r in rows)
        {
            Assert.True(r["_ws.malformed"] == "", $"frame {r["frame.number"]} is malformed");
            foreach (var k in new[] { "ip.checksum.status", "icmp.checksum.status", "udp.checksum.status" })
                Assert.True(r[k] is "" or "1" or "2", $"frame {r["frame.number"]}: {k} = {r[k]}"); // 2: a first fragment's ICMP is unverifiable
            Assert.True(r["frame.packet_flags_direction"] is "1" or "2" or "0x1" or "0x2" or "0x00000001" or "0x00000002", $"frame {r["frame.number"]}: direction '{r["frame.packet_flags_direction"]}'");
        }
        output.WriteLine($"{rows.Count} frames from the demo, clean to Wireshark");
    }

    [ToolFact("tshark")]
    public void The_emulated_demo_captures_every_link_clean_to_wireshark()
    {
        using var dir = new TempDir();
        var (code, _, err) = Sh.Run("dotnet", Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll"), "demo", "--pcap", dir.Path);
        Assert.True(code == 0, err);
        var files = Directory.GetFiles(dir.Path, "*.pcapng");
        Assert.Equal(7, files.Length);
        int total = 0, tcp = 0;
        foreach (var file in files)
        {
            var rows = Tshark.Fields(file, "frame.number", "_ws.malformed", "ip.checksum.status", "tcp.checksum.status", "icmp.checksum.status", "tcp.len");
            Assert.NotEmpty(rows);
            foreach (var r in rows)
            {
                Assert.True(r["_ws.malformed"] == "", $"{Path.GetFileName(file)} frame {r["frame.number"]} is malformed");
                foreach (var k in new[] { "ip.checksum.status", "tcp.checksum.status", "icmp.checksum.status" })
                    Assert.True(r[k] is "" or "1", $"{Path.GetFileName(file)} frame {r["frame.number"]}: {k} = {r[k]}");
                if (r["tcp.len"] != "") tcp++;
            }
            total += rows.Count;
        }
        Assert.True(tcp > 5000, $"only {tcp} TCP segments captured");
        output.WriteLine($"{total} frames on 7 links, clean to Wireshark");
    }
}
