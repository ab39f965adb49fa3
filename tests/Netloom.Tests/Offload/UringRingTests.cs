using System.Net;
using System.Net.Sockets;
using Netloom.Interop;
using Netloom.Offload;
using static Netloom.Interop.IoUring;

namespace Netloom.Tests.Offload;

/// <summary>The raw ring against the running kernel's io_uring.</summary>
public unsafe class UringRingTests
{
    private static List<Cqe> Reap(UringRing ring, int count)
    {
        var got = new List<Cqe>();
        while (got.Count < count)
        {
            if (!ring.TryPeek(out var c)) { ring.Submit(1); continue; }
            got.Add(c);
            ring.Advance();
        }
        return got;
    }

    /// <summary>Two connected loopback sockets: the client end and the server end.</summary>
    private static (Socket Client, Socket Server) ConnectedPair()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        return (client, listener.Accept());
    }

    [Fact]
    public void A_hundred_nops_complete_with_their_user_data_in_one_submit()
    {
        using var ring = new UringRing(128);
        for (ulong i = 0; i < 100; i++)
        {
            Assert.True(ring.TryGetSqe(out var sqe));
            UringRing.PrepNop(sqe);
            sqe->UserData = 1000 + i;
        }
        Assert.Equal(100, ring.Submit(100));
        var cqes = Reap(ring, 100);
        Assert.All(cqes, c => Assert.Equal(0, c.Res));
        Assert.Equal(Enumerable.Range(1000, 100).Select(i => (ulong)i).ToHashSet(), cqes.Select(c => c.UserData).ToHashSet());
    }

    [Fact]
    public void With_sqpoll_a_kernel_thread_takes_submissions_in_rounds_separated_by_idle_time()
    {
        using var ring = new UringRing(64, SetupSqPoll, 0, sqThreadIdleMs: 10);
        Assert.True(ring.SqPoll);
        for (int round = 0; round < 5; round++)
        {
            for (ulong i = 0; i < 10; i++)
            {
                Assert.True(ring.TryGetSqe(out var sqe));
                sqe->Opcode = OpNop;
                sqe->UserData = (ulong)round * 100 + i;
            }
            ring.Submit();
            var cqes = Reap(ring, 10);
            Assert.Equal(Enumerable.Range(round * 100, 10).Select(i => (ulong)i).ToHashSet(), cqes.Select(c => c.UserData).ToHashSet());
            Thread.Sleep(30); // the poller goes idle and must be woken for the next round
        }
    }

    [Fact]
    public void A_full_submission_queue_says_so()
    {
        using var ring = new UringRing(8);
        int taken = 0;
        while (ring.TryGetSqe(out var sqe)) { sqe->Opcode = OpNop; taken++; }
        Assert.Equal((int)ring.SqEntries, taken);
        ring.Submit(0);
        Reap(ring, taken);
        Assert.True(ring.TryGetSqe(out _)); // space again after the kernel took them
    }

    [Fact]
    public void A_timeout_fires_and_a_cancelled_one_reports_cancellation()
    {
        using var ring = new UringRing(8);
        var shortTs = new KernelTimespec { Nanoseconds = 5_000_000 };
        var longTs = new KernelTimespec { Seconds = 30 };
        Assert.True(ring.TryGetSqe(out var t1));
        UringRing.PrepTimeout(t1, &shortTs, 0, 0); t1->UserData = 1;
        Assert.True(ring.TryGetSqe(out var t2));
        UringRing.PrepTimeout(t2, &longTs, 0, 0); t2->UserData = 2;
        ring.Submit();
        Assert.True(ring.TryGetSqe(out var cancel));
        UringRing.PrepCancel(cancel, 2, 0); cancel->UserData = 3;
        ring.Submit();
        var byData = Reap(ring, 3).ToDictionary(c => c.UserData, c => c.Res);
        Assert.Equal(-Errno.ETIME, byData[1]);
        Assert.Equal(-Errno.ECANCELED, byData[2]);
        Assert.Equal(0, byData[3]);
    }

    [Fact]
    public void A_coalescing_wait_collects_a_batch_and_returns_with_less_once_its_minimum_is_over()
    {
        using var ring = new UringRing(16);
        Assert.True(ring.SupportsMinWait, "this kernel's io_uring has no minimum wait (6.12 and later)");
        // Three receives on three loopback connections whose peers write 2, 4 and 6 ms apart, and a
        // wait for a batch of three with a long minimum: it returns when the third has come, with
        // all three (a plain wait returns at the first). (Timeouts would not do: a fired timeout
        // ends any wait.) A minimum of 200 ms, so only a stall that long could end it earlier.
        var pairs = Enumerable.Range(0, 3).Select(_ => ConnectedPair()).ToArray();
        var buffer = new byte[3 * 64];
        try
        {
            fixed (byte* b = buffer)
            {
                for (int i = 0; i < 3; i++)
                {
                    Assert.True(ring.TryGetSqe(out var recv));
                    UringRing.PrepRecv(recv, (int)pairs[i].Server.SafeHandle.DangerousGetHandle(), b + i * 64, 64, 0);
                    recv->UserData = (ulong)i;
                }
                var writer = new Thread(() =>
                {
                    for (int i = 0; i < 3; i++) { Thread.Sleep(2); pairs[i].Client.Send(new byte[] { (byte)i }); }
                });
                ring.Submit(); // alone, so the wait's result below is the wait's own (an entry that submits reports the count)
                writer.Start();
                Assert.Equal(0, WaitPastSignals(ring, 5_000_000_000, 200_000, 3));
                Assert.Equal(3u, ring.CqReady);
                writer.Join();
            }
            Assert.All(Reap(ring, 3), c => Assert.Equal(1, c.Res));
        }
        finally
        {
            foreach (var (client, server) in pairs) { client.Dispose(); server.Dispose(); }
        }
        // Two NOPs complete as they are submitted; a batch of eight never comes, so the wait
        // returns once its minimum (2 ms) is over, with the two: not at the overall timeout (-ETIME).
        for (int i = 0; i < 2; i++)
        {
            Assert.True(ring.TryGetSqe(out var nop));
            UringRing.PrepNop(nop);
        }
        ring.Submit();
        Assert.Equal(0, WaitPastSignals(ring, -1, 2_000, 8));
        Assert.Equal(2u, ring.CqReady);
        Reap(ring, 2);
        // Nothing to come: the wait ends at its overall timeout.
        Assert.Equal(-Errno.ETIME, WaitPastSignals(ring, 50_000_000, 2_000, 8));
    }

    /// <summary>A coalescing wait, again when a signal (the runtime sends some) cut it short.</summary>
    private static int WaitPastSignals(UringRing ring, long timeoutNs, uint coalesceUs, uint batch)
    {
        int r;
        while ((r = ring.EnterAndWait(0, timeoutNs, null, coalesceUs, batch)) == -Errno.EINTR) { }
        return r;
    }

    [Fact]
    public void The_probe_lists_the_operations_the_engine_needs()
    {
        using var ring = new UringRing(4);
        int size = sizeof(ProbeHeader) + 256 * sizeof(ProbeOp);
        byte* buf = stackalloc byte[size];
        new Span<byte>(buf, size).Clear();
        Assert.Equal(0, IoUring.Register(ring.Fd, RegisterProbe, buf, 256));
        var ops = (ProbeOp*)(buf + sizeof(ProbeHeader));
        int last = ((ProbeHeader*)buf)->LastOp;
        bool Supported(byte op) => op <= last && (ops[op].Flags & ProbeOpSupported) != 0;
        Assert.True(Supported(OpNop) && Supported(OpAccept) && Supported(OpRecv) && Supported(OpSend) && Supported(OpAsyncCancel));
    }

    [Fact]
    public void Multishot_accept_then_recv_and_send_on_loopback()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        int lfd = (int)listener.SafeHandle.DangerousGetHandle();
        using var ring = new UringRing(32);
        Assert.True(ring.TryGetSqe(out var acc));
        acc->Opcode = OpAccept; acc->Fd = lfd; acc->IoPrio = AcceptMultishot; acc->UserData = 7;
        ring.Submit();

        var clients = Enumerable.Range(0, 3).Select(_ => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)).ToList();
        foreach (var c in clients) c.Connect(listener.LocalEndPoint!);
        var accepted = Reap(ring, 3);
        Assert.All(accepted, c => { Assert.Equal(7ul, c.UserData); Assert.True(c.Res >= 0); Assert.True((c.Flags & CqeFMore) != 0); });

        int fd = accepted[0].Res;
        clients[0].Send("hello"u8);
        var buf = new byte[64];
        fixed (byte* b = buf)
        {
            Assert.True(ring.TryGetSqe(out var recv));
            recv->Opcode = OpRecv; recv->Fd = fd; recv->Addr = (ulong)b; recv->Len = 64; recv->UserData = 8;
            ring.Submit();
            var r = Reap(ring, 1)[0];
            Assert.Equal((8ul, 5), (r.UserData, r.Res));
        }
        Assert.Equal("hello"u8.ToArray(), buf[..5]);
        fixed (byte* w = "world"u8)
        {
            Assert.True(ring.TryGetSqe(out var send));
            send->Opcode = OpSend; send->Fd = fd; send->Addr = (ulong)w; send->Len = 5; send->UserData = 9;
            ring.Submit();
            Assert.Equal(5, Reap(ring, 1)[0].Res);
        }
        var got = new byte[5];
        clients[0].Receive(got);
        Assert.Equal("world"u8.ToArray(), got);
        foreach (var a in accepted) Libc.Close(a.Res);
        foreach (var c in clients) c.Dispose();
    }

    [Fact]
    public void With_deferred_task_work_a_busy_poller_sees_pending_completions_in_the_ring_flags_without_entering()
    {
        var (client, server) = ConnectedPair();
        using (client) using (server)
        using (var ring = new UringRing(8, SetupSingleIssuer | SetupDeferTaskrun | SetupTaskrunFlag))
        {
            var buf = new byte[16];
            fixed (byte* b = buf)
            {
                Assert.True(ring.TryGetSqe(out var recv));
                recv->Opcode = OpRecv; recv->Fd = (int)server.SafeHandle.DangerousGetHandle(); recv->Addr = (ulong)b; recv->Len = 16; recv->UserData = 5;
                ring.Submit(); // nothing to read yet: the recv waits for data
                Assert.False(ring.TaskWorkPending);
                client.Send("ping"u8);
                // The data's arrival queues the recv's completion as task work for this thread and
                // raises IORING_SQ_TASKRUN; the completion is posted only when the thread enters.
                Assert.True(SpinWait.SpinUntil(() => ring.TaskWorkPending, 5000));
                Assert.Equal(0u, ring.CqReady);
                ring.Submit(getEvents: true);
                Assert.False(ring.TaskWorkPending);
                var r = Reap(ring, 1)[0];
                Assert.Equal((5ul, 4), (r.UserData, r.Res));
            }
            Assert.Equal("ping"u8.ToArray(), buf[..4]);
        }
    }

    [Fact]
    public void A_send_bundle_drains_the_buffer_ring_in_order_in_one_operation()
    {
        var (client, server) = ConnectedPair();
        using (client) using (server)
        using (var ring = new UringRing(8))
        {
            if ((ring.Features & FeatRecvSendBundle) == 0) { Assert.Fail("this kernel has no send bundles (IORING_FEAT_RECVSEND_BUNDLE, 6.10+)"); }
            using var bundle = new BufferRing(ring, groupId: 9, entries: 4);
            var parts = new[] { "first "u8.ToArray(), "second "u8.ToArray(), "third"u8.ToArray() };
            var handles = parts.Select(p => System.Runtime.InteropServices.GCHandle.Alloc(p, System.Runtime.InteropServices.GCHandleType.Pinned)).ToList();
            try
            {
                for (int i = 0; i < parts.Length; i++) bundle.Add((byte*)handles[i].AddrOfPinnedObject(), parts[i].Length, (ushort)(10 + i));
                bundle.Publish();
                Assert.True(ring.TryGetSqe(out var send));
                UringRing.PrepSendBundle(send, (int)server.SafeHandle.DangerousGetHandle(), 9, 0); send->UserData = 3;
                ring.Submit();
                var done = Reap(ring, 1)[0];
                // One completion: every byte of the three buffers, naming the first buffer.
                Assert.Equal((3ul, 18), (done.UserData, done.Res));
                Assert.True((done.Flags & CqeFBuffer) != 0);
                Assert.Equal(10, (int)(done.Flags >> CqeBufferShift));
                var got = new byte[18];
                client.ReceiveTimeout = 5000;
                for (int n = 0; n < got.Length;) n += client.Receive(got, n, got.Length - n, SocketFlags.None);
                Assert.Equal("first second third", System.Text.Encoding.ASCII.GetString(got));

                // The ring is empty now: another bundle send finds no buffer.
                Assert.True(ring.TryGetSqe(out send));
                UringRing.PrepSendBundle(send, (int)server.SafeHandle.DangerousGetHandle(), 9, 0); send->UserData = 4;
                ring.Submit();
                Assert.Equal(-Errno.ENOBUFS, Reap(ring, 1)[0].Res);
            }
            finally { foreach (var h in handles) h.Free(); }
        }
    }

    /// <summary>The SQE builders (liburing's io_uring_prep_* names) drive the kernel in the tests here; this one checks their raw fields.</summary>
    [Fact]
    public void Sqe_builders_fill_the_fields_their_operation_reads()
    {
        Sqe s = default;
        UringRing.PrepMultishotAccept(&s, 5, SocketCalls.SOCK_CLOEXEC);
        Assert.Equal((OpAccept, 5, AcceptMultishot, (uint)SocketCalls.SOCK_CLOEXEC, 0u), (s.Opcode, s.Fd, s.IoPrio, s.OpFlags, s.FileIndex));
        s = default;
        UringRing.PrepMultishotAcceptDirect(&s, 5);
        Assert.Equal((OpAccept, AcceptMultishot, 0u, FileIndexAlloc), (s.Opcode, s.IoPrio, s.OpFlags, s.FileIndex));
        s = default;
        UringRing.PrepRecvMultishot(&s, 7, 3);
        Assert.Equal((OpRecv, 7, RecvMultishot, SqeBufferSelect, (ushort)3, 0ul, 0u), (s.Opcode, s.Fd, s.IoPrio, s.Flags, s.BufIndex, s.Addr, s.Len));
        s = default;
        UringRing.PrepSendBundle(&s, 7, 4, SocketCalls.MSG_NOSIGNAL);
        Assert.Equal((OpSend, RecvSendBundle, SqeBufferSelect, (ushort)4, (uint)SocketCalls.MSG_NOSIGNAL), (s.Opcode, s.IoPrio, s.Flags, s.BufIndex, s.OpFlags));
        s = default;
        UringRing.PrepSendZc(&s, 7, (void*)0x1000, 99, SocketCalls.MSG_NOSIGNAL);
        UringRing.FixedFile(&s);
        Assert.Equal((OpSendZc, 7, 0x1000ul, 99u, (uint)SocketCalls.MSG_NOSIGNAL, SqeFixedFile), (s.Opcode, s.Fd, s.Addr, s.Len, s.OpFlags, s.Flags));
        s = default;
        UringRing.PrepRead(&s, 9, (void*)0x2000, 8, 0);
        Assert.Equal((OpRead, 9, 0x2000ul, 8u, 0ul), (s.Opcode, s.Fd, s.Addr, s.Len, s.Off));
        s = default;
        UringRing.PrepCloseDirect(&s, 0);
        Assert.Equal((OpClose, 1u), (s.Opcode, s.FileIndex)); // file_index is the slot + 1: 0 means a plain descriptor
    }

    [Fact]
    public void Accept_into_registered_files_then_recv_send_shutdown_and_close_by_slot()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        using var ring = new UringRing(32);
        Assert.True(ring.RegisterSparseFiles(8));
        Assert.True(ring.TryGetSqe(out var acc));
        UringRing.PrepMultishotAcceptDirect(acc, (int)listener.SafeHandle.DangerousGetHandle()); acc->UserData = 1;
        ring.Submit();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        var a = Reap(ring, 1)[0];
        Assert.InRange(a.Res, 0, 7); // a registered slot, not a descriptor
        int slot = a.Res;
        client.Send("ping"u8);
        var buf = new byte[16];
        fixed (byte* b = buf)
        {
            Assert.True(ring.TryGetSqe(out var recv));
            UringRing.PrepRecv(recv, slot, b, 16, 0); UringRing.FixedFile(recv); recv->UserData = 2;
            ring.Submit();
            Assert.Equal(4, Reap(ring, 1)[0].Res);
        }
        fixed (byte* w = "pong"u8)
        {
            Assert.True(ring.TryGetSqe(out var send));
            UringRing.PrepSend(send, slot, w, 4, 0); UringRing.FixedFile(send); send->UserData = 3;
            ring.Submit();
            Assert.Equal(4, Reap(ring, 1)[0].Res);
        }
        var got = new byte[4];
        Assert.Equal(4, client.Receive(got));
        Assert.Equal("pong"u8.ToArray(), got);
        Assert.True(ring.TryGetSqe(out var shut));
        UringRing.PrepShutdown(shut, slot, SocketCalls.SHUT_RDWR); UringRing.FixedFile(shut); shut->UserData = 4;
        ring.Submit();
        Assert.Equal(0, Reap(ring, 1)[0].Res);
        Assert.Equal(0, client.Receive(got)); // the peer sees the end of the stream
        Assert.True(ring.TryGetSqe(out var close));
        UringRing.PrepCloseDirect(close, (uint)slot); close->UserData = 5;
        ring.Submit();
        Assert.Equal(0, Reap(ring, 1)[0].Res);
    }

    [Fact]
    public void Send_zc_completes_with_the_byte_count_then_a_notification()
    {
        var (client, server) = ConnectedPair();
        using var _c = client;
        using var _s = server;
        using var ring = new UringRing(16);
        Assert.True(ring.Supports(OpSendZc));
        var data = new byte[100_000];
        new Random(1).NextBytes(data);
        var all = new byte[data.Length];
        var reader = new Thread(() =>
        {
            int got = 0;
            while (got < all.Length) got += client.Receive(all, got, all.Length - got, SocketFlags.None);
        });
        reader.Start();
        fixed (byte* d = data)
        {
            Assert.True(ring.TryGetSqe(out var sqe));
            UringRing.PrepSendZc(sqe, (int)server.SafeHandle.DangerousGetHandle(), d, (uint)data.Length, 0); sqe->UserData = 77;
            ring.Submit();
            var cqes = Reap(ring, 2);
            Assert.All(cqes, c => Assert.Equal(77ul, c.UserData));
            Assert.Equal(data.Length, cqes[0].Res);
            Assert.True((cqes[0].Flags & CqeFMore) != 0, "the first completion announces a notification");
            Assert.True((cqes[1].Flags & CqeFNotif) != 0, "the second is the notification: the buffer is ours again");
        }
        reader.Join();
        Assert.Equal(data, all);
    }

    [Fact]
    public void Multishot_recv_fills_provided_buffers_until_the_peer_closes()
    {
        var (client, server) = ConnectedPair();
        using var _c = client;
        using var _s = server;
        int fd = (int)server.SafeHandle.DangerousGetHandle();
        using var ring = new UringRing(16);
        using var bufs = new ProvidedBuffers(ring, groupId: 1, count: 8, bufferSize: 64);
        Assert.True(ring.TryGetSqe(out var sqe));
        UringRing.PrepRecvMultishot(sqe, fd, 1); sqe->UserData = 42;
        ring.Submit();

        var received = new List<byte>();
        for (int i = 0; i < 20; i++)
        {
            client.Send(System.Text.Encoding.ASCII.GetBytes($"message {i:D2};"));
            var c = Reap(ring, 1)[0];
            Assert.Equal(42ul, c.UserData);
            Assert.True(c.Res > 0 && (c.Flags & CqeFBuffer) != 0 && (c.Flags & CqeFMore) != 0, $"res {c.Res} flags {c.Flags}");
            ushort id = (ushort)(c.Flags >> CqeBufferShift);
            received.AddRange(bufs.Data(id, c.Res).ToArray());
            bufs.Took(id);
            bufs.Recycle(id); // 20 messages through 8 buffers: only works if recycling works
        }
        Assert.Equal(string.Concat(Enumerable.Range(0, 20).Select(i => $"message {i:D2};")), System.Text.Encoding.ASCII.GetString(received.ToArray()));
        client.Shutdown(SocketShutdown.Send);
        var end = Reap(ring, 1)[0];
        Assert.Equal(0, end.Res);                     // end of stream
        Assert.Equal(0u, end.Flags & CqeFMore);       // and the multishot is over
    }

    [Fact]
    public void A_receive_gets_the_buffer_given_back_last_so_a_steady_load_touches_few_buffers()
    {
        var (client, server) = ConnectedPair();
        using var _c = client;
        using var _s = server;
        int fd = (int)server.SafeHandle.DangerousGetHandle();
        using var ring = new UringRing(16);
        using var bufs = new ProvidedBuffers(ring, groupId: 1, count: 1024, bufferSize: 64);
        Assert.Equal(ProvidedBuffers.MinPublished, bufs.InRingCount);
        Assert.True(ring.TryGetSqe(out var sqe));
        UringRing.PrepRecvMultishot(sqe, fd, 1); sqe->UserData = 7;
        ring.Submit();
        var used = new HashSet<ushort>();
        for (int i = 0; i < 600; i++)
        {
            client.Send(new byte[] { (byte)i });
            var c = Reap(ring, 1)[0];
            Assert.True(c.Res == 1 && (c.Flags & CqeFBuffer) != 0, $"res {c.Res} flags {c.Flags}");
            ushort id = (ushort)(c.Flags >> CqeBufferShift);
            Assert.Equal((byte)i, bufs.Data(id, c.Res)[0]);
            bufs.Took(id);
            bufs.Recycle(id);
            used.Add(id);
        }
        // A ring holding all 1,024 would have handed out 600 different buffers, one after another.
        Assert.True(used.Count <= ProvidedBuffers.MinPublished + 1, $"{used.Count} different buffers for 600 receives");
    }

    [Fact]
    public void A_receive_that_runs_the_ring_dry_is_armed_again_with_twice_the_buffers_and_loses_no_byte()
    {
        var (client, server) = ConnectedPair();
        using var _c = client;
        using var _s = server;
        int fd = (int)server.SafeHandle.DangerousGetHandle();
        using var ring = new UringRing(256);
        using var bufs = new ProvidedBuffers(ring, groupId: 1, count: 256, bufferSize: 64);
        var sent = new byte[100 * 64];
        new Random(5).NextBytes(sent);
        client.Send(sent);
        var received = new List<byte>();
        var held = new List<ushort>(); // the program reads nothing yet: every buffer stays taken
        int dry = 0;
        while (received.Count < sent.Length)
        {
            Assert.True(ring.TryGetSqe(out var sqe));
            UringRing.PrepRecvMultishot(sqe, fd, 1); sqe->UserData = 9;
            ring.Submit();
            while (true)
            {
                var c = Reap(ring, 1)[0];
                if (c.Res == -Errno.ENOBUFS) { dry++; Assert.True(bufs.RanDry(), "the ring has buffers again"); break; }
                Assert.True(c.Res > 0 && (c.Flags & CqeFBuffer) != 0, $"res {c.Res} flags {c.Flags}");
                ushort id = (ushort)(c.Flags >> CqeBufferShift);
                bufs.Took(id);
                received.AddRange(bufs.Data(id, c.Res).ToArray());
                held.Add(id);
                if (received.Count == sent.Length || (c.Flags & CqeFMore) == 0) break;
            }
        }
        Assert.Equal(sent, received.ToArray());
        Assert.Equal(1, dry);                               // 64 in the ring, then 128: the rest fit
        Assert.Equal(2 * ProvidedBuffers.MinPublished, bufs.Published);
        Assert.Equal(held.Count, held.Distinct().Count());  // no buffer filled twice while held
        foreach (var id in held) bufs.Recycle(id);
        var (inRing, spare) = (bufs.InRingCount, bufs.SpareCount);
        Assert.Equal(256, inRing + spare);
        foreach (var id in held) bufs.Recycle(id);          // given back twice (in the ring again, or spare): ignored
        bufs.Recycle(4000);                                 // names no buffer: ignored
        Assert.Equal((inRing, spare), (bufs.InRingCount, bufs.SpareCount));
    }
}

