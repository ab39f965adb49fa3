using System.Text;
using Netloom.Offload;
using Netloom.Offload.Kv;

namespace Netloom.Tests.Offload;

/// <summary>The key-value handler driven with bytes, as an engine would drive it; replies read from its output.</summary>
public unsafe class KvHandlerTests
{
    private long _now = 1_000_000;
    private readonly KvHandler _kv;
    private readonly Connection _c = new(1);

    public KvHandlerTests()
    {
        _kv = new KvHandler(() => _now);
        _kv.OnConnected(_c);
    }

    private static string Encode(params string[] args) =>
        $"*{args.Length}\r\n" + string.Concat(args.Select(a => $"${Encoding.UTF8.GetByteCount(a)}\r\n{a}\r\n"));

    private string Send(string raw)
    {
        var bytes = Encoding.UTF8.GetBytes(raw);
        int used = _kv.OnData(_c, bytes);
        Assert.Equal(bytes.Length, used);
        var reply = Encoding.UTF8.GetString(new ReadOnlySpan<byte>(_c.Output.Pointer, _c.Output.Length));
        _c.Output.Reset();
        return reply;
    }

    private string Cmd(params string[] args) => Send(Encode(args));

    [Fact]
    public void Strings_counters_and_expiry()
    {
        Assert.Equal("+PONG\r\n", Cmd("PING"));
        Assert.Equal("$2\r\nhi\r\n", Cmd("ECHO", "hi"));
        Assert.Equal("+OK\r\n", Cmd("SET", "k", "v"));
        Assert.Equal("$1\r\nv\r\n", Cmd("get", "k"));
        Assert.Equal("$-1\r\n", Cmd("GET", "missing"));
        Assert.Equal("$-1\r\n", Cmd("SET", "k", "w", "NX"));
        Assert.Equal("+OK\r\n", Cmd("SET", "k", "w", "XX"));
        Assert.Equal("$-1\r\n", Cmd("SET", "new", "x", "XX"));
        Assert.Equal(":1\r\n", Cmd("INCR", "n"));
        Assert.Equal(":11\r\n", Cmd("INCRBY", "n", "10"));
        Assert.Equal(":10\r\n", Cmd("DECR", "n"));
        Assert.Equal("-ERR value is not an integer or out of range\r\n", Cmd("INCR", "k"));
        Assert.Equal("+OK\r\n", Cmd("MSET", "a", "1", "b", "2"));
        Assert.Equal("*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n", Cmd("MGET", "a", "zz", "b"));
        Assert.Equal(":2\r\n", Cmd("EXISTS", "a", "b", "zz"));
        Assert.Equal(":1\r\n", Cmd("DEL", "a", "zz"));
        Assert.Equal(":-1\r\n", Cmd("TTL", "b"));
        Assert.Equal(":1\r\n", Cmd("EXPIRE", "b", "10"));
        Assert.Equal(":10\r\n", Cmd("TTL", "b"));
        _now += 10_001;
        Assert.Equal("$-1\r\n", Cmd("GET", "b"));
        Assert.Equal(":-2\r\n", Cmd("TTL", "b"));
        Assert.Equal("+OK\r\n", Cmd("SET", "p", "x", "PX", "50"));
        _now += 51;
        Assert.Equal(":0\r\n", Cmd("EXISTS", "p"));
    }

