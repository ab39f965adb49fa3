using System.Buffers.Text;
using System.Text;
using Netloom.Time;

namespace Netloom.Offload.Kv;

/// <summary>
/// An in-memory key-value server speaking RESP2, enough for redis-cli and redis-benchmark: PING,
/// ECHO, SET (EX, PX, NX, XX), GET, DEL, EXISTS, INCR, DECR, INCRBY, MSET, MGET, EXPIRE, TTL,
/// LPUSH, RPUSH, LPOP, RPOP, LRANGE, SELECT 0, CONFIG GET, COMMAND, QUIT. Pipelined requests are
/// answered in one batch. Malformed input gets an error reply and the connection is closed.
/// </summary>
internal sealed class KvHandler : IConnectionHandler
{
    private readonly KvStore _store = new();
    private readonly Func<long> _clockMs;

    /// <param name="clockMs">
    /// Milliseconds for expiry (any origin: only differences count). By default the real clock,
    /// read through <see cref="MonotonicClock"/>, the one place the library reads it.
    /// </param>
    public KvHandler(Func<long>? clockMs = null) => _clockMs = clockMs ?? RealClock();

    private static Func<long> RealClock()
    {
        var clock = new MonotonicClock(Instant.Zero);
        return () => clock.Now.Nanoseconds / 1_000_000;
    }

    public long Commands;
    public int Keys { get { lock (_store.Lock) return _store.Count; } }

    private sealed class State
    {
        public Range[] Args = new Range[16];
    }

    public void OnConnected(Connection connection) => connection.State ??= new State();

    public void OnClosed(Connection connection) { }

    public int OnData(Connection c, ReadOnlySpan<byte> data)
    {
        var state = (State)c.State!;
        int used = 0;
        while (used < data.Length && !c.CloseRequested)
        {
            var input = data[used..];
            var r = Resp.TryParse(input, ref state.Args, out int count, out int consumed, out string? error);
            if (r == RespParse.Incomplete) break;
            if (r == RespParse.Error)
            {
                Resp.Error(c.Output, "ERR " + error);
                c.Close(); // after a protocol error the stream cannot be trusted: answer, then close
                return data.Length;
            }
            used += consumed;
            if (count > 0) Execute(c, input, state.Args.AsSpan(0, count));
        }
        return used;
    }

    private static bool Is(ReadOnlySpan<byte> word, ReadOnlySpan<byte> upper) => Ascii.EqualsIgnoreCase(word, upper);

