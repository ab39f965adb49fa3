using System.Text.Json;
using Netloom.Tests.Support;
using Netloom.Tests.Wire;
using Netloom.Time;
using Netloom.Wire.Capture;

namespace Netloom.Tests.Cli;

public class PcapCliTests
{
    private static string WriteFixtures(TempDir dir, string name, params string[] hexFrames)
    {
        string path = dir.File(name);
        using var w = CaptureWriter.Create(path);
        w.AddInterface(LinkType.Ethernet, "fixtures");
        var t = Instant.FromSeconds(1000);
        foreach (var h in hexFrames) w.Write(0, t, Hex.Bytes(h));
        return path;
    }

    [Fact]
    public void Decode_json_uses_the_documented_names_and_types()
    {
        using var dir = new TempDir();
        string file = WriteFixtures(dir, "f.pcapng", GoldenFrameTests.ArpRequest, GoldenFrameTests.TcpSyn, GoldenFrameTests.VlanUdpWithIpOptions, GoldenFrameTests.EchoRequest);
        var (code, stdout, stderr) = Support.Cli.Run("pcap", "decode", file, "--json");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);

        using var arp = JsonDocument.Parse(lines[0]);
        Assert.Equal(1, arp.RootElement.GetProperty("frame").GetInt32());
        Assert.Equal(42, arp.RootElement.GetProperty("length").GetInt32());
        Assert.Equal(2054, arp.RootElement.GetProperty("ethernet").GetProperty("ethertype").GetInt32());
        Assert.Equal("10.199.0.2", arp.RootElement.GetProperty("arp").GetProperty("target_ip").GetString());
        Assert.False(arp.RootElement.TryGetProperty("ipv4", out _)); // absent layers are left out

        using var syn = JsonDocument.Parse(lines[1]);
        var tcp = syn.RootElement.GetProperty("tcp");
        Assert.Equal("S", tcp.GetProperty("flags").GetString());
        Assert.Equal(4216746249, tcp.GetProperty("seq").GetInt64());
        Assert.Equal(1460, tcp.GetProperty("options").GetProperty("mss").GetInt32());
        Assert.Equal(10, tcp.GetProperty("options").GetProperty("window_scale").GetInt32());
        Assert.True(tcp.GetProperty("options").GetProperty("sack_permitted").GetBoolean());
        Assert.Equal(2164834661, tcp.GetProperty("options").GetProperty("timestamp").GetProperty("value").GetInt64());
        Assert.True(tcp.GetProperty("checksum_ok").GetBoolean());
        var ipv4 = syn.RootElement.GetProperty("ipv4");
        foreach (var key in new[] { "src", "dst", "protocol", "ttl", "id", "fragment_offset", "more_fragments", "dont_fragment", "header_length", "total_length", "checksum_ok" })
            Assert.True(ipv4.TryGetProperty(key, out _), key);

