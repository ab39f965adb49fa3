using System.Security.Cryptography;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Stack;

/// <summary>
/// Zero-copy sends on the stack's TCP: the connection references the caller's memory until the
/// peer acknowledges it, retransmissions read it, completions come in order, coalesced, and the
/// memory lent stays within the send buffer. Two stacks in virtual time (<see cref="TcpLab"/>).
/// </summary>
public class ZeroCopyTests
{
    private static Duration S(long s) => Duration.FromSeconds(s);

    private sealed class Owner : IDisposable
    {
        public int Disposed;
        public void Dispose() => Disposed++;
    }

    /// <summary>Sends each buffer zero-copy as space allows, reads on the other side, and collects completions.</summary>
    private static (byte[] Got, List<ZeroCopyCompletion> Completions) Run(TcpLab lab, TcpSocket from, TcpSocket to, byte[][] buffers,
        Action<ZeroCopyCompletion>? onCompletion = null, Action? eachRound = null)
    {
        var got = new MemoryStream();
        var completions = new List<ZeroCopyCompletion>();
        var buf = new byte[65536];
        int next = 0, offset = 0;
        bool shut = false;
        lab.RunUntil(() =>
        {
            while (next < buffers.Length && from.IsConnected)
            {
                int n = from.SendReferenced(buffers[next].AsMemory(offset), copy: false);
                offset += n;
                if (offset < buffers[next].Length) break;
                Assert.Equal((uint)next, from.EndZeroCopySend(copied: false));
                next++;
                offset = 0;
            }
            if (next == buffers.Length && !shut) { from.Shutdown(); shut = true; }
            while (from.TryTakeZeroCopyCompletion(out var c)) { completions.Add(c); onCompletion?.Invoke(c); }
            eachRound?.Invoke();
            int r;
            while ((r = to.Receive(buf)) > 0) got.Write(buf, 0, r);
            return to.ReceiveFinished && completions.Sum(c => c.Count) == buffers.Length;
        }, S(600));
        return (got.ToArray(), completions);
    }

    private static byte[][] Buffers(int count, int size, int seed) =>
        Enumerable.Range(0, count).Select(i => TcpLab.RandomBytes(size, seed + i)).ToArray();

    [Fact]
    public void A_retransmission_reads_the_callers_memory_not_a_copy()
    {
        var lab = new TcpLab(seed: 3);
        var (c, s, _) = lab.Connect();
        var data = TcpLab.RandomBytes(64 << 10, 9);
        // Drop the first segment carrying payload once; before its retransmission, change the
        // caller's memory at that place. Only a sender that reads the caller's memory (rather than
        // a copy taken at send time) delivers the changed bytes.
        bool dropped = false;
        lab.AtoB.Filter = f =>
        {
            if (dropped || TcpLab.Tcp(f) is not { Len: > 0 }) return true;
            dropped = true;
            return false;
        };
        Assert.Equal(data.Length, c.SendReferenced(data, copy: false));
        c.EndZeroCopySend(copied: false);
        Assert.True(dropped);
        data.AsSpan(0, 100).Fill(0x5A);
        var got = new MemoryStream();
        var buf = new byte[65536];
        Assert.True(lab.RunUntil(() =>
        {
            int r;
            while ((r = s.Receive(buf)) > 0) got.Write(buf, 0, r);
            return got.Length == data.Length;
        }, S(60)));
        Assert.True(c.Retransmits > 0);
        Assert.Equal(data, got.ToArray()); // the changed bytes, read from the caller's array at retransmission
    }