    private void Execute(Connection c, ReadOnlySpan<byte> input, ReadOnlySpan<Range> args)
    {
        Interlocked.Increment(ref Commands);
        var o = c.Output;
        var cmd = input[args[0]];
        int n = args.Length;
        long now = _clockMs();

        if (Is(cmd, "PING"u8)) { if (n > 1) Resp.Bulk(o, input[args[1]]); else Resp.Simple(o, "PONG"u8); return; }
        if (Is(cmd, "ECHO"u8)) { if (Arity(o, cmd, n, 2)) Resp.Bulk(o, input[args[1]]); return; }
        if (Is(cmd, "QUIT"u8)) { Resp.Simple(o, "OK"u8); c.Close(); return; }
        if (Is(cmd, "SELECT"u8)) { if (Arity(o, cmd, n, 2)) { if (input[args[1]].SequenceEqual("0"u8)) Resp.Simple(o, "OK"u8); else Resp.Error(o, "ERR DB index is out of range"); } return; }
        if (Is(cmd, "COMMAND"u8)) { Resp.ArrayHeader(o, 0); return; }
        if (Is(cmd, "CONFIG"u8)) { Config(o, input, args); return; }

        lock (_store.Lock)
        {
            if (Is(cmd, "GET"u8))
            {
                if (!Arity(o, cmd, n, 2)) return;
                var v = _store.Get(input[args[1]], now);
                if (v is null) Resp.Null(o);
                else if (v.List is not null) WrongType(o);
                else Resp.Bulk(o, v.StringValue);
            }
            else if (Is(cmd, "SET"u8)) Set(o, input, args, now);
            else if (Is(cmd, "DEL"u8) || Is(cmd, "EXISTS"u8))
            {
                if (n < 2) { ArityError(o, cmd); return; }
                bool del = Is(cmd, "DEL"u8);
                long count = 0;
                for (int i = 1; i < n; i++) if (del ? _store.Remove(input[args[i]], now) : _store.Get(input[args[i]], now) is not null) count++;
                Resp.Integer(o, count);
            }
            else if (Is(cmd, "INCR"u8) || Is(cmd, "DECR"u8) || Is(cmd, "INCRBY"u8))
            {
                long by = 1;
                if (Is(cmd, "INCRBY"u8)) { if (!Arity(o, cmd, n, 3)) return; if (!ParseLong(input[args[2]], out by)) { NotInteger(o); return; } }
                else if (!Arity(o, cmd, n, 2)) return;
                if (Is(cmd, "DECR"u8)) by = -1;
                var v = _store.GetOrAdd(input[args[1]], now);
                if (v.List is not null) { WrongType(o); return; }
                long cur = 0;
                if (v.String is not null && !ParseLong(v.StringValue, out cur)) { NotInteger(o); return; }
                long next;
                try { next = checked(cur + by); } catch (OverflowException) { Resp.Error(o, "ERR increment or decrement would overflow"); return; }
                Span<byte> text = stackalloc byte[24];
                Utf8Formatter.TryFormat(next, text, out int len);
                v.SetString(text[..len]);
                Resp.Integer(o, next);
            }
            else if (Is(cmd, "MSET"u8))
            {
                if (n < 3 || n % 2 == 0) { ArityError(o, cmd); return; }
                for (int i = 1; i < n; i += 2) { var v = _store.GetOrAdd(input[args[i]], now); v.SetString(input[args[i + 1]]); v.ExpiresAtMs = 0; }
                Resp.Simple(o, "OK"u8);
            }
            else if (Is(cmd, "MGET"u8))
            {
                if (n < 2) { ArityError(o, cmd); return; }
                Resp.ArrayHeader(o, n - 1);
                for (int i = 1; i < n; i++)
                {
                    var v = _store.Get(input[args[i]], now);
                    if (v?.String is null) Resp.Null(o); else Resp.Bulk(o, v.StringValue);
                }
            }
            else if (Is(cmd, "EXPIRE"u8))
            {
                if (!Arity(o, cmd, n, 3)) return;
                if (!ParseLong(input[args[2]], out long s)) { NotInteger(o); return; }
                var v = _store.Get(input[args[1]], now);
                if (v is null) { Resp.Integer(o, 0); return; }
                if (s <= 0) _store.Remove(input[args[1]], now); else v.ExpiresAtMs = now + s * 1000;
                Resp.Integer(o, 1);
            }
            else if (Is(cmd, "TTL"u8))
            {
                if (!Arity(o, cmd, n, 2)) return;
                var v = _store.Get(input[args[1]], now);
                Resp.Integer(o, v is null ? -2 : v.ExpiresAtMs == 0 ? -1 : (v.ExpiresAtMs - now + 999) / 1000);
            }
            else if (Is(cmd, "LPUSH"u8) || Is(cmd, "RPUSH"u8))
            {
                if (n < 3) { ArityError(o, cmd); return; }
                var v = _store.GetOrAdd(input[args[1]], now);
                if (v.String is not null) { WrongType(o); return; }
                for (int i = 2; i < n; i++) v.Push(input[args[i]], Is(cmd, "LPUSH"u8));
                Resp.Integer(o, v.ListCount);
            }
            else if (Is(cmd, "LPOP"u8) || Is(cmd, "RPOP"u8))
            {
                if (n is < 2 or > 3) { ArityError(o, cmd); return; }
                var v = _store.Get(input[args[1]], now);
                if (v?.String is not null) { WrongType(o); return; }
                bool left = Is(cmd, "LPOP"u8);
                if (n == 3)
                {
                    if (!ParseLong(input[args[2]], out long k) || k < 0) { Resp.Error(o, "ERR value is out of range, must be positive"); return; }
                    if (v is null) { o.Write("*-1\r\n"u8); return; }
                    int take = (int)Math.Min(k, v.ListCount);
                    Resp.ArrayHeader(o, take);
                    for (int i = 0; i < take; i++) Resp.Bulk(o, v.Pop(left));
                }
                else
                {
                    var item = v?.Pop(left);
                    if (item is null) Resp.Null(o); else Resp.Bulk(o, item);
                }
                if (v is not null && v.ListCount == 0) _store.Remove(input[args[1]], now);
            }
            else if (Is(cmd, "LRANGE"u8))
            {
                if (!Arity(o, cmd, n, 4)) return;
                if (!ParseLong(input[args[2]], out long start) || !ParseLong(input[args[3]], out long stop)) { NotInteger(o); return; }
                var v = _store.Get(input[args[1]], now);
                if (v?.String is not null) { WrongType(o); return; }
                int len = v?.ListCount ?? 0;
                if (start < 0) start = Math.Max(0, len + start);
                if (stop < 0) stop = len + stop;
                stop = Math.Min(stop, len - 1);
                if (start > stop || v is null) { Resp.ArrayHeader(o, 0); return; }
                Resp.ArrayHeader(o, stop - start + 1);
                for (long i = start; i <= stop; i++) Resp.Bulk(o, v.At((int)i));
            }
            else
            {
                string name = Encoding.UTF8.GetString(cmd[..Math.Min(cmd.Length, 64)]);
                Resp.Error(o, $"ERR unknown command '{name}'");
            }
        }
    }

