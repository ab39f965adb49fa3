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
    [InlineData("MTU must be 576 to 65522", "--port", "pipe:h}0", "--ip", "10.0.0.1/24", "--mtu", "100")]
    [InlineData("not a port spec", "--port", "eth0", "--ip", "10.0.0.1/24")]
    [InlineData("does not exist", "--port", "pipe:h}0", "--ip", "10.0.0.1/24", "--serve", "http:80:/no/such/dir")]
    [InlineData("needs 9014-byte frames", "--port", "pipe:h}0", "--ip", "10.0.0.1/24", "--mtu", "9000")]
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
        Assert.Contains("serving udp-echo:7", stderr);
        Assert.Contains("tcp", stdout);
    }
}

public class GetCliTests
{
    [Theory]
    [InlineData("expected http://ADDRESS", "https://10.0.0.2/x")]
    [InlineData("expected http://ADDRESS", "http://example.com/x")]
    [InlineData("expected http://ADDRESS", "not a url")]
    public void Urls_it_cannot_fetch_are_refused_before_anything_starts(string reason, string url)
    {
        var (code, _, stderr) = Support.Cli.Run("get", "--port", "pipe:g}0", "--ip", "10.0.0.1/24", url, "-o", "/dev/null");
        Assert.Equal(2, code);
        Assert.Contains(reason, stderr);
    }

    [Fact]
    public void A_server_that_never_answers_times_out_with_exit_1()
    {
        var (code, _, stderr) = Support.Cli.Run("get", "--port", "pipe:g2}0", "--ip", "10.0.0.1/24", "--timeout", "1", "http://10.0.0.2/", "-o", "/dev/null");
        Assert.Equal(1, code);
        Assert.Contains("timed out", stderr);
    }

    [Fact]
    public void Get_to_an_ipv6_url_without_an_address_or_router_says_so_with_exit_1()
    {
        var (code, _, stderr) = Support.Cli.Run("get", "--port", "pipe:g6}0", "--ip", "10.0.0.1/24", "--timeout", "2", "http://[fd00::2]:8000/", "-o", "/dev/null");
        Assert.Equal(1, code);
        Assert.Contains("no usable IPv6 address to reach fd00::2", stderr);
        var (bad, _, badErr) = Support.Cli.Run("get", "--port", "pipe:g7}0", "--ip", "10.0.0.1/24", "--ip6", "fd00::1/129", "http://[fd00::2]/", "-o", "/dev/null");
        Assert.Equal(2, bad);
        Assert.Contains("--ip6 'fd00::1/129'", badErr);
    }
}