    [Fact]
    public void A_copied_send_is_a_snapshot_taken_at_the_call()
    {
        // The control for the test above: the same drop, through the copying path.
        var lab = new TcpLab(seed: 3);
        var (c, s, _) = lab.Connect();
        var data = TcpLab.RandomBytes(64 << 10, 9);
        var original = data.ToArray();
        bool dropped = false;
        lab.AtoB.Filter = f =>
        {
            if (dropped || TcpLab.Tcp(f) is not { Len: > 0 }) return true;
            dropped = true;
            return false;
        };
        Assert.Equal(data.Length, c.SendReferenced(data, copy: true));
        Assert.Equal(0u, c.EndZeroCopySend(copied: true));
        data.AsSpan(0, 100).Fill(0x5A);
        Assert.Equal(original, lab.Transfer(c, s, [], S(60)));
        ZeroCopyCompletion done = default;
        Assert.True(lab.RunUntil(() => c.TryTakeZeroCopyCompletion(out done), S(10)));
        Assert.Equal(new ZeroCopyCompletion(0, 0, Copied: true), done);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Buffers_poisoned_at_their_completion_still_arrive_intact_under_loss(int seed)
    {
        var lab = new TcpLab(seed: seed);
        lab.AtoB.Loss = lab.BtoA.Loss = 0.05;
        var (c, s, _) = lab.Connect();
        var buffers = Buffers(48, 24 << 10, seed * 100);
        var expected = SHA256.HashData(buffers.SelectMany(b => b).ToArray());
        long[] ends = new long[buffers.Length];
        long total = 0;
        for (int i = 0; i < buffers.Length; i++) ends[i] = total += buffers[i].Length;
        uint iss = c.SndUna;
        var (got, completions) = Run(lab, c, s, buffers, done =>
        {
            for (uint id = done.First; id != done.Last + 1; id++)
            {
                // Never released before the peer acknowledged its last byte.
                Assert.True(c.SndUna - iss >= ends[id] || c.State == TcpState.Closed, $"send {id} completed at SND.UNA {c.SndUna - iss}, before its end {ends[id]}");
                buffers[id].AsSpan().Fill(0xDE); // poison: a later read of this memory would corrupt the stream
            }
        });
        Assert.True(c.Retransmits > 0, "the loss should have caused retransmissions");
        Assert.Equal(total, got.Length);
        Assert.Equal(expected, SHA256.HashData(got));
        Assert.Equal(0, c.ZeroCopyOutstanding);
        Assert.Equal(0, c.ZeroCopyLentBytes);
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(14)]
    public void Copied_and_lent_sends_of_random_sizes_mix_byte_exact_under_loss_and_reordering(int seed)
    {
        var lab = new TcpLab(seed: seed);
        lab.AtoB.Loss = lab.BtoA.Loss = 0.03;
        lab.AtoB.Reorder = 0.05;
        lab.AtoB.Duplicate = 0.02;
        var o = new TcpSocketOptions { SendBufferSize = 64 << 10 };
        var (c, s, _) = lab.Connect(client: o);
        var r = new Random(seed);
        var pieces = Enumerable.Range(0, 300).Select(i => TcpLab.RandomBytes(r.Next(1, 30_000), seed * 1000 + i)).ToArray();
        var expected = pieces.SelectMany(p => p).ToArray();
        var got = new MemoryStream();
        var buf = new byte[65536];
        int next = 0, offset = 0;
        bool shut = false;
        Assert.True(lab.RunUntil(() =>
        {
            while (next < pieces.Length && c.IsConnected)
            {
                bool copy = pieces[next].Length < c.ZeroCopyThreshold;
                int n = c.SendReferenced(pieces[next].AsMemory(offset), copy);
                offset += n;
                if (offset < pieces[next].Length) break;
                c.EndZeroCopySend(copy);
                next++;
                offset = 0;
            }
            if (next == pieces.Length && !shut) { c.Shutdown(); shut = true; }
            int m;
            while ((m = s.Receive(buf)) > 0) got.Write(buf, 0, m);
            return s.ReceiveFinished;
        }, S(900)), $"stalled: {c.Describe()}");
        Assert.Equal(expected, got.ToArray());
    }

    [Fact]
    public void Completions_come_in_order_coalesced_and_cover_every_send_once()
    {
        var lab = new TcpLab(seed: 5);
        lab.AtoB.Loss = 0.02;
        var (c, s, _) = lab.Connect();
        var buffers = Buffers(200, 12 << 10, 1);
        var (got, completions) = Run(lab, c, s, buffers);
        Assert.Equal(buffers.Sum(b => b.Length), got.Length);
        uint expect = 0;
        foreach (var done in completions)
        {
            Assert.Equal(expect, done.First);
            Assert.True(done.Last >= done.First);
            Assert.False(done.Copied);
            expect = done.Last + 1;
        }
        Assert.Equal((uint)buffers.Length, expect);
        Assert.True(completions.Count < buffers.Length, $"{completions.Count} completions for {buffers.Length} sends: a cumulative ACK should complete several sends at once");
    }

    [Fact]
    public void A_peer_that_stops_reading_bounds_the_memory_lent()
    {
        var lab = new TcpLab(seed: 2);
        var o = new TcpSocketOptions { SendBufferSize = 128 << 10, ReceiveBufferSize = 64 << 10 };
        var (c, s, _) = lab.Connect(client: o, server: o);
        var buffer = TcpLab.RandomBytes(16 << 10, 4);
        int sends = 0, refused = 0;
        long maxLent = 0;
        lab.RunUntil(() =>
        {
            // The sender tries a send each round and never gives up; the receiver never reads.
            var piece = buffer.AsMemory();
            int n = c.SendReferenced(piece, copy: false);
            if (n > 0) { c.EndZeroCopySend(false); sends++; }
            else refused++;
            maxLent = Math.Max(maxLent, c.ZeroCopyLentBytes);
            return false;
        }, S(30));
        Assert.True(refused > 0, "sends should be refused once the buffers are full");
        Assert.True(maxLent <= 128 << 10, $"{maxLent} bytes lent, more than the 128 KiB send buffer");
        Assert.True(c.ZeroCopyOutstanding <= (128 << 10) / (16 << 10) + 1);
        Assert.True(s.Available <= 64 << 10);
        // Sends the receiver's window took completed; what is left is what the buffers hold.
        Assert.True(sends > c.ZeroCopyOutstanding);
    }

    [Fact]
    public void An_abort_with_sends_outstanding_completes_them_and_releases_the_memory()
    {
        var lab = new TcpLab(seed: 4);
        var (c, s, _) = lab.Connect();
        lab.AtoB.Filter = _ => false; // nothing gets through: nothing is acknowledged
        var owners = new Owner[4];
        for (int i = 0; i < owners.Length; i++)
        {
            owners[i] = new Owner();
            Assert.Equal(20 << 10, c.SendReferenced(TcpLab.RandomBytes(20 << 10, i), copy: false));
            c.EndZeroCopySend(false, owners[i]);
        }
        lab.Run(Duration.FromMilliseconds(50));
        Assert.All(owners, o => Assert.Equal(0, o.Disposed));
        Assert.False(c.TryTakeZeroCopyCompletion(out _));
        c.Abort();
        Assert.All(owners, o => Assert.Equal(1, o.Disposed));
        Assert.True(c.TryTakeZeroCopyCompletion(out var done));
        Assert.Equal(new ZeroCopyCompletion(0, 3, false), done);
        Assert.Equal(0, c.ZeroCopyLentBytes);
    }

    [Fact]
    public void A_short_reference_is_not_taken_while_the_buffer_has_less_room_than_the_threshold()
    {
        var lab = new TcpLab(seed: 6);
        var o = new TcpSocketOptions { SendBufferSize = 64 << 10 };
        var (c, s, _) = lab.Connect(client: o);
        lab.AtoB.Filter = _ => false;
        var big = new byte[60 << 10];
        Assert.Equal(big.Length, c.SendReferenced(big, copy: false));
        // 4 KiB free, less than the 10 KiB threshold: a 20 KiB send waits rather than lend a 4 KiB sliver.
        Assert.Equal(0, c.SendReferenced(new byte[20 << 10], copy: false));
    }
}

/// <summary>The completion log's coalescing, as the kernel's error queue does it.</summary>
public class ZeroCopyLogTests
{
    [Fact]
    public void Consecutive_completions_with_one_code_merge_and_a_change_of_code_starts_a_range()
    {
        var log = new ZeroCopyLog();
        log.Complete(0, false);
        log.Complete(1, false);
        log.Complete(2, true);
        log.Complete(3, true);
        log.Complete(4, false);
        Assert.True(log.TryTake(out var a));
        Assert.True(log.TryTake(out var b));
        Assert.True(log.TryTake(out var c));
        Assert.False(log.TryTake(out _));
        Assert.Equal(new ZeroCopyCompletion(0, 1, false), a);
        Assert.Equal(new ZeroCopyCompletion(2, 3, true), b);
        Assert.Equal(new ZeroCopyCompletion(4, 4, false), c);
    }