    private void Set(OutputBuffer o, ReadOnlySpan<byte> input, ReadOnlySpan<Range> args, long now)
    {
        int n = args.Length;
        if (n < 3) { ArityError(o, "SET"u8); return; }
        long expires = 0;
        bool nx = false, xx = false;
        for (int i = 3; i < n; i++)
        {
            var opt = input[args[i]];
            if (Is(opt, "NX"u8)) nx = true;
            else if (Is(opt, "XX"u8)) xx = true;
            else if ((Is(opt, "EX"u8) || Is(opt, "PX"u8)) && i + 1 < n)
            {
                if (!ParseLong(input[args[++i]], out long t) || t <= 0) { Resp.Error(o, "ERR invalid expire time in 'set' command"); return; }
                expires = now + (Is(opt, "EX"u8) ? t * 1000 : t);
            }
            else { Resp.Error(o, "ERR syntax error"); return; }
        }
        if (nx && xx) { Resp.Error(o, "ERR syntax error"); return; }
        var key = input[args[1]];
        var existing = _store.Get(key, now);
        if ((nx && existing is not null) || (xx && existing is null)) { Resp.Null(o); return; }
        var v = existing ?? _store.GetOrAdd(key, now);
        v.SetString(input[args[2]]);
        v.ExpiresAtMs = expires;
        Resp.Simple(o, "OK"u8);
    }

    private static void Config(OutputBuffer o, ReadOnlySpan<byte> input, ReadOnlySpan<Range> args)
    {
        // redis-benchmark asks CONFIG GET save and CONFIG GET appendonly before it starts.
        if (args.Length != 3 || !Is(input[args[1]], "GET"u8)) { Resp.Error(o, "ERR only CONFIG GET is supported"); return; }
        var p = input[args[2]];
        if (Is(p, "save"u8)) { Resp.ArrayHeader(o, 2); Resp.Bulk(o, "save"u8); Resp.Bulk(o, ""u8); }
        else if (Is(p, "appendonly"u8)) { Resp.ArrayHeader(o, 2); Resp.Bulk(o, "appendonly"u8); Resp.Bulk(o, "no"u8); }
        else Resp.ArrayHeader(o, 0);
    }

    private static bool ParseLong(ReadOnlySpan<byte> s, out long v) => Utf8Parser.TryParse(s, out v, out int used) && used == s.Length && s.Length > 0;

    private static bool Arity(OutputBuffer o, ReadOnlySpan<byte> cmd, int n, int expected)
    {
        if (n == expected) return true;
        ArityError(o, cmd);
        return false;
    }

    private static void ArityError(OutputBuffer o, ReadOnlySpan<byte> cmd) =>
        Resp.Error(o, $"ERR wrong number of arguments for '{Encoding.UTF8.GetString(cmd[..Math.Min(cmd.Length, 32)]).ToLowerInvariant()}' command");

    private static void WrongType(OutputBuffer o) => Resp.Error(o, "WRONGTYPE Operation against a key holding the wrong kind of value");
    private static void NotInteger(OutputBuffer o) => Resp.Error(o, "ERR value is not an integer or out of range");
}
