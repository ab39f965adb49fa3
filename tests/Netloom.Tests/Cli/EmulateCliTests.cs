using System.Text.Json;
using Netloom.Tests.Support;

namespace Netloom.Tests.Cli;

public class EmulateCliTests
{
    [Fact]
    public void An_invalid_file_gets_every_error_with_line_and_column_and_exit_2()
    {
        using var dir = new TempDir();
        string file = dir.File("bad.yaml");
        File.WriteAllText(file, "nodes:\n  h1: hots\n  h2: host\nlinks:\n  - {a: h1, b: h9, delay: fast}\n");
        var (code, _, stderr) = Support.Cli.Run("emulate", file);
        Assert.Equal(2, code);
        Assert.Contains($"{file}:2:7: node 'h1': unknown type 'hots'", stderr);
        Assert.Contains($"{file}:5:27: link delay must be a time", stderr);
        Assert.Contains($"{file}:5:16: link h1-h9: no node named 'h9'", stderr);
        Assert.DoesNotContain("no node named 'h1'", stderr); // h1 is defined, wrongly: said once
        Assert.Contains("3 problems in", stderr);
    }

    [Fact]
    public void A_run_prints_the_tables_and_writes_the_report_and_one_capture_per_link()
    {
        using var dir = new TempDir();
        string file = dir.File("lan.yaml");
        File.WriteAllText(file, """
            duration: 3s
            nodes: {h1: host, h2: host, s1: switch}
            links:
              - {a: h1, b: s1, delay: 1ms}
              - {a: h2, b: s1, delay: 1ms, loss: 1%}
            apps:
              - {type: ping, on: h1, to: h2, interval: 50ms, count: 40}
              - {type: bulk, on: h1, to: h2, size: 1MB, start: 100ms}
            """);
        var (code, stdout, stderr) = Support.Cli.Run("emulate", file, "--pcap", dir.File("caps"), "--report", dir.File("r.json"), "--seed", "3");
        Assert.True(code == 0, stderr);
        Assert.Contains("ping1", stdout);
        Assert.Contains("h2-s1", stdout);
        using var report = JsonDocument.Parse(File.ReadAllBytes(dir.File("r.json")));
        Assert.Equal(3, report.RootElement.GetProperty("seed").GetInt32());
        var bulk = report.RootElement.GetProperty("apps").EnumerateArray().Single(a => a.GetProperty("kind").GetString() == "bulk");
        Assert.True(bulk.GetProperty("completed").GetBoolean());
        Assert.Equal(1_000_000, bulk.GetProperty("bytes").GetInt64());
        Assert.Equal(new[] { "h1-s1.pcapng", "h2-s1.pcapng" }, Directory.GetFiles(dir.File("caps")).Select(f => Path.GetFileName(f)!).Order().ToArray());
        var (_, decoded, _) = Support.Cli.Run("pcap", "decode", dir.File("caps/h1-s1.pcapng"), "--json");
        Assert.DoesNotContain("\"checksum_ok\":false", decoded);
        Assert.Contains("\"tcp\"", decoded);
    }
}
