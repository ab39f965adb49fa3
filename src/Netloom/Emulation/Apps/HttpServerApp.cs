using System.Text;
using Netloom.Stack;
using Netloom.Time;

namespace Netloom.Emulation.Apps;

/// <summary>
/// A small HTTP/1.1 server with generated content: GET /N answers N bytes (up to 1 GiB), any other
/// path answers <see cref="Size"/> bytes; byte K of a body is 'a' + K mod 26, so a client can check it. HEAD, keep-alive and Connection: close are honoured;
/// other methods get 405, a request head over 8 KiB gets 431 and the connection closes.
/// </summary>
internal sealed class HttpServerApp(string name, HostNode host, ushort port, long size) : TcpServerApp(name, host, port)
{
    private const int MaxHead = 8192;
    private const long MaxBody = 1L << 30;

    private sealed class State
    {
        public readonly byte[] Head = new byte[MaxHead];
        public int HeadLength;
        public byte[]? Reply;
        public int ReplySent;
        public long BodyLeft, BodySize;
        public bool CloseAfter;
    }

    private long _requests, _bytes;

    public override string Kind => "http";
    public long Size { get; } = size;
    protected override object? NewState() => new State();

    protected override bool Serve(TcpSocket s, Instant now)
    {
        var st = (State)s.UserState!;
        bool moved = false;
        while (true)
        {
            if (st.Reply is not null)
            {
                if (st.ReplySent < st.Reply.Length)
                {
                    int n = s.Send(st.Reply.AsSpan(st.ReplySent));
                    st.ReplySent += n;
                    moved |= n > 0;
                    if (st.ReplySent < st.Reply.Length) break;
                }
                long b = Payload.Send(s, st.BodyLeft, st.BodySize - st.BodyLeft);
                st.BodyLeft -= b;
                _bytes += b;
                moved |= b > 0;
                if (st.BodyLeft > 0) break;
                st.Reply = null;
                if (st.CloseAfter) { s.Close(); return true; }
            }
            int got = s.Receive(st.Head.AsSpan(st.HeadLength));
            st.HeadLength += got;
            moved |= got > 0;
            int end = st.Head.AsSpan(0, st.HeadLength).IndexOf("\r\n\r\n"u8);
            if (end < 0)
            {
                if (st.HeadLength == MaxHead) { Respond(st, 431, "Request Header Fields Too Large", 0, head: false, close: true); continue; }
                break;
            }
            Handle(st, end + 4);
        }
        if (s.ReceiveFinished && st.Reply is null && st.HeadLength == 0 && s.State != TcpState.Closed) { s.Close(); moved = true; }
        return moved;
    }

    private void Handle(State st, int headLength)
    {
        var head = Encoding.ASCII.GetString(st.Head, 0, headLength);
        // Keep what followed the head (a pipelined request) for the next round.
        Array.Copy(st.Head, headLength, st.Head, 0, st.HeadLength - headLength);
        st.HeadLength -= headLength;
        _requests++;
        var lines = head.Split("\r\n");
        var parts = lines[0].Split(' ');
        if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal)) { Respond(st, 400, "Bad Request", 0, false, true); return; }
        bool close = parts[2] == "HTTP/1.0";
        foreach (var line in lines.Skip(1))
        {
            if (line.StartsWith("Connection:", StringComparison.OrdinalIgnoreCase))
            {
                var v = line["Connection:".Length..].Trim();
                if (v.Equals("close", StringComparison.OrdinalIgnoreCase)) close = true;
                if (v.Equals("keep-alive", StringComparison.OrdinalIgnoreCase)) close = false;
            }
        }
        if (parts[0] is not ("GET" or "HEAD")) { Respond(st, 405, "Method Not Allowed", 0, false, close); return; }
        long size = Size;
        var path = parts[1];
        if (path.Length > 1 && long.TryParse(path.AsSpan(1), out long n) && n >= 0) size = Math.Min(n, MaxBody);
        Respond(st, 200, "OK", size, parts[0] == "HEAD", close);
    }

    private static void Respond(State st, int status, string reason, long length, bool head, bool close)
    {
        st.Reply = Encoding.ASCII.GetBytes($"HTTP/1.1 {status} {reason}\r\nServer: netloom-emulator\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n" +
            (close ? "Connection: close\r\n" : "") + "\r\n");
        st.ReplySent = 0;
        st.BodyLeft = st.BodySize = head ? 0 : length;
        st.CloseAfter = close;
        if (status == 431) st.HeadLength = 0;
    }

    public override AppReport Report(Instant now) => new()
    {
        Name = Name, Kind = Kind, Host = Host.Name, Received = _requests, Bytes = _bytes, Connections = Accepted, Completed = true, Error = Error,
    };
}