/// <summary>The io_uring engine with connections as IDuplexPipe (Kestrel's shape), on loopback.</summary>
public class UringPipeServerTests
{
    private static byte[] ReadAll(System.Net.Sockets.Socket s, int n)
    {
        var buf = new byte[n];
        int got = 0;
        s.ReceiveTimeout = 10_000;
        while (got < n)
        {
            int r = s.Receive(buf, got, n - got, SocketFlags.None);
            if (r == 0) break;
            got += r;
        }
        return buf[..got];
    }

    [Fact]
    public void An_echo_application_on_pipes_returns_every_byte_and_closes_when_the_client_does()
    {
        var handler = new PipeConnectionHandler(async pipe =>
        {
            while (true)
            {
                var r = await pipe.Input.ReadAsync();
                foreach (var seg in r.Buffer) await pipe.Output.WriteAsync(seg);
                pipe.Input.AdvanceTo(r.Buffer.End);
                if (r.IsCompleted) break;
            }
        });
        using var server = new UringServer(new IPEndPoint(IPAddress.Loopback, 0), handler, 1);
        server.Start();
        using var c = new System.Net.Sockets.Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        c.Connect(server.LocalEndPoint);
        var data = new byte[3 << 20];
        new Random(5).NextBytes(data);
        var sender = new Thread(() => { c.Send(data); c.Shutdown(SocketShutdown.Send); });
        sender.Start();
        var echoed = ReadAll(c, data.Length + 1); // one more than sent: the server must close after the echo
        sender.Join();
        Assert.Equal(data.Length, echoed.Length);
        Assert.True(data.AsSpan().SequenceEqual(echoed));
        Assert.Equal(0, handler.Faults);
    }

