using Netloom.Tests.Support;

namespace Netloom.Tests.Cli;

public class SwitchCliTests
{
    [Theory]
    [InlineData("a switch needs at least two --port", "--port", "pipe:a}0")]
    [InlineData("not a port spec", "--port", "pipe:a}0", "--port", "eth9")]
    [InlineData("expected PORTSPEC=FILE.pcapng", "--port", "pipe:a}0", "--port", "pipe:b}0", "--capture", "pipe:c}0=x.pcapng")]
    [InlineData("must end in .pcapng", "--port", "pipe:a}0", "--port", "pipe:b}0", "--capture", "pipe:a}0=x.pcap")]
    public void Bad_flags_are_refused_with_the_reason(string reason, params string[] args)
    {
        var (code, _, stderr) = Support.Cli.Run(["switch", .. args]);
        Assert.Equal(2, code);
        Assert.Contains(reason, stderr);
    }

    [Fact]
    public void A_switch_between_two_shm_ports_forwards_a_pktgen_stream_and_prints_totals()
    {
        string a = $"cswa{Guid.NewGuid():N}"[..16], b = $"cswb{Guid.NewGuid():N}"[..16];
        using var dir = new TempDir();
        string cap = dir.File("sw.pcapng");
        using var sw = ChildProcess.Netloom("switch", "--port", $"shm:{a}", "--port", $"shm:{b}", "--duration", "4", "--capture", $"shm:{a}={cap}");
        Thread.Sleep(1500); // the switch is the server of both shm ports
        using var rx = ChildProcess.Netloom("pktgen", "--port", $"shm:{b}", "--mode", "rx", "--duration", "2", "--wait", "Block");
        Thread.Sleep(500);
        using var tx = ChildProcess.Netloom("pktgen", "--port", $"shm:{a}", "--mode", "tx", "--rate", "20000", "--duration", "1", "--wait", "Block");
        Assert.True(tx.WaitForExit(20_000));
        Assert.True(sw.WaitForExit(20_000), sw.Output);
        Assert.True(sw.ExitCode == 0, sw.Output);
        Assert.Contains("totals", sw.Output);
        Assert.Contains($"shm:{a}", sw.Output);
        // Every frame the generator sent came into the switch, and the capture holds them.
        using var r = Netloom.Wire.Capture.CaptureReader.Open(cap);
        int captured = 0;
        while (r.Read(out _) == Netloom.Wire.Capture.CaptureReadResult.Packet) captured++;
        Assert.True(captured > 1000, $"only {captured} frames captured");
    }
}
