using System.Text.Json;

namespace Netloom.Tests.Cli;

public class PktgenCliTests
{
    [Fact]
    public void Pktgen_on_a_pipe_reports_what_the_peer_received()
    {
        var (code, stdout, stderr) = Support.Cli.Run("pktgen", "--port", "pipe:cli{0", "--mode", "tx", "--duration", "0.5", "--json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.Equal("tx", root.GetProperty("mode").GetString());
        long sent = root.GetProperty("packets").GetInt64();
        Assert.True(sent > 0);
        Assert.Equal(sent, root.GetProperty("peer").GetProperty("packets").GetInt64()); // nothing lost in a pipe
        Assert.True(root.GetProperty("mpps").GetDouble() > 0);
        Assert.True(root.GetProperty("avg_batch").GetDouble() >= 1);
    }

    [Fact]
    public void Pktgen_ping_reports_rtt_percentiles()
    {
        var (code, stdout, stderr) = Support.Cli.Run("pktgen", "--port", "pipe:cliping}3", "--mode", "ping", "--duration", "0.3", "--json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var rtt = doc.RootElement.GetProperty("rtt_ns");
        long min = rtt.GetProperty("min").GetInt64(), p50 = rtt.GetProperty("p50").GetInt64(), p99 = rtt.GetProperty("p99").GetInt64(), max = rtt.GetProperty("max").GetInt64();
        Assert.True(0 < min && min <= p50 && p50 <= p99 && p99 <= max, $"{min} {p50} {p99} {max}");
    }

    [Fact]
    public void Pktgen_at_a_rate_sends_about_that_many()
    {
        var (code, stdout, stderr) = Support.Cli.Run("pktgen", "--port", "pipe:clirate{0", "--rate", "10000", "--duration", "1", "--json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        long sent = doc.RootElement.GetProperty("packets").GetInt64();
        Assert.InRange(sent, 1, 10_300); // the cap is the property: never above the rate (plus one sync of slack)
    }

    [Theory]
    [InlineData("--port", "eth0", "not a port spec")]
    [InlineData("--port", "pipe:x{0", "--size", "10", "--size must be from 60")]
    [InlineData("--port", "pipe:x{0", "--ring-size", "1000", "power of two")]
    public void Pktgen_rejects_bad_flags_with_a_reason(params string[] args)
    {
        var (code, _, stderr) = Support.Cli.Run(["pktgen", .. args[..^1]]);
        Assert.Equal(2, code);
        Assert.Contains(args[^1], stderr);
    }

    [Fact]
    public void Bench_rings_prints_the_documented_keys()
    {
        var (code, stdout, stderr) = Support.Cli.Run("bench", "rings", "--duration", "0.3", "--json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        foreach (var key in new[] { "pipe_mpps", "pipe_rtt_p50_ns", "pipe_rtt_p99_ns", "shm_mpps", "shm_rtt_p50_ns", "shm_rtt_p99_ns" })
            Assert.True(doc.RootElement.GetProperty(key).GetDouble() > 0, key);
    }
}
