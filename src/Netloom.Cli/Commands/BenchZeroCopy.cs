using System.Diagnostics;
using System.Globalization;
using Netloom.Rings;
using Netloom.Sockets;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Cli.Commands;

/// <summary>
/// `netloom bench zerocopy`: the sending side's CPU time per byte, 64 KiB writes, zero-copy
/// sends against copying ones, between two user-level stacks in two processes over shm (the
/// receiver is `bench tcp-peer`, discarding in place); and, for reference, the kernel's
/// MSG_ZEROCOPY against plain send over a veth pair between two namespaces (root only).
/// Three ways of sending: copying (<c>Send</c>), lent memory (<c>SendReferenced</c>, one copy,
/// into the frame) and loan buffers (<c>SendLoan</c>: the shm port's own buffers, filled once
/// by the application; the frame is the buffer, no copy at all). The ratio's zero-copy side is
/// the loan-buffer sender; the lent-memory figures stay beside it.
/// Both ends declare the checksum capability on the shm port, so TCP checksums are neither
/// computed nor verified in the headline rounds (copy and loan alike); the copy and loan rounds
/// are repeated with the sender computing full checksums (<c>UseChecksumOffload</c> off: every
/// data frame carries a full checksum and the peer verifies it), reported as <c>full_*</c>.
/// The sender does not spin: when it can neither send nor receive it sleeps on the port until
/// an ACK arrives, so its CPU time is the work of sending, not a busy core.
/// </summary>
internal static class BenchZeroCopy
{
    private static readonly Ipv4Address Client = Ipv4Address.Parse("10.99.0.1"), Server = Ipv4Address.Parse("10.99.0.2");
    private const ushort DiscardPort = 5001;
    private const int Write = 64 << 10;

    public static List<(string Key, object Value)> Run(double seconds, int mtu)
    {
        var figures = new List<(string, object)>();
        string spec = $"shm:zcbench{Environment.ProcessId}";
        using var port = ShmPort.Open(PortSpec.Parse(spec), new PortOptions { RingSize = 128, BufferSize = 65536, LoanBuffers = 128, ChecksumOffload = true });
        using var child = SelfProcess.Start(["bench", "tcp-peer", "--port", spec, "--mtu", mtu.ToString(CultureInfo.InvariantCulture),
            // The peer outlives every round: 4 rounds of each way, a connection and half a second of warm-up each.
            "--duration", (4 * Enum.GetValues<Way>().Length * (seconds + 2) + 30).ToString(CultureInfo.InvariantCulture)]);
        var sw = Stopwatch.StartNew();
        while (!port.Connected && sw.ElapsedMilliseconds < 15_000 && !child.HasExited) Thread.Sleep(5);
        if (!port.Connected) throw new InvalidOperationException($"the peer stack never attached: {child.StandardError.ReadToEnd()}");
        var o = new StackOptions
        {
            Mac = new MacAddress(2, 0, 0, 0, 0x63, 1), Address = Client, Mtu = mtu,
            Tcp = new TcpSocketOptions { SendBufferSize = 4 << 20, ReceiveBufferSize = 1 << 20 },
        };
        var device = new PortDevice(port, mtu);
        var stack = new Interface(o, device);
        var clock = new MonotonicClock(Instant.FromSeconds(1));
        stack.Poll(clock.Now);

        // Rounds in ABCDE EDCBA order (copy, lent, loan, full copy, full loan, then back), medians of each way.
        int ways = Enum.GetValues<Way>().Length;
        var rounds = Enumerable.Range(0, ways).Select(_ => new List<Round>()).ToArray();
        for (int round = 0; round < 4; round++)
            for (int k = 0; k < ways; k++)
            {
                var way = (Way)(round % 2 == 0 ? k : ways - 1 - k);
                stack.UseChecksumOffload = way is not (Way.FullCopy or Way.FullLoan);
                rounds[(int)way].Add(Send(stack, clock, port, seconds, way));
            }
        stack.UseChecksumOffload = true;
        var copy = rounds[(int)Way.Copy];
        var lent = rounds[(int)Way.Lent];
        var zc = rounds[(int)Way.Loan];
        var fc = Median(rounds[(int)Way.FullCopy]);
        var fz = Median(rounds[(int)Way.FullLoan]);
        bool offload = port.ChecksumOffload;
        port.Dispose();
        if (!child.WaitForExit(10_000)) child.Kill();

        var c = Median(copy);
        var z = Median(zc);
        var l = Median(lent);
        figures.Add(("copy_gbps", Math.Round(c.Gbps, 2)));
        figures.Add(("zerocopy_gbps", Math.Round(z.Gbps, 2)));
        figures.Add(("copy_cpu_s_per_gb", Math.Round(c.CpuPerGb, 4)));
        figures.Add(("zerocopy_cpu_s_per_gb", Math.Round(z.CpuPerGb, 4)));
        figures.Add(("cpu_per_byte_ratio", Math.Round(c.CpuPerGb / z.CpuPerGb, 2)));
        figures.Add(("throughput_ratio", Math.Round(z.Gbps / c.Gbps, 2)));
        figures.Add(("zerocopy_copied_sends", (double)z.Copied));
        figures.Add(("zerocopy_completions", (double)z.Completions));
        figures.Add(("zerocopy_sends", (double)z.Sends));
        figures.Add(("zerocopy_loan_frames", (double)z.LoanFrames));
        figures.Add(("zerocopy_loan_frames_copied", (double)z.LoanCopied));
        figures.Add(("zerocopy_write_bytes", (double)z.WriteBytes));
        figures.Add(("lent_gbps", Math.Round(l.Gbps, 2)));
        figures.Add(("lent_cpu_s_per_gb", Math.Round(l.CpuPerGb, 4)));
        figures.Add(("lent_cpu_per_byte_ratio", Math.Round(c.CpuPerGb / l.CpuPerGb, 2)));
        // The checksum capability: 1 when both ends declared it (the rounds above skip the checksums).
        figures.Add(("checksum_offload", offload ? 1.0 : 0.0));
        figures.Add(("checksums_left_out", (double)(c.ChecksumsLeftOut + z.ChecksumsLeftOut)));
        figures.Add(("full_copy_gbps", Math.Round(fc.Gbps, 2)));
        figures.Add(("full_zerocopy_gbps", Math.Round(fz.Gbps, 2)));
        figures.Add(("full_copy_cpu_s_per_gb", Math.Round(fc.CpuPerGb, 4)));
        figures.Add(("full_zerocopy_cpu_s_per_gb", Math.Round(fz.CpuPerGb, 4)));
        figures.Add(("full_cpu_per_byte_ratio", Math.Round(fc.CpuPerGb / fz.CpuPerGb, 2)));
        figures.Add(("full_throughput_ratio", Math.Round(fz.Gbps / fc.Gbps, 2)));
        figures.Add(("full_checksums_left_out", (double)(fc.ChecksumsLeftOut + fz.ChecksumsLeftOut)));
        figures.AddRange(BenchZeroCopyKernel.Run(seconds));
        figures.Add(("write_bytes", (double)Write));
        figures.Add(("mtu", (double)mtu));
        figures.Add(("cores", (double)Environment.ProcessorCount));
        return figures;
    }