    [Fact]
    public void Numbers_wrap_at_2_to_the_32_inside_one_range()
    {
        var log = new ZeroCopyLog();
        log.Complete(uint.MaxValue, false);
        log.Complete(0, false);
        Assert.True(log.TryTake(out var r));
        Assert.Equal(new ZeroCopyCompletion(uint.MaxValue, 0, false), r);
        Assert.Equal(2, r.Count);
    }

    [Fact]
    public void An_unread_log_stays_bounded_when_codes_alternate()
    {
        var log = new ZeroCopyLog();
        for (uint i = 0; i < 100_000; i++) log.Complete(i, i % 2 == 0);
        int entries = 0;
        long covered = 0;
        while (log.TryTake(out var r)) { entries++; covered += r.Count; }
        Assert.True(entries <= ZeroCopyLog.MaxEntries);
        Assert.Equal(100_000, covered);
    }
}

/// <summary>The send queue against a plain list of bytes: copied and lent pieces, acknowledgments, reads anywhere.</summary>
public class SendQueueTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_writes_references_reads_and_acknowledgments_match_a_model(int seed)
    {
        var r = new Random(seed);
        var q = new SendQueue(1 << 16);
        var model = new List<byte>();
        uint nextId = 0, completedTo = 0;
        for (int step = 0; step < 20_000; step++)
        {
            int op = r.Next(4);
            if (op == 0)
            {
                var data = TcpLab.RandomBytes(r.Next(1, 20_000), r.Next());
                int n = q.Write(data);
                Assert.Equal(Math.Min(data.Length, q.Free + n), n);
                model.AddRange(data.Take(n));
                if (n > 0 && r.Next(2) == 0) q.MarkSend(nextId++, true);
            }
            else if (op == 1)
            {
                var data = TcpLab.RandomBytes(r.Next(1, 20_000), r.Next());
                int n = q.Reference(data, null);
                model.AddRange(data.Take(n));
                if (n > 0) q.MarkSend(nextId++, false);
            }
            else if (op == 2 && model.Count > 0)
            {
                int n = r.Next(0, model.Count + 1);
                q.Consume(n);
                model.RemoveRange(0, n);
            }
            else if (model.Count > 0)
            {
                int at = r.Next(model.Count), len = r.Next(0, model.Count - at + 1);
                var buf = new byte[len];
                q.Peek(at, buf);
                Assert.Equal(model.Skip(at).Take(len).ToArray(), buf);
            }
            Assert.Equal(model.Count, q.Count);
            while (q.Completions.TryTake(out var c)) { Assert.Equal(completedTo, c.First); completedTo = c.Last + 1; }
        }
        q.DropAll();
        while (q.Completions.TryTake(out var c)) { Assert.Equal(completedTo, c.First); completedTo = c.Last + 1; }
        Assert.Equal(nextId, completedTo);
    }

    [Fact]
    public void A_copied_stream_past_4_GiB_reads_back_the_right_bytes()
    {
        // Copied writes merge into one run while the queue never empties; the run must shrink
        // as it is acknowledged (a run that only grew overflowed its length at 2 GiB).
        var q = new SendQueue(1 << 20);
        var chunk = TcpLab.RandomBytes(64 << 10, 1);
        var peek = new byte[1000];
        long written = 0;
        for (int i = 0; i < 2; i++) { Assert.Equal(chunk.Length, q.Write(chunk)); written += chunk.Length; }
        while (written < (5L << 30))
        {
            Assert.Equal(chunk.Length, q.Write(chunk));
            written += chunk.Length;
            q.Consume(chunk.Length);
            q.Peek(chunk.Length - 500, peek);
            Assert.True(peek.AsSpan(0, 500).SequenceEqual(chunk.AsSpan(chunk.Length - 500)));
            Assert.True(peek.AsSpan(500).SequenceEqual(chunk.AsSpan(0, 500)));
        }
    }
}
