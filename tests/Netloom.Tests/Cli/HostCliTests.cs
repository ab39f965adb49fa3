namespace Netloom.Tests.Cli;

public class HostCliTests
{
    [Theory]
    [InlineData("expected ADDRESS/PREFIX", "--port", "pipe:h}0", "--ip", "10.0.0.1")]
    [InlineData("is not an IPv4 address", "--port", "pipe:h}0", "--ip", "10.0.0.1/24", "--gateway", "banana")]
    [InlineData("not on 10.0.0.1/24", "--port", "pipe:h}0", "--ip", "10.0.0.1/24", "--gateway", "10.9.9.9")]
    [InlineData("udp-echo:PORT", "--port", "pipe:h}0", "--ip", "10.0.0.1/24", "--serve", "http:80")]
    [InlineData("expected a percentage", "--port", "pipe:h}0", "--ip", "10.0.0.1/24", "--impair", "loss=lots")]
    [InlineData("unknown impairment 'corrupt'", "--port", "pipe:h}0", "--ip", "10.0.0.1/24", "--impair", "corrupt=1%")]
    [InlineData("MTU must be 576 to 9000", "--port", "pipe:h}0", "--ip", "10.0.0.1/24", "--mtu", "100")]
    [InlineData("not a port spec", "--port", "eth0", "--ip", "10.0.0.1/24")]
    public void Bad_flags_are_refused_with_the_reason(string reason, params string[] args)
    {
        var (code, _, stderr) = Support.Cli.Run(["host", .. args]);
        Assert.Equal(2, code);
        Assert.Contains(reason, stderr);
    }

    [Fact]
    public void A_host_runs_for_its_duration_and_prints_its_counters()
    {
        var (code, stdout, stderr) = Support.Cli.Run("host", "--port", "pipe:hc}0", "--ip", "10.0.0.1/24", "--serve", "udp-echo:7",
            "--impair", "loss=1%,delay=1ms", "--duration", "0.5");
        Assert.True(code == 0, stderr);
        Assert.Contains("frames", stdout);
        Assert.Contains("arp", stdout);
        Assert.Contains("impairment:", stdout);
        Assert.Contains("udp-echo on 7", stderr);
    }
}
