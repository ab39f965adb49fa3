using System.Security.Cryptography;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Tests.Sockets;

/// <summary>
/// The no-copy path through the public surface only: a shm port opened with
/// <see cref="PortOptions.LoanBuffers"/>, two <see cref="NetStack"/>s, and the loan calls of
/// <see cref="TcpConnection"/> and <see cref="UdpSocket"/>.
/// </summary>
public class LoanApiTests
{
    private static readonly Ipv4Address IpA = Ipv4Address.Parse("10.63.0.1"), IpB = Ipv4Address.Parse("10.63.0.2");
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_user_sends_tcp_and_udp_from_loan_buffers_through_the_public_api()
    {
        string spec = $"shm:loanapi{Guid.NewGuid():N}"[..24];
        var pa = Ports.Open(spec, new PortOptions { LoanBuffers = 32, ChecksumOffload = true });
        var pb = Ports.Open(spec, new PortOptions { ChecksumOffload = true });
        using var a = new NetStack(pa, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:63:01"), Address = IpA }, new NetStackOptions { Seed = 1 });
        using var b = new NetStack(pb, new StackOptions { Mac = MacAddress.Parse("02:00:00:00:63:02"), Address = IpB }, new NetStackOptions { Seed = 2 });

        // TCP: 2 MiB, each loan buffer refilled only after the completion of its last send.
        using var l = b.Listen(80);
        var accept = l.AcceptAsync();
        await using var c = await a.ConnectAsync(IpB, 80).AsTask().WaitAsync(Limit);
        await using var s = await accept.AsTask().WaitAsync(Limit);
        int cap = c.LoanCapacity;
        Assert.True(cap > 1000, $"loan capacity {cap}");
        var free = new Queue<uint>();
        while (c.TryRentLoan(out uint buf)) free.Enqueue(buf);
        Assert.True(free.Count >= 8, $"{free.Count} loan buffers");
        var data = new byte[2 << 20];
        new Random(63).NextBytes(data);
        var got = new MemoryStream();
        var reader = Task.Run(async () =>
        {
            var rb = new byte[65536];
            int n;
            while ((n = await s.ReadAsync(rb)) > 0) got.Write(rb, 0, n);
        });
        var inFlight = new Queue<(uint Id, uint Buffer)>();
        for (int sent = 0; sent < data.Length;)
        {
            while (free.Count == 0)
            {
                var done = await c.ReadZeroCopyCompletionAsync().AsTask().WaitAsync(Limit);
                Assert.False(done.Copied);
                while (inFlight.Count > 0 && (int)(inFlight.Peek().Id - done.Last) <= 0) free.Enqueue(inFlight.Dequeue().Buffer);
            }
            uint buf = free.Dequeue();
            int len = Math.Min(cap, data.Length - sent);
            data.AsSpan(sent, len).CopyTo(c.LoanPayload(buf));
            var send = await c.SendLoanAsync(buf, len).AsTask().WaitAsync(Limit);
            Assert.False(send.Copied);
            inFlight.Enqueue((send.Id, buf));
            sent += len;
        }
        while (inFlight.Count > 0)
        {
            var done = await c.ReadZeroCopyCompletionAsync().AsTask().WaitAsync(Limit);
            while (inFlight.Count > 0 && (int)(inFlight.Peek().Id - done.Last) <= 0) free.Enqueue(inFlight.Dequeue().Buffer);
        }
        c.ShutdownSend();
        await reader.WaitAsync(Limit);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(got.ToArray()));
        while (free.Count > 0) c.ReturnLoan(free.Dequeue());

        // UDP: datagrams from loan buffers, each the buffer itself (not copied), completed in order.
        using var rx = b.OpenUdp(9);
        using var tx = a.OpenUdp();
        Assert.True(tx.LoanCapacity >= 1400, $"UDP loan capacity {tx.LoanCapacity}");
        Assert.True(tx.TryRentLoan(out uint ub));
        var sentUdp = new MemoryStream();
        var gotUdp = new MemoryStream();
        var reply = new byte[2048];
        var rng = new Random(64);
        for (int i = 0; i < 20; i++)
        {
            var payload = tx.LoanPayload(ub)[..1400];
            rng.NextBytes(payload);
            sentUdp.Write(payload);
            var send = tx.SendLoanTo(ub, 1400, IpB, 9);
            Assert.NotNull(send);
            Assert.False(send!.Value.Copied); // the next hop is known after the TCP exchange
            Assert.Equal((uint)i, send.Value.Id);
            var (n, _, _) = await rx.ReceiveFromAsync(reply).AsTask().WaitAsync(Limit);
            gotUdp.Write(reply, 0, n);
            // The buffer is the application's again only at its completion.
            var until = DateTime.UtcNow + Limit;
            ZeroCopyCompletion done;
            while (!tx.TryReadZeroCopyCompletion(out done))
            {
                Assert.True(DateTime.UtcNow < until, $"send {i} never completed");
                await Task.Delay(1);
            }
            Assert.Equal((uint)i, done.First);
            Assert.Equal((uint)i, done.Last);
        }
        tx.ReturnLoan(ub);
        Assert.Equal(SHA256.HashData(sentUdp.ToArray()), SHA256.HashData(gotUdp.ToArray()));
    }
}
