using System.Security.Cryptography;
using Netloom.Netem;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Stack.Devices;
using Netloom.Tests.Support;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Stack;

/// <summary>
/// Sends with no copy at all: the application fills a shm port's loan buffers, the stack writes
/// the headers into their headroom and the buffer is the frame. Two stacks over a real shm port
/// pair (server and client in this process), driven by a virtual clock. A buffer goes back to
/// the application only when the peer has acknowledged its bytes and the port has handed it back.
/// </summary>
public class LoanSendTests
{
    private static readonly Ipv4Address IpA = Ipv4Address.Parse("10.3.0.1"), IpB = Ipv4Address.Parse("10.3.0.2");
    private const int Mtu = 9000;

    private sealed class Pair : IDisposable
    {
        public readonly ShmPort PortA, PortB;
        public readonly Interface A, B;
        public Instant Now = Instant.FromSeconds(10);
        public readonly TcpSocket Client, Server;
        public readonly PortDevice DevA;
        public bool A_IsAtPort(uint buffer) => DevA.IsAtPort(buffer);

        public Pair(Impairments? receiveAtB = null, int sendBuffer = 256 << 10, int loans = 64)
        {
            string spec = $"shm:loan{Guid.NewGuid():N}"[..24];
            PortA = ShmPort.Open(PortSpec.Parse(spec), new PortOptions { RingSize = 64, BufferSize = 16384, LoanBuffers = loans });
            PortB = ShmPort.Open(PortSpec.Parse(spec));
            Assert.True(PortA.IsServer);
            for (int i = 0; i < 1000 && !PortA.Connected; i++) Thread.Sleep(5);
            Assert.True(PortA.Connected, "the shm client never attached");
            var tcp = new TcpSocketOptions { SendBufferSize = sendBuffer, ReceiveBufferSize = 256 << 10 };
            DevA = new PortDevice(PortA, Mtu);
            A = new Interface(new StackOptions { Mac = MacAddress.Parse("02:00:00:00:0c:01"), Address = IpA, Mtu = Mtu, Tcp = tcp }, DevA, seed: 1);
            IFrameDevice db = new PortDevice(PortB, Mtu);
            if (receiveAtB is { } imp) db = new ImpairedDevice(db, Impairments.None, imp, () => Now, seed: 7);
            B = new Interface(new StackOptions { Mac = MacAddress.Parse("02:00:00:00:0c:02"), Address = IpB, Mtu = Mtu, Tcp = tcp }, db, seed: 2);
            var listener = B.Listen(80);
            Client = A.Connect(IpB, 80);
            TcpSocket? server = null;
            for (int i = 0; i < 2000 && !(Client.State == TcpState.Established && listener.TryAccept(out server)); i++) Run(1);
            Assert.NotNull(server);
            Server = server!;
        }

        public void Run(int rounds = 1)
        {
            for (int i = 0; i < rounds; i++)
            {
                A.Poll(Now);
                B.Poll(Now);
                Now += Duration.FromMicroseconds(50);
            }
        }

        public void Dispose()
        {
            PortB.Dispose();
            PortA.Dispose();
        }
    }

    /// <summary>
    /// Streams <paramref name="data"/> through loan buffers, refilling each buffer only after its
    /// send completed; <paramref name="afterCompletion"/> sees each buffer the moment it is back.
    /// Returns what the peer read.
    /// </summary>
    private static byte[] Stream(Pair p, byte[] data, Action<uint>? afterCompletion = null, Action<uint>? afterSend = null)
    {
        var c = p.Client;
        int cap = c.LoanCapacity;
        Assert.True(cap > 8000, $"loan capacity {cap}");
        var free = new Queue<uint>();
        while (c.TryRentLoan(out uint b)) free.Enqueue(b);
        Assert.True(free.Count >= 8);
        var inFlight = new Queue<(uint Id, uint Buffer)>();
        var got = new MemoryStream();
        var buf = new byte[65536];
        int sent = 0;
        bool shut = false;
        for (int round = 0; round < 2_000_000; round++)
        {
            while (c.TryTakeZeroCopyCompletion(out var done))
            {
                Assert.False(done.Copied);
                while (inFlight.Count > 0 && (int)(inFlight.Peek().Id - done.Last) <= 0)
                {
                    var (id, b) = inFlight.Dequeue();
                    Assert.True((int)(id - done.First) >= 0, $"completion {done.First}..{done.Last} skipped send {id}");
                    afterCompletion?.Invoke(b);
                    free.Enqueue(b);
                }
            }
            while (sent < data.Length && free.Count > 0)
            {
                uint b = free.Peek();
                int n = Math.Min(cap, data.Length - sent);
                data.AsSpan(sent, n).CopyTo(c.LoanPayload(b));
                if (c.SendLoan(b, n) == 0) break;
                free.Dequeue();
                inFlight.Enqueue((c.EndZeroCopySend(copied: false), b));
                afterSend?.Invoke(b);
                sent += n;
            }
            if (sent == data.Length && !shut) { c.Shutdown(); shut = true; }
            p.Run();
            int r;
            while ((r = p.Server.Receive(buf)) > 0) got.Write(buf, 0, r);
            if (p.Server.ReceiveFinished && inFlight.Count == 0) break;
        }
        Assert.True(p.Server.ReceiveFinished, $"the transfer did not finish: {got.Length} of {data.Length} bytes, {inFlight.Count} sends outstanding");
        Assert.Empty(inFlight);
        return got.ToArray();
    }

