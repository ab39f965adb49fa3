using System.Diagnostics;
using System.Runtime.InteropServices;
using Netloom.Interop.Tests.Support;
using Netloom.Rings;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Interop.Tests.Rings;

/// <summary>An AF_XDP port on one end of a veth pair; the kernel's stack is on the other end.</summary>
public class XdpPortTests
{
    private static string Cli => Path.Combine(AppContext.BaseDirectory, "Netloom.Cli.dll");

    /// <summary>Whether `ip link` shows an XDP program on the interface.</summary>
    private static bool HasXdpProgram(string ns, string dev) => Sh.Ok("ip", "-n", ns, "link", "show", "dev", dev).Contains("prog/xdp");

    /// <summary>Whether the interface's program is gone within two seconds of its last holder closing it.</summary>
    /// <remarks>The kernel detaches a BPF link when the last reference to its file goes. A process another
    /// test starts at that moment (the tests run in parallel) holds a copy of every descriptor from its
    /// fork until its exec closes the close-on-exec ones, the link among them; the program leaves then,
    /// not at our close. A program still there after two seconds has a real holder.</remarks>
    private static bool XdpProgramGone(string ns, string dev)
    {
        var end = DateTime.UtcNow.AddSeconds(2);
        while (HasXdpProgram(ns, dev))
        {
            if (DateTime.UtcNow > end) return false;
            Thread.Sleep(20);
        }
        return true;
    }

    [RootFact("ip", "ping", "socat")]
    public void Kernel_frames_arrive_and_our_frames_reach_a_kernel_socket()
    {
        using var net = new NetnsPair();
        using var port = (XdpPort)InNamespace.Run(net.NsA, () => Ports.Open($"xdp:{net.IfA}"));
        port.WaitMode = WaitMode.Block;
        Assert.Equal("native copy", port.Mode); // veth has native XDP and no zero-copy
        Assert.True(HasXdpProgram(net.NsA, net.IfA));
        string macA = Sh.Ok("ip", "netns", "exec", net.NsA, "cat", $"/sys/class/net/{net.IfA}/address").Trim();
        string macB = Sh.Ok("ip", "netns", "exec", net.NsB, "cat", $"/sys/class/net/{net.IfB}/address").Trim();

        // Kernel to us: B pings A's address; the XDP program takes the frames to our RX ring.
        // A's kernel never sees B's ARP request now (the program takes it), so B is told A's MAC.
        Sh.Ok("ip", "-n", net.NsB, "neigh", "replace", net.IpA, "lladdr", macA, "dev", net.IfB);
        using (new Background(null, "ip", "netns", "exec", net.NsB, "ping", "-c", "20", "-i", "0.2", net.IpA))
        {
            bool seen = false;
            var end = DateTime.UtcNow.AddSeconds(5);
            while (!seen && DateTime.UtcNow < end)
            {
                if (!port.WaitRx(Duration.FromMilliseconds(100))) continue;
                var rx = port.Rx;
                for (uint h = rx.Head; h != rx.Tail; h = rx.Next(h))
                {
                    var d = DecodedFrame.Decode(rx.Packet(h));
                    seen |= d.Has(FrameLayers.Icmp) && d.Icmp.Type == (byte)IcmpType.EchoRequest && d.Ipv4.Source.ToString() == net.IpB;
                }
                rx.Release(rx.Space);
                port.RxSync();
            }
            Assert.True(seen, "no echo request from the kernel arrived");
        }

        // Us to the kernel: a UDP datagram we build is delivered to socat listening in B.
        using var listener = new Background(null, "ip", "netns", "exec", net.NsB, "socat", "-u", $"UDP-RECV:7777,bind={net.IpB}", "STDOUT");
        Thread.Sleep(300);
        var frame = new byte[256];
        var payload = "hello from an AF_XDP ring\n"u8.ToArray();
        int len = FrameBuilder.Udp(frame, new EthernetRepr(MacAddress.Parse(macA), MacAddress.Parse(macB), EtherType.Ipv4),
            new Ipv4Repr(Ipv4Address.Parse(net.IpA), Ipv4Address.Parse(net.IpB), IpProtocol.Udp, 0) { Identification = 1 },
            new UdpRepr(40000, 7777, 0), payload);
        var tx = port.Tx;
        for (int i = 0; i < 3; i++)
        {
            frame.AsSpan(0, len).CopyTo(tx.Buffer(tx.Head));
            tx[tx.Head].Length = (ushort)len;
            tx.Release(1);
        }
        Assert.True(port.Flush(Duration.FromSeconds(2)));
        Assert.Equal(3, tx.Counters.Packets);
        var end2 = DateTime.UtcNow.AddSeconds(5);
        while (!listener.Log.Contains("hello from an AF_XDP ring") && DateTime.UtcNow < end2) { Thread.Sleep(50); port.TxSync(); }
        Assert.Contains("hello from an AF_XDP ring", listener.Log);

        port.Dispose();
        Assert.True(XdpProgramGone(net.NsA, net.IfA), "the XDP program outlived the port");
    }

