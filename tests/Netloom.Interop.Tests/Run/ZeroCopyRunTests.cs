using Netloom.Interop.Tests.Support;

namespace Netloom.Interop.Tests.Run;

/// <summary>
/// MSG_ZEROCOPY for unmodified programs: zerocopy.c, written from the kernel's msg_zerocopy.rst
/// and socket(7), run under `netloom run` (both ends, one shm port between them) and, to check
/// the program itself, against the plain kernel over loopback.
/// </summary>
public class ZeroCopyRunTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromSeconds(60);
    private static readonly Lazy<string> s_program = new(() => RunLab.Compile("zerocopy.c", "zerocopy"));

    private static readonly string[] Checks =
    [
        "so-zerocopy-option", "tcp-many-sends", "tcp-completions-in-order", "errqueue-empty-eagain", "pollerr",
        "tcp-small-send-copied", "pollerr-clears", "flag-ignored-without-so-zerocopy", "udp-zerocopy",
    ];

    private static void AllChecksPassed((int Code, string Out, string Err) r)
    {
        Assert.True(r.Code == 0, $"exit {r.Code}\n{r.Out}\n{r.Err}");
        foreach (var name in Checks) Assert.Contains($"ok {name}\n", r.Out);
        Assert.Contains("0 failed", r.Out);
    }

    [RootFact("gcc")]
    public void Msg_zerocopy_works_as_documented_between_two_netloom_run_programs()
    {
        string shm = $"shm:{RunLab.Unique("nlzc")}";
        int net = RunLab.Subnet();
        string peerIp = $"10.231.{net}.1";
        using var peer = RunLab.Start("peer listening", null, shm, $"{peerIp}/24", [s_program.Value, "peer", peerIp, "7700"]);
        peer.WaitReady(60);
        // expect-zc: 64 KiB sends must complete without SO_EE_CODE_ZEROCOPY_COPIED (the stack
        // lent them into frames), while a 100-byte send reports it.
        var r = RunLab.Run(2 * Minute, null, shm, $"10.231.{net}.2/24", [s_program.Value, "check", peerIp, "7700", "expect-zc"]);
        AllChecksPassed(r);
        Assert.Contains("200 sends", r.Out);
        Assert.Contains("0 copied", r.Out);

        // A process that exits with zero-copy sends outstanding: it exits cleanly, and the peer
        // gets every byte it sent.
        var e = RunLab.Run(Minute, null, shm, $"10.231.{net}.3/24", [s_program.Value, "exit-outstanding", peerIp, "7700"]);
        Assert.True(e.Code == 0, $"exit {e.Code}\n{e.Out}\n{e.Err}");
        string sent = e.Out.Split('\n').Single(l => l.StartsWith("sent ", StringComparison.Ordinal))["sent ".Length..];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!peer.Log.Contains($"received {sent}") && DateTime.UtcNow < deadline) Thread.Sleep(100);
        Assert.Contains($"received {sent}", peer.Log);
    }

    [RootFact("gcc")]
    public void A_server_under_netloom_run_sends_zero_copy_on_accepted_sockets()
    {
        // SO_ZEROCOPY set on the listener carries over to the accepted socket, as in the kernel.
        string shm = $"shm:{RunLab.Unique("nlzs")}";
        int net = RunLab.Subnet();
        string serverIp = $"10.231.{net}.1";
        using var server = RunLab.Start("serving", null, shm, $"{serverIp}/24", [s_program.Value, "serve-zc", serverIp, "7701"]);
        server.WaitReady(60);
        var f = RunLab.Run(2 * Minute, null, shm, $"10.231.{net}.2/24", [s_program.Value, "fetch", serverIp, "7701"]);
        Assert.True(f.Code == 0, $"exit {f.Code}\n{f.Out}\n{f.Err}");
        string fetched = f.Out.Split('\n').Single(l => l.StartsWith("fetched ", StringComparison.Ordinal))["fetched ".Length..];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!server.Log.Contains("served ") && DateTime.UtcNow < deadline) Thread.Sleep(100);
        Assert.Contains($"served {fetched} notifications", server.Log);
        Assert.Contains(" copied 0", server.Log); // 64 KiB sends lent, none copied
        Assert.DoesNotContain("FAIL", server.Log);
    }

    [ToolFact("gcc")]
    public void A_server_under_offload_sends_with_send_zc_and_reports_each_notification()
    {
        // netloom run --offload sends each 64 KiB MSG_ZEROCOPY send with IORING_OP_SEND_ZC from
        // the program's buffer and reports its number only at the kernel's notification CQE; the
        // program poisons a buffer as soon as its completion is read, so the client's digest
        // proves no buffer was released early. Over loopback the kernel delivers locally and
        // copies, so every notification carries IORING_NOTIF_USAGE_ZC_COPIED and every completion
        // SO_EE_CODE_ZEROCOPY_COPIED: the test checks the notifications and their ranges, not that
        // the sends were zero-copy.
        var (log, fetched) = ServeUnderOffload(sendZc: true);
        Assert.Contains($"served {fetched} notifications", log);
        Assert.Contains(" copied 200", log);
        Assert.Contains("offload: 200 zero-copy sends (200 SEND_ZC, 0 SENDMSG_ZC), 200 notifications, 200 reported copied", log);
        Assert.DoesNotContain("FAIL", log);
    }

    [ToolFact("gcc")]
    public void A_server_under_offload_sends_sendmsg_with_sendmsg_zc()
    {
        // The same with sendmsg and two iovecs per send: IORING_OP_SENDMSG_ZC over the engine's
        // copy of the msghdr and iovecs, the bytes read from the program's buffers.
        var (log, fetched) = ServeUnderOffload(sendZc: true, mode: "serve-zc-msg");
        Assert.Contains($"served {fetched} notifications", log);
        Assert.Contains("offload: 200 zero-copy sends (0 SEND_ZC, 200 SENDMSG_ZC), 200 notifications, 200 reported copied", log);
        Assert.DoesNotContain("FAIL", log);
    }

    [ToolFact("gcc")]
    public void A_server_under_offload_without_send_zc_gets_its_completions_at_once_as_copied()
    {
        // NETLOOM_SEND_ZC=0: every MSG_ZEROCOPY send is copied into the engine's queue and
        // completes at once, with SO_EE_CODE_ZEROCOPY_COPIED, on the engine's error queue.
        var (log, fetched) = ServeUnderOffload(sendZc: false);
        Assert.Contains($"served {fetched} notifications", log);
        Assert.Contains(" copied 200", log);
        Assert.DoesNotContain("zero-copy sends", log);
        Assert.DoesNotContain("FAIL", log);
    }

    /// <summary>serve-zc under netloom run --offload, fetched by the kernel's client; the server's log and what the client got.</summary>
    private static (string Log, string Fetched) ServeUnderOffload(bool sendZc, string mode = "serve-zc")
    {
        // Below the ephemeral ports (32768 and up), which some client's connection may hold.
        string port = (21000 + (Environment.ProcessId + (sendZc ? 0 : 7) + mode.Length * 3) % 11000).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var argv = RunLab.OffloadCommand([s_program.Value, mode, "127.0.0.1", port]);
        if (!sendZc) argv = [argv[0], "NETLOOM_SEND_ZC=0", .. argv[1..]];
        using var server = new Background("serving", argv[0], argv[1..]);
        server.WaitReady(60);
        var f = Sh.Run(Minute, s_program.Value, "fetch", "127.0.0.1", port);
        Assert.True(f.Code == 0, $"exit {f.Code}\n{f.Out}\n{f.Err}");
        string fetched = f.Out.Split('\n').Single(l => l.StartsWith("fetched ", StringComparison.Ordinal))["fetched ".Length..];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!(server.Log.Contains("served ") && server.Log.Contains("offload: ")) && DateTime.UtcNow < deadline) Thread.Sleep(100);
        return (server.Log, fetched);
    }

    [ToolFact("gcc")]
    public void The_test_program_passes_against_the_kernel_over_loopback()
    {
        string port = (20000 + Environment.ProcessId % 11000).ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var peer = new Background("peer listening", s_program.Value, "peer", "127.0.0.1", port);
        peer.WaitReady();
        var r = Sh.Run(Minute, s_program.Value, "check", "127.0.0.1", port);
        AllChecksPassed(r);
        // Over loopback the kernel delivers locally and so copies: every completion says so.
        Assert.Contains("200 copied", r.Out);
        var e = Sh.Run(Minute, s_program.Value, "exit-outstanding", "127.0.0.1", port);
        Assert.Equal(0, e.Code);
    }
}