    [Fact]
    public void An_application_can_write_first_and_finish_the_connection_itself()
    {
        var handler = new PipeConnectionHandler(async pipe =>
        {
            await Task.Delay(50); // nothing came in: the write must wake the ring by itself
            await pipe.Output.WriteAsync("hello from the server\n"u8.ToArray());
            await pipe.Output.WriteAsync("bye\n"u8.ToArray());
        });
        using var server = new UringServer(new IPEndPoint(IPAddress.Loopback, 0), handler, 1);
        server.Start();
        using var c = new System.Net.Sockets.Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        c.Connect(server.LocalEndPoint);
        var got = ReadAll(c, 1000);
        Assert.Equal("hello from the server\nbye\n", System.Text.Encoding.ASCII.GetString(got));
    }

    [Fact]
    public void Stopping_accepts_refuses_new_connections_while_open_ones_go_on()
    {
        var handler = new PipeConnectionHandler(async pipe =>
        {
            while (true)
            {
                var r = await pipe.Input.ReadAsync();
                foreach (var seg in r.Buffer) await pipe.Output.WriteAsync(seg);
                pipe.Input.AdvanceTo(r.Buffer.End);
                if (r.IsCompleted) break;
            }
        });
        using var server = new UringServer(new IPEndPoint(IPAddress.Loopback, 0), handler, 2);
        server.Start();
        using var open = new System.Net.Sockets.Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        open.Connect(server.LocalEndPoint);
        open.Send("before\n"u8);
        Assert.Equal("before\n", System.Text.Encoding.ASCII.GetString(ReadAll(open, 7)));

        server.StopAccepting();

        using (var late = new System.Net.Sockets.Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            var refused = Assert.Throws<SocketException>(() => late.Connect(server.LocalEndPoint));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }
        open.Send("after\n"u8); // the connection accepted before still echoes
        Assert.Equal("after\n", System.Text.Encoding.ASCII.GetString(ReadAll(open, 6)));
        Assert.Null(server.Failure);
    }

