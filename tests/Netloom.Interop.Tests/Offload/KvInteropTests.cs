using System.Net;
using System.Net.Sockets;
using System.Text;
using Netloom.Interop.Tests.Support;
using Netloom.Offload;
using Netloom.Offload.Kv;

namespace Netloom.Interop.Tests.Offload;

/// <summary>The key-value server on both engines, driven by redis-cli and by raw sockets, on loopback.</summary>
public class KvInteropTests
{
    /// <summary>
    /// The sockets engine, and the io_uring engine five ways: its defaults (registered files,
    /// SEND_ZC for large responses), with SQPOLL, with plain descriptors and no SEND_ZC, busy
    /// polling, and with send bundles.
    /// </summary>
    public static TheoryData<string> Engines() => ["uring", "uring-sqpoll", "uring-plain", "uring-busypoll", "uring-bundles", "sockets"];

    private static (IDisposable Server, int Port) Start(string engine, KvHandler handler)
    {
        var ep = new IPEndPoint(IPAddress.Loopback, 0);
        if (engine.StartsWith("uring", StringComparison.Ordinal))
        {
            var options = engine switch
            {
                "uring-sqpoll" => new UringServerOptions { SqPoll = true },
                "uring-plain" => new UringServerOptions { RegisteredFiles = false, ZeroCopyThreshold = 0 },
                "uring-busypoll" => new UringServerOptions { BusyPollMicroseconds = 50 },
                "uring-bundles" => new UringServerOptions { SendBundles = true },
                _ => new UringServerOptions(),
            };
            var u = new UringServer(ep, handler, 2, options);
            u.Start();
            Assert.Contains(engine == "uring-plain" ? "plain descriptors" : "registered files", u.Features);
            return (u, u.LocalEndPoint.Port);
        }
        var s = new SocketsServer(ep, handler);
        s.Start();
        return (s, s.LocalEndPoint.Port);
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Large_values_come_back_whole_and_go_zero_copy_where_enabled(string engine)
    {
        var (server, port) = Start(engine, new KvHandler());
        using var _ = server;
        using var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        c.Connect(IPAddress.Loopback, port);
        var value = new byte[200_000];
        new Random(3).NextBytes(value);
        for (int round = 0; round < 5; round++)
        {
            var set = Encoding.ASCII.GetBytes($"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${value.Length}\r\n").Concat(value).Concat("\r\n"u8.ToArray()).ToArray();
            c.Send(set);
            Assert.Equal("+OK\r\n", Encoding.ASCII.GetString(ReadExactly(c, 5)));
            c.Send("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n"u8);
            var header = Encoding.ASCII.GetBytes($"${value.Length}\r\n");
            var reply = ReadExactly(c, header.Length + value.Length + 2);
            Assert.Equal(header, reply[..header.Length]);
            Assert.True(value.AsSpan().SequenceEqual(reply.AsSpan(header.Length, value.Length)), $"round {round}: the value came back changed");
            value[round] ^= 0xFF; // the next round sends different bytes through the same buffers
        }
        if (server is UringServer u)
        {
            if (engine is "uring-plain" or "uring-bundles") Assert.Equal(0, u.Counters.ZeroCopySends);
            else Assert.True(u.Counters.ZeroCopySends >= 5, $"{u.Counters.ZeroCopySends} zero-copy sends");
        }
    }

    [Fact]
    public void With_send_bundles_replies_queued_behind_a_slow_reader_go_several_to_a_send_whole_and_in_order()
    {
        var (server, port) = Start("uring-bundles", new KvHandler());
        using var _ = server;
        var u = (UringServer)server;
        Assert.Contains("send bundles", u.Features);
        using var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        c.ReceiveBufferSize = 4096; // a small window: the socket fills and later replies queue
        c.Connect(IPAddress.Loopback, port);
        var values = Enumerable.Range(0, 8).Select(k => { var v = new byte[150_000 + k * 1000]; new Random(k).NextBytes(v); return v; }).ToList();
        for (int k = 0; k < values.Count; k++)
        {
            c.Send(Encoding.ASCII.GetBytes($"*3\r\n$3\r\nSET\r\n$2\r\nk{k}\r\n${values[k].Length}\r\n").Concat(values[k]).Concat("\r\n"u8.ToArray()).ToArray());
            Assert.Equal("+OK\r\n", Encoding.ASCII.GetString(ReadExactly(c, 5)));
        }
        // Ask for every value several times without reading, one request at a time: the first
        // replies fill the socket and the later ones queue up as batches behind them.
        var expected = new List<byte>();
        for (int round = 0; round < 4; round++)
            for (int k = 0; k < values.Count; k++)
            {
                c.Send(Encoding.ASCII.GetBytes($"*2\r\n$3\r\nGET\r\n$2\r\nk{k}\r\n"));
                Thread.Sleep(5);
                expected.AddRange(Encoding.ASCII.GetBytes($"${values[k].Length}\r\n"));
                expected.AddRange(values[k]);
                expected.AddRange("\r\n"u8.ToArray());
            }
        var got = ReadExactly(c, expected.Count);
        Assert.True(expected.ToArray().AsSpan().SequenceEqual(got), "the replies came back changed or out of order");
        Assert.Equal(0, u.Counters.BundleFaults);
        Assert.True(u.Counters.BundleBatches > u.Counters.BundleSends, $"{u.Counters.BundleSends} bundle sends carried {u.Counters.BundleBatches} batches: none carried several");
    }

    [Fact]
    public void A_busy_polling_loop_answers_a_burst_then_goes_to_sleep_when_idle()
    {
        var (server, port) = Start("uring-busypoll", new KvHandler());
        using var _ = server;
        Assert.Contains("busy poll 50 µs", ((UringServer)server).Features);
        using var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        c.Connect(IPAddress.Loopback, port);
        for (int i = 0; i < 2000; i++)
        {
            c.Send(Encoding.ASCII.GetBytes($"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n"));
            string want = $":{i + 1}\r\n";
            Assert.Equal(want, Encoding.ASCII.GetString(ReadExactly(c, want.Length)));
        }
        // Idle, each loop spins for at most its 50 µs and then sleeps in io_uring_enter: state S in
        // /proc, where a loop that never stopped spinning would stay R.
        var loops = Directory.GetDirectories("/proc/self/task").Where(t => File.ReadAllText(Path.Combine(t, "comm")).StartsWith("uring loop", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, loops.Count);
        static char State(string task) { var stat = File.ReadAllText(Path.Combine(task, "stat")); return stat[stat.LastIndexOf(')') + 2]; }
        Assert.True(SpinWait.SpinUntil(() => loops.All(t => State(t) == 'S'), 5000), "a busy-polling loop did not go to sleep: " + string.Join(", ", loops.Select(State)));
    }

    private static byte[] ReadExactly(Socket s, int n)
    {
        var buf = new byte[n];
        int got = 0;
        s.ReceiveTimeout = 10_000;
        while (got < n)
        {
            int r = s.Receive(buf, got, n - got, SocketFlags.None);
            if (r == 0) throw new IOException($"closed after {got} of {n} bytes");
            got += r;
        }
        return buf;
    }

    private static string Cli(int port, params string[] args) =>
        Sh.Run(TimeSpan.FromSeconds(10), "redis-cli", ["-p", port.ToString(), .. args]).Out.TrimEnd('\n');

    [ToolTheory("redis-cli")]
    [MemberData(nameof(Engines))]
    public void Redis_cli_gets_the_answers_redis_would_give(string engine)
    {
        var (server, port) = Start(engine, new KvHandler());
        using var _ = server;
        Assert.Equal("PONG", Cli(port, "PING"));
        Assert.Equal("hello", Cli(port, "ECHO", "hello"));
        Assert.Equal("OK", Cli(port, "SET", "k", "v", "EX", "100"));
        Assert.Equal("v", Cli(port, "GET", "k"));
        // Whole seconds left: 100 unless a loaded machine took a second or more between the two calls.
        Assert.InRange(int.Parse(Cli(port, "TTL", "k")), 90, 100);
        Assert.Equal("", Cli(port, "SET", "k", "x", "NX"));
        Assert.Equal("OK", Cli(port, "SET", "k", "x", "XX", "PX", "100000"));
        Assert.Equal("1", Cli(port, "EXISTS", "k"));
        Assert.Equal("1", Cli(port, "INCR", "n"));
        Assert.Equal("-4", Cli(port, "INCRBY", "n", "-5"));
        Assert.Equal("-5", Cli(port, "DECR", "n"));
        Assert.Equal("OK", Cli(port, "MSET", "a", "1", "b", "2"));
        Assert.Equal("1\n\n2", Cli(port, "MGET", "a", "nope", "b"));
        Assert.Equal("1", Cli(port, "EXPIRE", "a", "50"));
        Assert.Equal("2", Cli(port, "DEL", "a", "b"));
        Assert.Equal("3", Cli(port, "RPUSH", "l", "x", "y", "z"));
        Assert.Equal("4", Cli(port, "LPUSH", "l", "w"));
        Assert.Equal("w\nx\ny\nz", Cli(port, "LRANGE", "l", "0", "-1"));
        Assert.Equal("w", Cli(port, "LPOP", "l"));
        Assert.Equal("z", Cli(port, "RPOP", "l"));
        Assert.Equal("OK", Cli(port, "SELECT", "0"));
        Assert.Contains("unknown command", Sh.Run("redis-cli", "-p", port.ToString(), "FROB").Out + Sh.Run("redis-cli", "-p", port.ToString(), "FROB").Err);
        // Pipelined through one connection (redis-cli --pipe reports replies and errors).
        var pipe = Sh.Run(TimeSpan.FromSeconds(10), "sh", "-c", $"printf 'SET p1 a\\r\\nSET p2 b\\r\\nGET p1\\r\\n' | redis-cli -p {port} --pipe");
        Assert.Contains("errors: 0, replies: 3", pipe.Out);
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Malformed_input_gets_an_error_and_a_closed_connection_while_others_are_served(string engine)
    {
        var (server, port) = Start(engine, new KvHandler());
        using var _ = server;
        using var bad = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        bad.Connect(IPAddress.Loopback, port);
        bad.Send("*1\r\n$99999999999\r\n"u8);
        var buf = new byte[256];
        bad.ReceiveTimeout = 5000;
        int n = bad.Receive(buf);
        Assert.StartsWith("-ERR Protocol error", Encoding.ASCII.GetString(buf, 0, n));
        Assert.Equal(0, bad.Receive(buf)); // then closed

        using var good = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        good.Connect(IPAddress.Loopback, port);
        good.Send("*1\r\n$4\r\nPING\r\n"u8);
        good.ReceiveTimeout = 5000;
        Assert.Equal("+PONG\r\n", Encoding.ASCII.GetString(buf, 0, good.Receive(buf)));
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void A_client_that_never_reads_is_cut_off_and_memory_stays_bounded(string engine)
    {
        var handler = new KvHandler();
        var (server, port) = Start(engine, handler);
        using var _ = server;
        using var setup = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        setup.Connect(IPAddress.Loopback, port);
        var big = new string('x', 1 << 20);
        setup.Send(Encoding.ASCII.GetBytes($"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${big.Length}\r\n{big}\r\n"));
        var buf = new byte[64];
        setup.ReceiveTimeout = 5000;
        setup.Receive(buf);

        // Ask for the 1 MiB value again and again without reading a byte of the replies.
        using var hog = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        hog.ReceiveBufferSize = 4096;
        hog.Connect(IPAddress.Loopback, port);
        hog.SendTimeout = 2000;
        var get = "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n"u8.ToArray();
        long before = GC.GetTotalMemory(false);
        try { for (int i = 0; i < 2000; i++) hog.Send(get); }
        catch (SocketException) { } // the server stopped reading from it or closed it: either is right
        // Everyone else is still served.
        using var other = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        other.Connect(IPAddress.Loopback, port);
        other.ReceiveTimeout = 5000;
        other.Send("*1\r\n$4\r\nPING\r\n"u8);
        Assert.Equal("+PONG\r\n", Encoding.ASCII.GetString(buf, 0, other.Receive(buf)));
        Assert.True(GC.GetTotalMemory(false) - before < 512L << 20, "the server held on to the unread replies");
    }

    [ToolTheory("redis-cli")]
    [MemberData(nameof(Engines))]
    public void A_peer_that_resets_mid_request_does_not_disturb_the_server(string engine)
    {
        var (server, port) = Start(engine, new KvHandler());
        using var _ = server;
        for (int i = 0; i < 20; i++)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Connect(IPAddress.Loopback, port);
            s.Send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nhalf"u8); // a request cut in the middle
            s.LingerState = new LingerOption(true, 0);          // close with RST
            s.Dispose();
        }
        Assert.Equal("PONG", Sh.Run("redis-cli", "-p", port.ToString(), "PING").Out.Trim());
    }
}