    [Fact]
    public void Lists()
    {
        Assert.Equal(":3\r\n", Cmd("RPUSH", "l", "a", "b", "c"));
        Assert.Equal(":4\r\n", Cmd("LPUSH", "l", "z"));
        Assert.Equal("*4\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", Cmd("LRANGE", "l", "0", "-1"));
        Assert.Equal("*2\r\n$1\r\nb\r\n$1\r\nc\r\n", Cmd("LRANGE", "l", "-2", "10"));
        Assert.Equal("$1\r\nz\r\n", Cmd("LPOP", "l"));
        Assert.Equal("$1\r\nc\r\n", Cmd("RPOP", "l"));
        Assert.Equal("*2\r\n$1\r\na\r\n$1\r\nb\r\n", Cmd("LPOP", "l", "5"));
        Assert.Equal("$-1\r\n", Cmd("LPOP", "l"));
        Assert.Equal(":0\r\n", Cmd("EXISTS", "l"));
        Cmd("SET", "s", "x");
        Assert.StartsWith("-WRONGTYPE", Cmd("LPUSH", "s", "y"));
        Cmd("RPUSH", "l2", "x");
        Assert.StartsWith("-WRONGTYPE", Cmd("GET", "l2"));
        for (int i = 0; i < 100; i++) Cmd("RPUSH", "big", i.ToString()); // the deque grows
        Assert.Equal("*1\r\n$2\r\n99\r\n", Cmd("LRANGE", "big", "99", "99"));
    }

    [Fact]
    public void What_redis_benchmark_and_redis_cli_ask_first()
    {
        Assert.Equal("*2\r\n$4\r\nsave\r\n$0\r\n\r\n", Cmd("CONFIG", "GET", "save"));
        Assert.Equal("*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n", Cmd("CONFIG", "GET", "appendonly"));
        Assert.Equal("*0\r\n", Cmd("COMMAND", "DOCS"));
        Assert.Equal("+OK\r\n", Cmd("SELECT", "0"));
        Assert.Equal("-ERR DB index is out of range\r\n", Cmd("SELECT", "3"));
        Assert.Equal("+PONG\r\n", Send("PING\r\n")); // inline form
        Assert.Equal("-ERR unknown command 'FLY'\r\n", Cmd("FLY"));
        Assert.Equal("-ERR wrong number of arguments for 'get' command\r\n", Cmd("GET"));
    }

    [Fact]
    public void Pipelined_requests_are_answered_in_order_and_a_split_request_waits_for_the_rest()
    {
        Assert.Equal("+OK\r\n$1\r\nv\r\n:1\r\n", Send(Encode("SET", "k", "v") + Encode("GET", "k") + Encode("INCR", "c")));
        var whole = Encoding.UTF8.GetBytes(Encode("SET", "split", "value"));
        int used = _kv.OnData(_c, whole.AsSpan(0, 10));
        Assert.Equal(0, used); // incomplete: nothing consumed, nothing answered
        Assert.Equal(0, _c.Output.Length);
        Assert.Equal(whole.Length, _kv.OnData(_c, whole));
    }

    [Theory]
    [InlineData("*99999999999\r\n", "invalid multibulk length")]
    [InlineData("*70000\r\n", "invalid multibulk length")]
    [InlineData("*1\r\n$-5\r\n", "invalid bulk length")]
    [InlineData("*1\r\n$999999999\r\n", "invalid bulk length")]
    [InlineData("*1\r\n:5\r\n", "expected '$'")]
    [InlineData("*1\r\n$3\r\nabcXY", "not ended by CRLF")]
    [InlineData("*x\r\n", "invalid multibulk length")]
    public void Malformed_requests_get_an_error_and_the_connection_is_closed(string raw, string reason)
    {
        var reply = Send(raw);
        Assert.StartsWith("-ERR Protocol error", reply);
        Assert.Contains(reason, reply);
        Assert.True(_c.CloseRequested);
    }

    [Fact]
    public void Quit_answers_then_closes()
    {
        Assert.Equal("+OK\r\n", Cmd("QUIT"));
        Assert.True(_c.CloseRequested);
    }

    [Fact]
    public void Get_and_set_of_an_existing_key_allocate_nothing()
    {
        var set = Encoding.UTF8.GetBytes(Encode("SET", "key:000000001", "xxx"));
        var get = Encoding.UTF8.GetBytes(Encode("GET", "key:000000001"));
        _kv.OnData(_c, set);
        void Run(int n)
        {
            for (int i = 0; i < n; i++)
            {
                _kv.OnData(_c, set);
                _kv.OnData(_c, get);
                _c.Output.Reset();
            }
        }
        Support.Allocations.AssertFlat(Run, 100_000);
    }
}