        using var vlan = JsonDocument.Parse(lines[2]);
        Assert.Equal(42, vlan.RootElement.GetProperty("ethernet").GetProperty("vlan").GetInt32());
        Assert.Equal(16, vlan.RootElement.GetProperty("udp").GetProperty("length").GetInt32());
    }

    [Fact]
    public void Decode_reports_a_failed_layer_and_keeps_the_rest()
    {
        using var dir = new TempDir();
        var bad = GoldenFrameTests.EchoRequest[..28] + "43" + GoldenFrameTests.EchoRequest[30..];
        string file = WriteFixtures(dir, "bad.pcap", bad);
        var (code, stdout, _) = Support.Cli.Run("pcap", "decode", file, "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout.Trim());
        Assert.Equal("ipv4: header length 12 < 20", doc.RootElement.GetProperty("error").GetString());
        Assert.True(doc.RootElement.TryGetProperty("ethernet", out _));
    }

    [Fact]
    public void Decode_of_a_truncated_file_prints_what_it_read_then_fails_with_the_offset()
    {
        using var dir = new TempDir();
        string file = WriteFixtures(dir, "t.pcap", GoldenFrameTests.ArpRequest, GoldenFrameTests.EchoRequest);
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes[..^5]);
        var (code, stdout, stderr) = Support.Cli.Run("pcap", "decode", file);
        Assert.Equal(1, code);
        Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("record data at offset 82 is truncated", stderr);
    }

    [Fact]
    public void Decode_of_a_missing_file_says_so()
    {
        var (code, _, stderr) = Support.Cli.Run("pcap", "decode", "/nonexistent/file.pcap");
        Assert.Equal(2, code);
        Assert.Contains("no such file", stderr);
    }

    [Fact]
    public void Convert_reencodes_well_formed_frames_exactly_and_copies_the_rest()
    {
        using var dir = new TempDir();
        var bad = GoldenFrameTests.EchoRequest[..28] + "43" + GoldenFrameTests.EchoRequest[30..];
        string input = WriteFixtures(dir, "in.pcapng", [.. GoldenFrameTests.All, bad]);
        string output = dir.File("out.pcap");
        var (code, stdout, stderr) = Support.Cli.Run("pcap", "convert", input, output);
        Assert.True(code == 0, stderr);
        Assert.Contains("9 frames: 8 re-encoded from their parsed form, 1 copied unchanged", stdout);
        Assert.Contains("0 re-encoded frames differ", stdout);

        using var a = CaptureReader.Open(input);
        using var b = CaptureReader.Open(output);
        Assert.Equal("pcap", b.Format);
        int n = 0;
        while (a.Read(out var pa) == CaptureReadResult.Packet)
        {
            Assert.Equal(CaptureReadResult.Packet, b.Read(out var pb));
            Assert.True(pa.Data.SequenceEqual(pb.Data));
            Assert.Equal(pa.Timestamp, pb.Timestamp);
            n++;
        }
        Assert.Equal(9, n);
        Assert.Equal(CaptureReadResult.End, b.Read(out _));
    }

    [Fact]
    public void Convert_refuses_an_unknown_output_extension()
    {
        using var dir = new TempDir();
        string input = WriteFixtures(dir, "in.pcapng", GoldenFrameTests.ArpRequest);
        var (code, _, stderr) = Support.Cli.Run("pcap", "convert", input, dir.File("out.txt"));
        Assert.Equal(2, code);
        Assert.Contains(".pcapng", stderr);
    }

    [Fact]
    public void Demo_runs_two_hosts_through_the_switch_and_its_capture_decodes_cleanly()
    {
        using var dir = new TempDir();
        string file = dir.File("demo.pcapng");
        var (code, stdout, stderr) = Support.Cli.Run("demo", "--hosts", "--out", file);
        Assert.True(code == 0, stderr);
        Assert.Contains("ping 10.0.0.2 seq=3: reply", stdout);
        Assert.Contains("3000 bytes in fragments", stdout);
        Assert.Contains("udp echo from 10.0.0.2:7: \"hello over UDP\"", stdout);
        var (_, json, _) = Support.Cli.Run("pcap", "decode", file, "--json");
        var frames = json.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(frames.Length >= 30);
        Assert.All(frames, f => Assert.DoesNotContain("\"error\"", f));
        Assert.All(frames, f => Assert.DoesNotContain("\"checksum_ok\":false", f));
    }

    [Fact]
    public void Wire_demo_writes_a_capture_that_decodes_cleanly()
    {
        using var dir = new TempDir();
        string file = dir.File("demo.pcapng");
        var (code, stdout, stderr) = Support.Cli.Run("demo", "--wire", "--out", file);
        Assert.True(code == 0, stderr);
        Assert.Contains("14 frames", stdout);
        var (_, json, _) = Support.Cli.Run("pcap", "decode", file, "--json");
        var frames = json.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(14, frames.Length);
        Assert.All(frames, f => Assert.DoesNotContain("\"error\"", f));
        Assert.All(frames, f => Assert.DoesNotContain("\"checksum_ok\":false", f));
    }

    [Fact]
    public void Unknown_flags_are_rejected_with_usage()
    {
        var (code, _, stderr) = Support.Cli.Run("pcap", "decode", "--bogus");
        Assert.NotEqual(0, code);
        Assert.Contains("--bogus", stderr);
    }
}