    private enum Way { Copy, Lent, Loan, FullCopy, FullLoan }

    private readonly record struct Round(double Gbps, double CpuPerGb, long Sends, long Completions, long Copied, long LoanFrames = 0, long LoanCopied = 0, int WriteBytes = Write, long ChecksumsLeftOut = 0);

    private static Round Median(List<Round> rounds)
    {
        var byCpu = rounds.OrderBy(r => r.CpuPerGb).ToList();
        var byRate = rounds.OrderBy(r => r.Gbps).ToList();
        var m = byCpu[byCpu.Count / 2];
        return m with { Gbps = byRate[byRate.Count / 2].Gbps };
    }

    /// <summary>
    /// One connection for <paramref name="seconds"/>: 64 KiB writes as fast as the windows allow,
    /// copied into the send buffer or lent from a set of buffers reused as their sends complete.
    /// </summary>
    private static Round Send(Interface stack, MonotonicClock clock, ShmPort port, double seconds, Way way)
    {
        bool zeroCopy = way == Way.Lent;
        bool loan = way is Way.Loan or Way.FullLoan;
        var s = stack.Connect(Server, DiscardPort);
        var connectBy = Stopwatch.GetTimestamp() + 10 * Stopwatch.Frequency;
        while (s.State == TcpState.SynSent && Stopwatch.GetTimestamp() < connectBy) { stack.Poll(clock.Now); port.WaitRx(Duration.FromMilliseconds(1)); }
        if (s.State != TcpState.Established) throw new InvalidOperationException($"bench connection: {s.State} {s.Error}");
        // 2x the send buffer in 64 KiB buffers, so a buffer is always free while the queue is full.
        int count = 2 * (4 << 20) / Write;
        var buffers = new byte[count][];
        for (int i = 0; i < count; i++) { buffers[i] = new byte[Write]; new Random(i).NextBytes(buffers[i]); }
        var inUse = new bool[count];
        // Loan buffers: rented and filled once per round (the application writes its data into
        // them, as a netmap program does), then each re-sent as its completion comes back.
        var loans = new List<uint>();
        int loanBytes = 0;
        if (loan)
        {
            loanBytes = s.LoanCapacity;
            if (loanBytes == 0) throw new InvalidOperationException("the shm port offers no loan buffers");
            while (s.TryRentLoan(out uint b)) { loans.Add(b); new Random(loans.Count).NextBytes(s.LoanPayload(b)); }
            count = loans.Count;
            inUse = new bool[count];
        }
        long loanFrames0 = stack.LoanFramesOut, loanCopied0 = stack.LoanFramesCopied, leftOut0 = stack.ChecksumsLeftOut;
        var ids = new Queue<(uint Id, int Buffer)>();
        int nextBuffer = 0, partial = 0;
        long sends = 0, completions = 0, copied = 0, written = 0;
        var proc = Process.GetCurrentProcess();
        long warmEnd = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 2, start = 0, end = 0, startAcked = 0;
        TimeSpan cpu0 = default;
        while (true)
        {
            int moved = stack.Poll(clock.Now);
            bool progress = moved > 0;
            if (loan)
            {
                while (s.TryTakeZeroCopyCompletion(out var done))
                {
                    completions++;
                    if (done.Copied) copied += done.Count;
                    while (ids.Count > 0 && (int)(ids.Peek().Id - done.First) >= 0 && (int)(ids.Peek().Id - done.Last) <= 0) inUse[ids.Dequeue().Buffer] = false;
                }
                while (!inUse[nextBuffer])
                {
                    if (s.SendLoan(loans[nextBuffer], loanBytes) == 0) break;
                    written += loanBytes;
                    progress = true;
                    ids.Enqueue((s.EndZeroCopySend(copied: false), nextBuffer));
                    inUse[nextBuffer] = true;
                    sends++;
                    nextBuffer = (nextBuffer + 1) % count;
                }
            }
            else if (zeroCopy)
            {
                while (s.TryTakeZeroCopyCompletion(out var done))
                {
                    completions++;
                    if (done.Copied) copied += done.Count;
                    while (ids.Count > 0 && (int)(ids.Peek().Id - done.First) >= 0 && (int)(ids.Peek().Id - done.Last) <= 0) inUse[ids.Dequeue().Buffer] = false;
                }
                while (!inUse[nextBuffer])
                {
                    int n = s.SendReferenced(buffers[nextBuffer].AsMemory(partial), copy: false);
                    if (n == 0) break;
                    written += n;
                    partial += n;
                    progress = true;
                    if (partial < Write) continue;
                    ids.Enqueue((s.EndZeroCopySend(copied: false), nextBuffer));
                    inUse[nextBuffer] = true;
                    sends++;
                    partial = 0;
                    nextBuffer = (nextBuffer + 1) % count;
                }
            }
            else
            {
                int n;
                while ((n = s.Send(buffers[nextBuffer].AsSpan(partial))) > 0)
                {
                    written += n;
                    partial += n;
                    progress = true;
                    if (partial == Write) { partial = 0; sends++; nextBuffer = (nextBuffer + 1) % count; }
                }
            }
            long t = Stopwatch.GetTimestamp();
            if (start == 0 && t >= warmEnd)
            {
                proc.Refresh();
                cpu0 = proc.TotalProcessorTime;
                start = t;
                startAcked = written - s.SendQueued;
                end = t + (long)(seconds * Stopwatch.Frequency);
            }
            if (start != 0 && t >= end) break;
            if (!progress) port.WaitRx(Duration.FromMilliseconds(1)); // nothing to do until an ACK comes
        }
        proc.Refresh();
        double cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds;
        long acked = written - s.SendQueued - startAcked;
        double wall = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
        long loanFrames = stack.LoanFramesOut - loanFrames0, loanCopied = stack.LoanFramesCopied - loanCopied0, leftOut = stack.ChecksumsLeftOut - leftOut0;
        s.Abort();
        stack.Poll(clock.Now);
        // An aborted connection completes its sends once the port has handed their buffers back.
        var drainBy = Stopwatch.GetTimestamp() + 5 * Stopwatch.Frequency;
        while (s.ZeroCopyOutstanding > 0 && Stopwatch.GetTimestamp() < drainBy) { stack.Poll(clock.Now); port.WaitRx(Duration.FromMilliseconds(1)); }
        if (s.ZeroCopyOutstanding > 0) throw new InvalidOperationException($"{s.ZeroCopyOutstanding} sends never completed after the abort");
        foreach (uint b in loans) s.ReturnLoan(b);
        return new Round(acked * 8 / wall / 1e9, cpu / (acked / 1e9), sends, completions, copied, loanFrames, loanCopied, loan ? loanBytes : Write, leftOut);
    }
}