    [Fact]
    public void Loan_buffers_carry_a_stream_sha256_exact_with_no_copy()
    {
        using var p = new Pair();
        var data = TcpLab.RandomBytes(8 << 20, 21);
        var got = Stream(p, data);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(got));
        int sends = (data.Length + p.Client.LoanCapacity - 1) / p.Client.LoanCapacity;
        // Every payload byte left in its loan buffer: one frame per send, none copied.
        Assert.Equal(sends, p.A.LoanFramesOut);
        Assert.Equal(0, p.A.LoanFramesCopied);
        Assert.Equal(0, p.Client.Retransmits);
    }

    [Fact]
    public void Under_loss_retransmissions_read_the_applications_buffer()
    {
        using var p = new Pair();
        var data = TcpLab.RandomBytes(256 << 10, 5);
        // The first data segment is lost once. Before its retransmission the application changes
        // its loan buffer (breaking the contract on purpose): only a sender that retransmits from
        // that buffer, not from a copy, delivers the changed byte.
        uint first = 0;
        bool dropped = false, changed = false;
        long frames0 = p.A.LoanFramesOut;
        var got = StreamWithHook(p, data, onFirstSend: b => first = b, eachRound: () =>
        {
            if (!dropped && p.A.LoanFramesOut > frames0)
            {
                dropped = true;
                // Drop it at B: take the frame out of B's RX ring unread.
                p.PortB.RxSync();
                Assert.True(p.PortB.Rx.Space > 0);
                p.PortB.Rx.Release(1);
                p.PortB.RxSync();
            }
            if (dropped && !changed)
            {
                changed = true; // B dropped the frame and released the slot; A has not retransmitted yet
                p.Client.LoanPayload(first)[0] ^= 0xFF;
            }
        });
        Assert.True(dropped && changed);
        Assert.False(p.A_IsAtPort(first));
        Assert.True(p.Client.Retransmits > 0);
        Assert.Equal((byte)(data[0] ^ 0xFF), got[0]);
        Assert.Equal(data.AsSpan(1).ToArray(), got.AsSpan(1).ToArray());
    }

    [Fact]
    public void Under_random_loss_a_buffer_poisoned_after_its_completion_never_reaches_the_peer()
    {
        using var p = new Pair(receiveAtB: new Impairments { Loss = 0.05 });
        var data = TcpLab.RandomBytes(4 << 20, 9);
        int poisoned = 0;
        // The moment a buffer comes back, fill it with a poison pattern. Were it released before
        // its bytes were acknowledged and handed back, a retransmission would carry the poison.
        var got = Stream(p, data, afterCompletion: b => { p.Client.LoanPayload(b).Fill(0xEE); poisoned++; });
        Assert.True(p.Client.Retransmits > 10, $"only {p.Client.Retransmits} retransmissions");
        Assert.True(poisoned > 100);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(got));
        // Retransmissions of whole loan runs went out as the buffer again (headers rewritten).
        int sends = (data.Length + p.Client.LoanCapacity - 1) / p.Client.LoanCapacity;
        Assert.True(p.A.LoanFramesOut > sends, $"{p.A.LoanFramesOut} loan frames for {sends} sends");
    }

    [Fact]
    public void A_peer_that_stops_reading_stops_the_sender_within_the_send_buffer()
    {
        using var p = new Pair(sendBuffer: 128 << 10, loans: 64);
        var c = p.Client;
        int cap = c.LoanCapacity;
        var rented = new List<uint>();
        while (c.TryRentLoan(out uint b)) rented.Add(b);
        int queued = 0, queuedHalfway = 0;
        for (int round = 0; round < 20_000; round++)
        {
            if (round == 10_000) queuedHalfway = queued;
            // The server never reads: its window closes and the sender's queue fills.
            if (queued < rented.Count && c.SendLoan(rented[queued], cap) > 0)
            {
                c.EndZeroCopySend(copied: false);
                queued++;
            }
            p.Run();
        }
        Assert.True(queued < rented.Count, "every buffer was taken: the queue is not bounded");
        Assert.Equal(queuedHalfway, queued); // stalled: nothing more was taken in the second half
        Assert.True(c.SendQueued <= 128 << 10, $"{c.SendQueued} bytes queued past a 128 KiB send buffer");
        Assert.True(c.ZeroCopyLentBytes <= 128 << 10, $"{c.ZeroCopyLentBytes} bytes of loan buffers held past a 128 KiB send buffer");
        Assert.True(c.SendQueued > 64 << 10, "the queue never filled: the test did not stall the peer");
        Assert.Equal(queued, c.ZeroCopyOutstanding + CountCompleted(c));
        // The peer reads again: everything completes and every buffer comes back.
        var buf = new byte[65536];
        for (int round = 0; round < 20_000 && c.ZeroCopyOutstanding > 0; round++)
        {
            while (p.Server.Receive(buf) > 0) { }
            p.Run();
        }
        Assert.Equal(0, c.ZeroCopyOutstanding);
        foreach (uint b in rented) c.ReturnLoan(b); // none is at the port any more: a return would throw
    }

    [Fact]
    public void A_udp_loan_send_completes_only_once_the_port_hands_the_buffer_back_and_a_small_one_is_copied()
    {
        using var p = new Pair(); // its TCP handshake resolved both stacks' ARP
        var rx = p.B.OpenUdp(9);
        var tx = p.A.OpenUdp();
        int cap = tx.LoanCapacity;
        Assert.Equal(Mtu - 28, cap);
        Assert.True(tx.TryRentLoan(out uint big));
        Assert.True(tx.TryRentLoan(out uint small));
        var payload = TcpLab.RandomBytes(cap, 3);
        payload.CopyTo(tx.LoanPayload(big));
        long frames0 = p.A.LoanFramesOut;
        Assert.True(tx.SendLoanTo(big, cap, IpB, 9, out uint id0, out bool copied0));
        Assert.Equal((0u, false), (id0, copied0));
        Assert.Equal(frames0 + 1, p.A.LoanFramesOut);
        tx.LoanPayload(small)[..100].Fill(7);
        Assert.True(tx.SendLoanTo(small, 100, IpB, 9, out uint id1, out bool copied1));
        Assert.Equal((1u, true), (id1, copied1)); // below the threshold: copied, and said so

        // A publishes both frames; B has not consumed them, so the loan is still at the port and
        // nothing completes (the copied send waits behind it: completions come in order).
        p.A.Poll(p.Now);
        p.A.Poll(p.Now);
        Assert.True(p.A_IsAtPort(big));
        Assert.False(tx.TryTakeZeroCopyCompletion(out _));
        Assert.Equal(2, tx.ZeroCopyOutstanding);

        p.B.Poll(p.Now); // B reads both and releases the slots
        p.A.Poll(p.Now); // A's sync sees the buffer handed back
        Assert.False(p.A_IsAtPort(big));
        Assert.True(tx.TryTakeZeroCopyCompletion(out var done));
        Assert.Equal(new ZeroCopyCompletion(0, 0, false), done);
        Assert.True(tx.TryTakeZeroCopyCompletion(out done));
        Assert.Equal(new ZeroCopyCompletion(1, 1, true), done);
        Assert.Equal(0, tx.ZeroCopyOutstanding);

        tx.LoanPayload(big).Fill(0xEE); // the buffer is the application's again: poison it
        var buf = new byte[65536];
        Assert.True(rx.TryReceive(buf, out int n, out var from, out _));
        Assert.Equal(IpA, from);
        Assert.Equal(payload, buf.AsSpan(0, n).ToArray());
        Assert.True(rx.TryReceive(buf, out n, out _, out _));
        Assert.Equal(Enumerable.Repeat((byte)7, 100), buf.AsSpan(0, n).ToArray());

        // Many sends from a few buffers: each reused after its completion; completions in order, coalesced.
        var buffers = new[] { big, small };
        var busy = new Queue<(uint Id, uint Buffer)>();
        var free = new Queue<uint>(buffers);
        uint expect = 2;
        int received = 0;
        var ranges = new List<ZeroCopyCompletion>();
        for (int round = 0; round < 400 && received < 200; round++)
        {
            if (free.Count > 0 && expect < 202)
            {
                uint b = free.Dequeue();
                BitConverter.TryWriteBytes(tx.LoanPayload(b), expect);
                Assert.True(tx.SendLoanTo(b, 4000, IpB, 9, out uint id, out bool c));
                Assert.Equal((expect, false), (id, c));
                busy.Enqueue((id, b));
                expect++;
            }
            p.Run();
            while (tx.TryTakeZeroCopyCompletion(out done))
            {
                ranges.Add(done);
                for (long k = 0; k < done.Count; k++) { var (id, b) = busy.Dequeue(); Assert.Equal(done.First + (uint)k, id); free.Enqueue(b); }
            }
            while (rx.TryReceive(buf, out n, out _, out _)) { Assert.Equal(4000, n); Assert.Equal(2 + received, BitConverter.ToInt32(buf)); received++; }
        }
        Assert.Equal(200, received);
        Assert.Equal(200, ranges.Sum(r => r.Count) + busy.Count);
        Assert.All(ranges, r => Assert.False(r.Copied));
    }

    [Fact]
    public void Loan_sends_allocate_nothing_per_segment()
    {
        using var p = new Pair();
        var c = p.Client;
        int cap = c.LoanCapacity;
        var buffers = new List<uint>();
        while (buffers.Count < 16 && c.TryRentLoan(out uint b)) buffers.Add(b);
        var busy = new bool[buffers.Count];
        var buf = new byte[65536];
        long received = 0;
        uint next = 0;
        void Run(int segments)
        {
            long target = received + (long)segments * cap;
            while (received < target)
            {
                while (c.TryTakeZeroCopyCompletion(out var done))
                    for (uint id = done.First; id != done.Last + 1; id++) busy[id % (uint)busy.Length] = false;
                int slot = (int)(next % (uint)busy.Length);
                if (!busy[slot] && c.SendLoan(buffers[slot], cap) == cap)
                {
                    if (c.EndZeroCopySend(copied: false) != next) throw new InvalidOperationException("send numbers skipped");
                    busy[slot] = true;
                    next++;
                }
                p.Run();
                int n;
                while ((n = p.Server.Receive(buf)) > 0) received += n;
            }
        }
        Allocations.AssertFlat(Run, 20_000);
        Assert.Equal(0, p.A.LoanFramesCopied);
        Assert.Equal(0, c.Retransmits);
    }

    private static int CountCompleted(TcpSocket c)
    {
        int n = 0;
        while (c.TryTakeZeroCopyCompletion(out var done)) n += (int)done.Count;
        return n;
    }

    private static byte[] StreamWithHook(Pair p, byte[] data, Action<uint> onFirstSend, Action eachRound)
    {
        bool firstSeen = false;
        var got = new List<byte>();
        var c = p.Client;
        int cap = c.LoanCapacity;
        var free = new Queue<uint>();
        while (c.TryRentLoan(out uint b)) free.Enqueue(b);
        var inFlight = new Queue<(uint Id, uint Buffer)>();
        var buf = new byte[65536];
        int sent = 0;
        bool shut = false;
        for (int round = 0; round < 200_000; round++)
        {
            while (c.TryTakeZeroCopyCompletion(out var done))
                while (inFlight.Count > 0 && (int)(inFlight.Peek().Id - done.Last) <= 0) free.Enqueue(inFlight.Dequeue().Buffer);
            while (sent < data.Length && free.Count > 0)
            {
                uint b = free.Peek();
                int n = Math.Min(cap, data.Length - sent);
                data.AsSpan(sent, n).CopyTo(c.LoanPayload(b));
                if (c.SendLoan(b, n) == 0) break;
                free.Dequeue();
                inFlight.Enqueue((c.EndZeroCopySend(copied: false), b));
                if (!firstSeen) { firstSeen = true; onFirstSend(b); }
                sent += n;
            }
            if (sent == data.Length && !shut) { c.Shutdown(); shut = true; }
            p.A.Poll(p.Now);
            eachRound();
            p.B.Poll(p.Now);
            p.Now += Duration.FromMicroseconds(50);
            int r;
            while ((r = p.Server.Receive(buf)) > 0) got.AddRange(buf.AsSpan(0, r).ToArray());
            if (p.Server.ReceiveFinished && inFlight.Count == 0) break;
        }
        Assert.True(p.Server.ReceiveFinished);
        return got.ToArray();
    }
}