    [RootFact("ip", "true")]
    public void A_port_opens_again_right_after_its_close_even_while_the_process_starts_others()
    {
        // Two things hold an interface for a moment after a port's close: the kernel frees the socket's
        // hold on the queue in deferred work (a bind until then: EBUSY), and a process forked by another
        // thread holds a copy of the program's link until its exec. The open waits both out.
        using var net = new NetnsPair();
        bool stop = false;
        int started = 0;
        var spawner = new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                using var p = Process.Start("true")!;
                p.WaitForExit();
                started++;
            }
        });
        spawner.Start();
        try
        {
            for (int i = 0; i < 40; i++)
            {
                var port = InNamespace.Run(net.NsA, () => Ports.Open($"xdp:{net.IfA}"));
                port.Dispose();
            }
        }
        finally
        {
            Volatile.Write(ref stop, true);
            spawner.Join();
        }
        Assert.True(started > 0, "the spawning thread started nothing");
        Assert.True(XdpProgramGone(net.NsA, net.IfA), "the XDP program outlived the last port");
    }

    [RootFact("ip", "pgrep")]
    public void The_program_goes_with_the_process_that_held_the_port_even_after_sigkill()
    {
        using var net = new NetnsPair();
        using var child = new Background(null, "ip", "netns", "exec", net.NsA, "dotnet", Cli, "pktgen", "--port", $"xdp:{net.IfA}", "--mode", "rx", "--duration", "120");
        var end = DateTime.UtcNow.AddSeconds(30);
        while (!HasXdpProgram(net.NsA, net.IfA) && DateTime.UtcNow < end) Thread.Sleep(100);
        Assert.True(HasXdpProgram(net.NsA, net.IfA), "the child never attached its program: " + child.Log);

        // SIGKILL: no Dispose, no finally; only the kernel closing the dead process's files.
        int pid = int.Parse(Sh.Ok("pgrep", "-f", $"pktgen --port xdp:{net.IfA} ").Split('\n', StringSplitOptions.RemoveEmptyEntries)[0]);
        Sh.Ok("kill", "-KILL", pid.ToString());
        var gone = DateTime.UtcNow.AddSeconds(10);
        while (HasXdpProgram(net.NsA, net.IfA) && DateTime.UtcNow < gone) Thread.Sleep(50);
        Assert.False(HasXdpProgram(net.NsA, net.IfA), "the XDP program stayed on the interface after its process was killed");

        // And the interface is free for the next port.
        using var again = InNamespace.Run(net.NsA, () => Ports.Open($"xdp:{net.IfA}"));
    }

    [RootFact("ip")]
    public void A_missing_interface_and_an_interface_with_a_program_get_clear_messages()
    {
        using var net = new NetnsPair();
        var missing = Assert.Throws<InvalidOperationException>(() => InNamespace.Run(net.NsA, () => Ports.Open("xdp:nlnothere0")));
        Assert.Contains("no such device", missing.Message);

        using var first = InNamespace.Run(net.NsA, () => Ports.Open($"xdp:{net.IfA}"));
        var busy = Assert.Throws<InvalidOperationException>(() => InNamespace.Run(net.NsA, () => Ports.Open($"xdp:{net.IfA}")));
        Assert.Contains("already has an XDP program", busy.Message);
        Assert.True(HasXdpProgram(net.NsA, net.IfA), "the failed open took the first port's program away");

        var queue = Assert.Throws<InvalidOperationException>(() => InNamespace.Run(net.NsB, () => Ports.Open($"xdp:{net.IfB}:7")));
        Assert.Contains("queue 7", queue.Message);
        Assert.True(XdpProgramGone(net.NsB, net.IfB), "a failed open left its program behind");

        var size = Assert.Throws<InvalidOperationException>(() => InNamespace.Run(net.NsB, () => Ports.Open($"xdp:{net.IfB}", new PortOptions { BufferSize = 4096 })));
        Assert.Contains("2048 bytes", size.Message);
    }

    [RootFact("ip")]
    public void Without_privilege_the_open_says_what_it_needs()
    {
        using var net = new NetnsPair();
        // Capabilities are per thread: this thread drops all of them, then opens.
        var e = Assert.Throws<InvalidOperationException>(() => InNamespace.Run(net.NsA, () =>
        {
            DropAllCapabilities();
            return Ports.Open($"xdp:{net.IfA}");
        }));
        Assert.Contains("needs root", e.Message);
        Assert.True(XdpProgramGone(net.NsA, net.IfA), "a failed open left its program behind");
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapHeader { public uint Version; public int Pid; }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapData { public uint Effective, Permitted, Inheritable; }

    [DllImport("libc", SetLastError = true)]
    private static extern unsafe long syscall(long number, CapHeader* header, CapData* data);

    private static unsafe void DropAllCapabilities()
    {
        var h = new CapHeader { Version = 0x20080522 }; // _LINUX_CAPABILITY_VERSION_3: two data words
        var d = stackalloc CapData[2];
        if (syscall(126 /* SYS_capset */, &h, d) != 0) throw new IOException($"capset failed: errno {Marshal.GetLastPInvokeError()}");
    }

    [RootFact("ip", "sysctl")]
    public void Bad_slots_and_bad_descriptors_are_counted_and_never_used()
    {
        using var net = new NetnsPair();
        // A quiet link: no IPv6 neighbour discovery racing the descriptor this test writes.
        foreach (var (ns, dev) in new[] { (net.NsA, net.IfA), (net.NsB, net.IfB) })
            Sh.Ok("ip", "netns", "exec", ns, "sysctl", "-qw", $"net.ipv6.conf.{dev}.disable_ipv6=1");
        using var port = (XdpPort)InNamespace.Run(net.NsA, () => Ports.Open($"xdp:{net.IfA}"));

        // TX: a frame longer than the UMEM frame (the 2048-byte buffer) is not sent; it is counted.
        var tx = port.Tx;
        tx[tx.Head].Length = 3000;
        tx.Release(1);
        port.TxSync();
        Assert.Equal(1, tx.Counters.Invalid);
        Assert.Equal(0, tx.Counters.Packets);
        Assert.Equal(tx.Size - 1, tx.Space); // the slot came back to the user

        // RX: descriptors the kernel never should write: outside the UMEM, inside but not at a
        // buffer's start, a length past the buffer, a zero length. None reaches a slot.
        var rx = port.Rx;
        ulong stride = (ulong)port.Pool.Stride;
        port.InjectRxDescriptor(ulong.MaxValue >> 16, 64);
        port.RxSync();
        port.InjectRxDescriptor(3 * stride + 10, 64);
        port.RxSync();
        port.InjectRxDescriptor(5 * stride, 5000);
        port.RxSync();
        port.InjectRxDescriptor(6 * stride, 0);
        port.RxSync();
        Assert.Equal(4, rx.Counters.Invalid);
        Assert.True(rx.IsEmpty);
        Assert.Equal(0, rx.Counters.Packets);

        // A good one (a buffer start, 60 bytes; in unaligned mode the offset may ride in the top bits) is received.
        port.InjectRxDescriptor(7 * stride - 256 + (256UL << 48), 60);
        port.RxSync();
        Assert.Equal(1, rx.Space);
        Assert.Equal(7u, rx[rx.Head].BufferIndex);

        // The user's swap leaves a buffer index that is not the pool's in a released RX slot: counted, not put on the fill ring.
        rx[rx.Head].BufferIndex = 0;
        rx.Release(1);
        port.RxSync();
        Assert.Equal(5, rx.Counters.Invalid);
    }

    [RootFact("ip", "ping", "curl", "ethtool")]
    public void Netloom_host_on_an_xdp_port_answers_the_kernels_ping_and_curl()
    {
        using var net = new NetnsPair();
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "index.html"), "served over AF_XDP\n");
        // The kernel's side sends whole checksums: an XDP program sees frames before any checksum offload is resolved.
        Sh.Ok("ip", "netns", "exec", net.NsB, "ethtool", "-K", net.IfB, "tx", "off");
        Sh.Ok("ip", "-n", net.NsA, "addr", "flush", "dev", net.IfA); // A's kernel stack steps aside: the address is the host's
        string hostIp = net.IpA;
        using var host = new Background("Ctrl-C to stop", "ip", "netns", "exec", net.NsA, "dotnet", Cli, "host",
            "--port", $"xdp:{net.IfA}", "--ip", $"{hostIp}/24", "--serve", $"http:80:{dir.Path}", "--duration", "60");
        host.WaitReady(30);

        var ping = net.In(net.NsB, "ping", "-c", "50", "-i", "0.01", "-W", "1", "-q", hostIp);
        Assert.True(ping.Code == 0, ping.Out + ping.Err + host.Log);
        Assert.Contains("50 received", ping.Out);

        var curl = net.In(net.NsB, "curl", "-sS", "--max-time", "20", $"http://{hostIp}/index.html");
        Assert.True(curl.Code == 0, curl.Err + host.Log);
        Assert.Contains("served over AF_XDP", curl.Out);
    }

    [RootFact("ip", "sysctl")]
    public void The_data_path_allocates_nothing_per_frame()
    {
        using var net = new NetnsPair();
        foreach (var (ns, dev) in new[] { (net.NsA, net.IfA), (net.NsB, net.IfB) })
            Sh.Ok("ip", "netns", "exec", ns, "sysctl", "-qw", $"net.ipv6.conf.{dev}.disable_ipv6=1");
        using var a = (XdpPort)InNamespace.Run(net.NsA, () => Ports.Open($"xdp:{net.IfA}"));
        using var b = (XdpPort)InNamespace.Run(net.NsB, () => Ports.Open($"xdp:{net.IfB}"));
        var frame = new byte[64];
        frame.AsSpan(0, 6).Fill(0xff);                     // broadcast: B's program takes it anyway
        frame[6] = 0x02;
        frame[12] = 0x88; frame[13] = 0xb5;                // local experimental EtherType
        long received = 0;

        void Pump(long until)
        {
            var tx = a.Tx;
            var rx = b.Rx;
            var deadline = Stopwatch.GetTimestamp() + 60 * Stopwatch.Frequency;
            while (received < until && Stopwatch.GetTimestamp() < deadline)
            {
                int n = Math.Min(tx.Space, 256);
                uint h = tx.Head;
                for (int i = 0; i < n; i++) { frame.CopyTo(tx.Buffer(h)); tx[h].Length = 64; h = tx.Next(h); }
                tx.Head = h;
                a.TxSync();
                b.RxSync();
                received += rx.Space;
                rx.Release(rx.Space);
            }
        }

        Pump(20_000); // warm-up: every method compiled, every lazy structure made
        long before = GC.GetAllocatedBytesForCurrentThread();
        Pump(received + 100_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(received >= 120_000, $"only {received} frames arrived");
        Assert.True(allocated == 0, $"{allocated} bytes allocated over 100,000 frames");
    }

    [RootFact("ip", "curl", "ethtool", "/usr/bin/python3", "gcc")]
    public void Netloom_run_fetches_a_file_from_a_kernel_server_over_an_xdp_port()
    {
        using var net = new NetnsPair();
        using var www = new TempDir();
        string file = www.File("data.bin");
        File.WriteAllBytes(file, System.Security.Cryptography.RandomNumberGenerator.GetBytes(4 << 20));
        Sh.Ok("ip", "netns", "exec", net.NsB, "ethtool", "-K", net.IfB, "tx", "off");
        Sh.Ok("ip", "-n", net.NsA, "addr", "flush", "dev", net.IfA);
        using var server = new Background("Serving HTTP", "ip", "netns", "exec", net.NsB, "/usr/bin/python3", "-u", "-m", "http.server", "8000",
            "--bind", net.IpB, "--directory", www.Path);
        server.WaitReady();
        string got = www.File("got.bin");
        var r = Netloom.Interop.Tests.Run.RunLab.Run(TimeSpan.FromMinutes(3), net.NsA, $"xdp:{net.IfA}", $"{net.IpA}/24",
            ["env", "NETLOOM_STATS=1", "curl", "-sS", "--max-time", "60", "-o", got, $"http://{net.IpB}:8000/data.bin"]);
        // On failure the message carries the engine's counts (NETLOOM_STATS): drops, retransmissions, the kernel's XDP statistics.
        Assert.True(r.Code == 0, r.Out + r.Err);
        Assert.Equal(Netloom.Interop.Tests.Run.RunLab.Sha256(file), Netloom.Interop.Tests.Run.RunLab.Sha256(got));
        Assert.Contains("netloom: stack: ", r.Err);
        Assert.Contains("; xdp ", r.Err);
        Assert.True(XdpProgramGone(net.NsA, net.IfA), "the XDP program outlived netloom run");
    }
}