    [Fact]
    public async Task A_pipe_connection_knows_the_kernel_endpoints_and_abort_closes_it()
    {
        var accepted = new System.Collections.Concurrent.BlockingCollection<PipeConnection>();
        var handler = new PipeConnectionHandler(accepted.Add, null, System.IO.Pipelines.PipeScheduler.ThreadPool);
        using var server = new UringServer(new IPEndPoint(IPAddress.Loopback, 0), handler, 1, new UringServerOptions { RegisteredFiles = false });
        server.Start();
        using var c = new System.Net.Sockets.Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        c.Connect(server.LocalEndPoint);
        Assert.True(accepted.TryTake(out var pc, 5000));
        Assert.Equal(c.LocalEndPoint, pc!.RemoteEndPoint);
        Assert.Equal(server.LocalEndPoint, pc.LocalEndPoint);
        await pc.Output.WriteAsync("flushed first"u8.ToArray());
        pc.Abort();
        await pc.Closed.WaitAsync(TimeSpan.FromSeconds(5)); // abort closes the connection
        Assert.Equal("flushed first", System.Text.Encoding.ASCII.GetString(ReadAll(c, 100))); // what was flushed, then the end
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Many_small_flushes_from_the_thread_pool_arrive_whole_and_in_order(bool registeredFiles)
    {
        // Thousands of separately flushed lines, interleaved with the client's input: with plain
        // descriptors they go out by direct sendmsg from the thread pool when the ring holds
        // nothing of the connection, and through the ring otherwise; in a registered file table
        // (no descriptor to send on) always through the ring. Either way every byte, in order.
        const int Lines = 3000;
        var handler = new PipeConnectionHandler(async pipe =>
        {
            var r = await pipe.Input.ReadAsync(); // the client's first bytes: then answer
            pipe.Input.AdvanceTo(r.Buffer.End);
            for (int i = 0; i < Lines; i++)
            {
                await pipe.Output.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"line {i}\n"));
                if (i % 7 == 0) await Task.Yield();
                // Now and then a pause long enough for the ring's send to finish, so the next flush
                // finds the ring holding nothing of the connection (the direct path) on a busy machine too.
                if (i % 500 == 499) await Task.Delay(5);
            }
        });
        using var server = new UringServer(new IPEndPoint(IPAddress.Loopback, 0), handler, 1, new UringServerOptions { RegisteredFiles = registeredFiles });
        server.Start();
        using var c = new System.Net.Sockets.Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        c.Connect(server.LocalEndPoint);
        c.Send("go\n"u8);
        var expected = string.Concat(Enumerable.Range(0, Lines).Select(i => $"line {i}\n"));
        var got = System.Text.Encoding.ASCII.GetString(ReadAll(c, expected.Length + 1)); // the app's end closes the connection
        Assert.Equal(expected, got);
        Assert.Equal(0, handler.Faults);
        if (registeredFiles) Assert.Equal(0, handler.DirectSends);
        else Assert.True(handler.DirectSends > 0, "no flush went out by a direct send");
    }
}
