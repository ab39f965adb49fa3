using System.Buffers.Text;

namespace Netloom.Offload.Kv;

internal enum RespParse { Incomplete, Complete, Error }

/// <summary>
/// RESP2 requests as clients send them: an array of bulk strings (<c>*2\r\n$3\r\nGET\r\n$1\r\nk\r\n</c>),
/// or an inline command line (<c>PING\r\n</c>). Arguments come back as ranges into the input, so
/// parsing allocates nothing. Every length is bounded: the input is untrusted.
/// </summary>
internal static class Resp
{
    public const int MaxArguments = 1 << 16;
    public const int MaxBulk = 32 << 20;
    public const int MaxInline = 64 << 10;

    /// <summary>
    /// Parses one request. <paramref name="args"/> grows (only) when a request has more arguments
    /// than any before it, up to <see cref="MaxArguments"/>.
    /// </summary>
    public static RespParse TryParse(ReadOnlySpan<byte> input, ref Range[] args, out int count, out int consumed, out string? error)
    {
        count = consumed = 0;
        error = null;
        if (input.IsEmpty) return RespParse.Incomplete;
        if (input[0] != (byte)'*') return ParseInline(input, args, out count, out consumed, out error);
        var argsArray = args;
        int pos = 1;
        var r = ReadNumber(input, ref pos, out long n);
        if (r != RespParse.Complete) { error = r == RespParse.Error ? "Protocol error: invalid multibulk length" : null; return r; }
        if (n < 0 || n > MaxArguments) { error = "Protocol error: invalid multibulk length"; return RespParse.Error; }
        if (n > argsArray.Length) args = argsArray = new Range[Math.Max((int)n, argsArray.Length * 2)];
        for (int i = 0; i < n; i++)
        {
            if (pos >= input.Length) return RespParse.Incomplete;
            if (input[pos] != (byte)'$') { error = $"Protocol error: expected '$', got '{(char)input[pos]}'"; return RespParse.Error; }
            pos++;
            r = ReadNumber(input, ref pos, out long len);
            if (r != RespParse.Complete) { error = r == RespParse.Error ? "Protocol error: invalid bulk length" : null; return r; }
            if (len < 0 || len > MaxBulk) { error = "Protocol error: invalid bulk length"; return RespParse.Error; }
            if (input.Length - pos < len + 2) return RespParse.Incomplete;
            if (input[pos + (int)len] != (byte)'\r' || input[pos + (int)len + 1] != (byte)'\n') { error = "Protocol error: bulk string not ended by CRLF"; return RespParse.Error; }
            argsArray[i] = new Range(pos, pos + (int)len);
            pos += (int)len + 2;
        }
        count = (int)n;
        consumed = pos;
        return RespParse.Complete;
    }

    /// <summary>Reads "digits\r\n" at <paramref name="pos"/>.</summary>
    private static RespParse ReadNumber(ReadOnlySpan<byte> input, ref int pos, out long value)
    {
        value = 0;
        int end = input[pos..].IndexOf((byte)'\r');
        if (end < 0) return input.Length - pos > 20 ? RespParse.Error : RespParse.Incomplete;
        if (pos + end + 1 >= input.Length) return RespParse.Incomplete;
        if (input[pos + end + 1] != (byte)'\n' || end == 0 || end > 19) return RespParse.Error;
        if (!Utf8Parser.TryParse(input.Slice(pos, end), out value, out int used) || used != end) return RespParse.Error;
        pos += end + 2;
        return RespParse.Complete;
    }

    private static RespParse ParseInline(ReadOnlySpan<byte> input, Span<Range> args, out int count, out int consumed, out string? error)
    {
        count = consumed = 0;
        error = null;
        int nl = input.IndexOf((byte)'\n');
        if (nl < 0) { if (input.Length > MaxInline) { error = "Protocol error: too big inline request"; return RespParse.Error; } return RespParse.Incomplete; }
        int end = nl > 0 && input[nl - 1] == (byte)'\r' ? nl - 1 : nl;
        int i = 0;
        while (i < end && count < args.Length)
        {
            while (i < end && input[i] == (byte)' ') i++;
            int start = i;
            while (i < end && input[i] != (byte)' ') i++;
            if (i > start) args[count++] = new Range(start, i);
        }
        consumed = nl + 1;
        return RespParse.Complete;
    }

    public static void Simple(OutputBuffer o, ReadOnlySpan<byte> text)
    {
        o.Write("+"u8);
        o.Write(text);
        o.Write("\r\n"u8);
    }

    public static void Error(OutputBuffer o, string message)
    {
        var s = o.GetSpan(message.Length * 3 + 3);
        if (s.IsEmpty) return;
        s[0] = (byte)'-';
        int n = System.Text.Encoding.UTF8.GetBytes(message, s[1..]);
        s[1 + n] = (byte)'\r';
        s[2 + n] = (byte)'\n';
        o.Advance(n + 3);
    }

    public static void Integer(OutputBuffer o, long v) => Prefixed(o, (byte)':', v);

    public static void Bulk(OutputBuffer o, ReadOnlySpan<byte> value)
    {
        Prefixed(o, (byte)'$', value.Length);
        o.Write(value);
        o.Write("\r\n"u8);
    }

    public static void Null(OutputBuffer o) => o.Write("$-1\r\n"u8);

    public static void ArrayHeader(OutputBuffer o, long n) => Prefixed(o, (byte)'*', n);

    private static void Prefixed(OutputBuffer o, byte prefix, long v)
    {
        var s = o.GetSpan(24);
        if (s.IsEmpty) return;
        s[0] = prefix;
        Utf8Formatter.TryFormat(v, s[1..], out int n);
        s[1 + n] = (byte)'\r';
        s[2 + n] = (byte)'\n';
        o.Advance(n + 3);
    }
}
