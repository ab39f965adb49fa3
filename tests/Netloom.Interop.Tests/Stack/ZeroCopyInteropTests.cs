using System.Collections.Concurrent;
using System.Security.Cryptography;
using Netloom.Interop.Tests.Support;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Interop.Tests.Stack;

/// <summary>
/// Zero-copy sends (lent memory, <c>SendZeroCopyAsync</c>) to the Linux kernel's TCP through a
/// TAP in a namespace the test makes: the kernel drops some of our segments (nftables), so the
/// stack retransmits from the application's buffers; each buffer is poisoned when the stack
/// releases it. The kernel's receiver must get the original bytes, and tshark must find every
/// data frame's checksums valid (a TAP port declares no checksum capability, so the stack
/// computes them over the lent memory).
/// </summary>
public class ZeroCopyInteropTests
{
    /// <summary>Poisons its buffer when the stack releases it, as a pool handing it on would.</summary>
    private sealed class PoisonOnRelease(byte[] buffer, ConcurrentBag<int> released, int index) : IDisposable
    {
        public void Dispose()
        {
            buffer.AsSpan().Fill(0xDE);
            released.Add(index);
        }
    }

    private const string Receiver = """
        import hashlib, socket, sys
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((sys.argv[1], 5001)); s.listen(1)
        print("listening", flush=True)
        c, _ = s.accept(); h = hashlib.sha256(); n = 0
        while True:
            b = c.recv(1 << 16)
            if not b: break
            h.update(b); n += len(b)
        print("got", n, h.hexdigest(), flush=True)
        """;

    [RootFact("ip", "nft", "tshark", "/usr/bin/python3")]
    public async Task Lent_buffers_reach_the_kernel_intact_under_loss_with_valid_checksums_and_complete_in_order()
    {
        string ns = $"nlzc{Environment.ProcessId}", dev = $"nlzc{Environment.ProcessId % 10000}";
        const string kernelIp = "10.231.7.1", ourIp = "10.231.7.2";
        using var dir = new TempDir();
        Sh.Ok("ip", "netns", "add", ns);
        try
        {
            Sh.Ok("ip", "-n", ns, "link", "set", "lo", "up");
            Sh.Ok("ip", "-n", ns, "tuntap", "add", "dev", dev, "mode", "tap");
            Sh.Ok("ip", "-n", ns, "addr", "add", $"{kernelIp}/24", "dev", dev);
            Sh.Ok("ip", "-n", ns, "link", "set", dev, "up");
            // The kernel drops 2% of what we send it, so our stack retransmits.
            Sh.Ok("ip", "netns", "exec", ns, "nft", "add", "table", "inet", "loss");
            Sh.Ok("ip", "netns", "exec", ns, "nft", "add chain inet loss in { type filter hook input priority 0; }");
            Sh.Ok("ip", "netns", "exec", ns, "nft", $"add rule inet loss in ip saddr {ourIp} tcp dport 5001 numgen random mod 1000 lt 20 counter drop");

            string pcap = Path.Combine(dir.Path, "zc.pcapng");
            using var capture = new Background("Capturing on", "ip", "netns", "exec", ns, "tshark", "-i", dev, "-B", "64", "-w", pcap, "-f", "tcp port 5001");
            capture.WaitReady(30);
            using var receiver = new Background("listening", "ip", "netns", "exec", ns, "/usr/bin/python3", "-c", Receiver, kernelIp);
            receiver.WaitReady(30);

            var port = InNamespace.Run(ns, () => Ports.Open($"tap:{dev}"));
            using var stack = new NetStack(port, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:07:02"), Address = Ipv4Address.Parse(ourIp), PrefixLength = 24 });
            const int count = 48, size = 64 << 10;
            var buffers = new byte[count][];
            using var all = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            for (int i = 0; i < count; i++)
            {
                buffers[i] = new byte[size];
                new Random(i).NextBytes(buffers[i]);
                all.AppendData(buffers[i]);
            }
            string expected = Convert.ToHexStringLower(all.GetHashAndReset());
            var limit = TimeSpan.FromSeconds(60);
            await using var c = await stack.ConnectAsync(Ipv4Address.Parse(kernelIp), 5001).AsTask().WaitAsync(limit);
            var released = new ConcurrentBag<int>();
            var completions = new List<ZeroCopyCompletion>();
            var reading = Task.Run(async () =>
            {
                long covered = 0;
                while (covered < count)
                {
                    var done = await c.ReadZeroCopyCompletionAsync().AsTask().WaitAsync(limit);
                    completions.Add(done);
                    covered += done.Count;
                }
            });
            for (int i = 0; i < count; i++)
            {
                var sent = await c.SendZeroCopyAsync(buffers[i], new PoisonOnRelease(buffers[i], released, i)).AsTask().WaitAsync(limit);
                Assert.Equal((uint)i, sent.Id);
                Assert.False(sent.Copied);
            }
            await reading.WaitAsync(limit);
            c.ShutdownSend();
            Assert.True(receiver.WaitForExit(60_000), "the kernel's receiver did not see the end of the stream: " + receiver.Log);
            Assert.Contains($"got {count * size} {expected}", receiver.Log); // every buffer was poisoned on release: none went early
            Assert.Equal(count, released.Count);
            uint next = 0;
            foreach (var done in completions)
            {
                Assert.Equal(next, done.First); // in order, each send once
                Assert.False(done.Copied);
                next = done.Last + 1;
            }
            Assert.Equal((uint)count, next);
            Assert.True(completions.Count < count, $"{completions.Count} completions for {count} sends: none were coalesced");

            capture.Stop();
            var dropped = long.Parse(System.Text.RegularExpressions.Regex.Match(Sh.Ok("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "loss"), @"packets (\d+)").Groups[1].Value);
            Assert.True(dropped > 0, "the kernel dropped nothing, so nothing was retransmitted");
            var frames = Tshark.Fields(pcap, $"ip.src == {ourIp} && tcp.len > 0", false, "tcp.seq_raw", "tcp.checksum.status", "ip.checksum.status");
            // A capture may miss frames at this rate, so it must hold most of them, not all.
            Assert.True(frames.Count > count * size / 1460 / 2, $"{frames.Count} data frames captured");
            Assert.All(frames, f => Assert.Equal("1", f["tcp.checksum.status"])); // 1: good
            Assert.All(frames, f => Assert.Equal("1", f["ip.checksum.status"]));
            int resent = frames.Count - frames.Select(f => f["tcp.seq_raw"]).Distinct().Count();
            Assert.True(resent > 0, "no segment was sent twice in the capture");
        }
        finally { Sh.Run("ip", "netns", "del", ns); }
    }
}
