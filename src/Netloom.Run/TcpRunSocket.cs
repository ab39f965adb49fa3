using System.Buffers.Binary;
using Netloom.Run.Native;
using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Run;

/// <summary>
/// A SOCK_STREAM socket: fresh, bound, listening (a <see cref="TcpListenSocket"/>) or a
/// connection (a <see cref="TcpSocket"/>), with the kernel's answers for each state.
/// </summary>
internal sealed unsafe class TcpRunSocket(Engine engine, int family) : RunSocket(engine, Abi.SOCK_STREAM, family)
{
    private TcpListenSocket? _listener;
    private TcpSocket? _conn;
    private ushort _port;
    // The bound address: 0.0.0.0 (IPv4-mapped) for AF_INET, :: for AF_INET6 until bind says otherwise.
    private IpAddr _bindAddress = family == Abi.AF_INET ? IpAddr.FromIpv4(Ipv4Address.Any) : default;
    private bool _shutRead, _shutWrite, _refusedReported;
    // A connect returned EINPROGRESS (or a blocking one EINTR) and no connect has reported the
    // handshake's end since: the next connect does, once (0 or the error), as the kernel's does.
    private bool _connecting;
    // The connection's error was reported once (by a call or SO_ERROR); later calls see EOF or EPIPE.
    private bool _errorDelivered;
    private int _pendingError;
    private bool _noDelay;
    private int _keepIdle = 7200, _keepInterval = 75, _keepCount = 9;
    // The zero-copy send call in progress: bytes queued so far, and whether it is copied (short).
    private long _zcTaken;
    private bool _zcCopy;

    /// <summary>For an accepted connection.</summary>
    public TcpRunSocket(Engine engine, TcpSocket accepted, TcpRunSocket listener) : this(engine, listener.Family)
    {
        V6Only = listener.V6Only;
        _conn = accepted;
        _port = accepted.LocalPort;
        _bindAddress = listener._bindAddress;
        _noDelay = listener._noDelay;
        accepted.NoDelay = _noDelay;
        accepted.Observer = this;
        ReceiveBuffer = listener.ReceiveBuffer;
        SendBuffer = listener.SendBuffer;
        ReceiveBufferSet = listener.ReceiveBufferSet;
        SendBufferSet = listener.SendBufferSet;
        KeepAlive = listener.KeepAlive;
        ZeroCopy = listener.ZeroCopy; // as the kernel's clone of the listener's flags
    }

    private bool Fresh => _listener is null && _conn is null;

    public override bool IsBound => !Fresh || _port != 0;

    public override short Readiness()
    {
        short r = Readiness(out bool pending);
        return pending ? (short)(r | Abi.POLLERR) : r; // a waiting completion is POLLERR (tcp_poll: a non-empty error queue)
    }

    private short Readiness(out bool completions)
    {
        completions = _conn is { HasZeroCopyCompletions: true };
        if (_listener is { } l) return l.Pending > 0 ? Abi.POLLIN : (short)0;
        if (_conn is not { } c) return (short)(Abi.POLLOUT | Abi.POLLHUP); // Linux: a fresh TCP socket
        short r = 0;
        if (c.State is TcpState.SynSent or TcpState.SynReceived) return 0;
        // A failed connection (refused, reset, timed out) is readable, writable and in error, as in Linux.
        if (c.Error != TcpError.None) return Abi.POLLERR | Abi.POLLHUP | Abi.POLLIN | Abi.POLLRDHUP | Abi.POLLOUT;
        if (c.Available > 0 || _shutRead) r |= Abi.POLLIN;
        if (c.ReceiveFinished) r |= Abi.POLLIN | Abi.POLLRDHUP;
        bool canSend = !_shutWrite && c.State is TcpState.Established or TcpState.CloseWait;
        if (canSend && c.SendSpace > 0) r |= Abi.POLLOUT;
        if (c.State is TcpState.Closed or TcpState.TimeWait || (c.ReceiveFinished && _shutWrite)) r |= Abi.POLLHUP;
        return r;
    }

    public override long Bind(byte* addr, uint length, int fd)
    {
        long bad = SockAddr.Read(Family, addr, length, out var address, out var port, out uint scope);
        if (bad < 0) return bad;
        if (!Fresh || _port != 0) return -Errno.EINVAL;
        long where = Engine.CheckBind(this, address, scope, broadcastOk: false);
        if (where == Abi.Kernel) return Engine.HandOver(fd); // loopback is the kernel's
        if (where < 0) return where;
        _bindAddress = address;
        _port = port != 0 ? port : EphemeralPort();
        return 0;
    }

    private static ushort EphemeralPort() => (ushort)Random.Shared.Next(32768, 61000);

    public override long Listen(int backlog)
    {
        if (_conn is not null) return -Errno.EINVAL;
        if (_listener is not null) return 0;
        if (_port == 0) _port = EphemeralPort();
        try
        {
            // An AF_INET listener (or one bound to an IPv4-mapped address) takes IPv4 only; an
            // IPV6_V6ONLY one, or one bound to an IPv6 address, IPv6 only, so the two may share a
            // port (redis's default "bind * -::*", nginx's "listen 80; listen [::]:80"); [::] both.
            bool v4 = TakesFrom(IpAddr.FromIpv4(Ipv4Address.Any), _bindAddress), v6 = TakesFrom(IpAddr.FromIpv6(default), _bindAddress);
            var versions = v4 && v6 ? TcpListenSocket.IpVersions.Both : v4 ? TcpListenSocket.IpVersions.Ipv4 : TcpListenSocket.IpVersions.Ipv6;
            _listener = Engine.Interface.Listen(_port, Math.Clamp(backlog <= 0 ? 1 : backlog, 1, 4096), StackOptions(), versions: versions);
            _listener.Observer = this;
            return 0;
        }
        catch (InvalidOperationException) { return -Errno.EADDRINUSE; }
    }

    public override long Accept(byte* addr, uint* length, int flags)
    {
        if (_listener is not { } l) return -Errno.EINVAL;
        if (l.Pending == 0) return -Errno.EAGAIN;
        int fd = Engine.NewPlaceholder(Family, Abi.SOCK_STREAM | (flags & (Abi.SOCK_NONBLOCK | Abi.SOCK_CLOEXEC)));
        if (fd < 0) return -Libc.Errno; // EMFILE, ENFILE: the connection stays queued, as the kernel's does
        if (!l.TryAccept(out var s)) { Libc.Close(fd); return -Errno.EAGAIN; }
        var accepted = new TcpRunSocket(Engine, s, this) { NonBlocking = (flags & Abi.SOCK_NONBLOCK) != 0 };
        if (!Engine.Adopt(fd, accepted)) { s.Abort(); Libc.Close(fd); return -Errno.EMFILE; }
        WriteAddress(addr, length, s.Remote.Address, s.RemotePort);
        return fd;
    }

    public override long Connect(byte* addr, uint length, int fd)
    {
        long bad = SockAddr.Read(Family, addr, length, out var address, out var port, out uint scope);
        if (bad < 0) return bad;
        if (_listener is not null) return -Errno.EINVAL;
        if (_conn is { } c)
        {
            if (c.State is TcpState.SynSent or TcpState.SynReceived) return -Errno.EALREADY; // a blocking socket then waits (Engine.Connect)
            if (_connecting)
            {
                if (c.Error == TcpError.None || !_refusedReported) return ConnectOutcome();
                _connecting = false;
                return -Errno.ECONNABORTED; // SO_ERROR took the error first
            }
            if (c.Error == TcpError.Refused && !_refusedReported) { _refusedReported = true; return -Errno.ECONNREFUSED; }
            return -Errno.EISCONN;
        }
        if (address.IsIpv4)
        {
            if (Family == Abi.AF_INET6 && V6Only) return -Errno.ENETUNREACH; // tcp_v6_connect: no IPv4 on a v6-only socket
            if (!Engine.Serves(address.Ipv4))
            {
                if (_port != 0 || address.Ipv4.IsUnspecified) return -Errno.ENETUNREACH;
                return Engine.HandOver(fd); // loopback, or off every route of the stack: the kernel's
            }
        }
        else if (Engine.Route6(address.Ipv6, scope) is var where and not 0)
        {
            if (where != Abi.Kernel) return where;
            if (_port != 0) return -Errno.ENETUNREACH;
            return Engine.HandOver(fd); // ::1, another link, or no route: the kernel's
        }
        if (port == 0) return -Errno.ECONNREFUSED;
        try
        {
            _conn = address.IsIpv4 ? Engine.Interface.Connect(address.Ipv4, port, StackOptions(), _port)
                : Engine.Interface.Connect(address.Ipv6, port, StackOptions(), _port);
        }
        catch (InvalidOperationException) { return -Errno.EADDRNOTAVAIL; }
        catch (ArgumentException) { return -Errno.ENETUNREACH; }
        _conn.NoDelay = _noDelay;
        _conn.Observer = this;
        _port = _conn.LocalPort;
        _connecting = true;
        return -Errno.EINPROGRESS; // the engine waits for the handshake when the socket blocks
    }

    /// <summary>After connect: 0 once established, the error once failed, -EINPROGRESS while the handshake runs.</summary>
    public long ConnectOutcome()
    {
        if (_conn is not { } c) return -Errno.ENOTCONN;
        if (c.State is TcpState.SynSent or TcpState.SynReceived) return -Errno.EINPROGRESS;
        _connecting = false;
        if (c.Error != TcpError.None) { _refusedReported = true; return -ErrorOf(c.Error); }
        return 0;
    }

    private static int ErrorOf(TcpError e) => e switch
    {
        TcpError.Refused => Errno.ECONNREFUSED,
        TcpError.Reset => Errno.ECONNRESET,
        TcpError.TimedOut => Errno.ETIMEDOUT,
        TcpError.Aborted => Errno.ECONNABORTED,
        _ => 0,
    };

    private TcpSocketOptions StackOptions() => new()
    {
        SendBufferSize = SendBufferSet ? Math.Clamp(SendBuffer, 4096, 16 << 20) : AutoBufferMax,
        ReceiveBufferSize = ReceiveBufferSet ? Math.Clamp(ReceiveBuffer, 4096, 16 << 20) : AutoBufferMax,
        NoDelay = _noDelay,
        KeepAlive = KeepAlive,
        KeepAliveIdle = Duration.FromSeconds(_keepIdle),
        KeepAliveInterval = Duration.FromSeconds(_keepInterval),
        KeepAliveProbes = _keepCount,
    };

    public override long Shutdown(int how)
    {
        if (how is < Abi.SHUT_RD or > Abi.SHUT_RDWR) return -Errno.EINVAL;
        if (_conn is not { } c || c.State is TcpState.SynSent) return -Errno.ENOTCONN;
        if (how != Abi.SHUT_WR) _shutRead = true;
        if (how != Abi.SHUT_RD && !_shutWrite)
        {
            _shutWrite = true;
            c.Shutdown();
        }
        Changed();
        return 0;
    }

    public override long Close()
    {
        if (_listener is { } l)
        {
            l.Close();
            _listener = null;
        }
        else if (_conn is { } c)
        {
            // Nobody can read completions any more: the stack keeps its own copy of lent bytes
            // still unacknowledged, so the program may free that memory from now on.
            c.CopyLentMemory();
            if (LingerOn != 0 && LingerSeconds == 0) c.Abort();            // SO_LINGER 0: RST now
            else c.Close();                                               // FIN after the data (RST if unread data)
            Engine.Interface.FlushOutput();
        }
        Changed();
        return 0;
    }

    /// <summary>With SO_LINGER on and a timeout, close waits until everything sent was acknowledged.</summary>
    public bool LingerWaiting => _conn is { } c && LingerOn != 0 && LingerSeconds > 0 && c.SendQueued > 0 && c.Error == TcpError.None && c.State != TcpState.Closed;

    /// <summary>Closed with data or a FIN still unacknowledged: what exit waits for.</summary>
    public bool Draining => _conn is { } c && c.Error == TcpError.None && c.State is not (TcpState.Closed or TcpState.TimeWait or TcpState.FinWait2) && (c.SendQueued > 0 || c.State is TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck);

    /// <summary>The linger time ran out: reset, as the kernel does.</summary>
    public void LingerExpired() => _conn?.Abort();

    public override long GetSockName(byte* addr, uint* length)
    {
        var a = _conn is { } c ? c.Local.Address : _bindAddress;
        WriteAddress(addr, length, a, _port);
        return 0;
    }

    public override long GetPeerName(byte* addr, uint* length)
    {
        // Not connected yet, or failed with nothing left to read: no peer.
        if (_conn is not { } c || c.State is TcpState.SynSent || (c.State == TcpState.Closed && c.Error != TcpError.None && c.Available == 0))
            return -Errno.ENOTCONN;
        WriteAddress(addr, length, c.Remote.Address, c.RemotePort);
        return 0;
    }

    public override long TryReceive(MsgHdr* msg, int flags)
    {
        if (_conn is not { } c) return -Errno.ENOTCONN;
        if (msg->Name is not null) msg->NameLength = 0;
        msg->Flags = 0;
        if (_shutRead && c.Available == 0) return 0;
        if (c.Available == 0)
        {
            if (c.Error is not TcpError.None and var e)
            {
                if (_pendingError == 0 && e != TcpError.Aborted && !_errorDelivered) { _errorDelivered = true; return -ErrorOf(e); }
                return 0;
            }
            return c.ReceiveFinished ? 0 : -Errno.EAGAIN;
        }
        bool peek = (flags & Abi.MSG_PEEK) != 0;
        long total = 0;
        if (peek)
        {
            c.PeekReceived(out var first, out var second);
            int skip = 0;
            for (nuint i = 0; i < msg->IovLength; i++)
            {
                var dst = new Span<byte>(msg->Iov[i].Base, (int)Math.Min(msg->Iov[i].Length, int.MaxValue));
                int n = CopyFrom(first, second, skip, dst);
                skip += n;
                total += n;
                if (n < dst.Length) break;
            }
            return total;
        }
        for (nuint i = 0; i < msg->IovLength; i++)
        {
            var dst = new Span<byte>(msg->Iov[i].Base, (int)Math.Min(msg->Iov[i].Length, int.MaxValue));
            int n = c.Receive(dst);
            total += n;
            if (n < dst.Length) break;
        }
        return total;
    }

    private static int CopyFrom(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, int skip, Span<byte> dst)
    {
        int n = 0;
        if (skip < first.Length)
        {
            var part = first[skip..];
            int k = Math.Min(part.Length, dst.Length);
            part[..k].CopyTo(dst);
            n = k;
            skip = 0;
        }
        else skip -= first.Length;
        if (n < dst.Length && skip < second.Length)
        {
            var part = second[skip..];
            int k = Math.Min(part.Length, dst.Length - n);
            part[..k].CopyTo(dst[n..]);
            n += k;
        }
        return n;
    }

    public override long TrySend(MsgHdr* msg, int flags, long alreadySent)
    {
        if (_conn is not { } c) return -Errno.ENOTCONN;
        if (c.Error is not TcpError.None and var e)
        {
            if (!_errorDelivered && e is TcpError.Reset or TcpError.TimedOut) { _errorDelivered = true; return -ErrorOf(e); }
            return Broken(flags);
        }
        if (c.State is TcpState.SynSent or TcpState.SynReceived) return -Errno.EAGAIN;
        if (_shutWrite || c.State is not (TcpState.Established or TcpState.CloseWait)) return Broken(flags);
        // MSG_ZEROCOPY counts only on a socket with SO_ZEROCOPY set; elsewhere it is ignored (msg_zerocopy.rst).
        bool zc = ZeroCopy && (flags & Abi.MSG_ZEROCOPY) != 0;
        if (zc && alreadySent == 0) { _zcTaken = 0; _zcCopy = TotalLength(msg) < c.ZeroCopyThreshold; }
        long total = 0, skip = alreadySent;
        for (nuint i = 0; i < msg->IovLength; i++)
        {
            long len = (long)msg->Iov[i].Length;
            if (skip >= len) { skip -= len; continue; }
            byte* at = (byte*)msg->Iov[i].Base + skip;
            int length = (int)Math.Min(len - skip, int.MaxValue);
            skip = 0;
            int n;
            if (!zc || _zcCopy) n = c.Send(new ReadOnlySpan<byte>(at, length));
            else
            {
                n = c.SendReferenced(new LentMemory(at, length).Memory, copy: false);
                // Less room than a worthwhile reference: copy what fits rather than report a
                // writable socket that takes nothing.
                if (n == 0) n = c.Send(new ReadOnlySpan<byte>(at, length));
            }
            total += n;
            if (zc) _zcTaken += n;
            if (n < length) break;
        }
        return total == 0 && TotalLength(msg) > alreadySent ? -Errno.EAGAIN : total;
    }

    public override void EndSendCall()
    {
        if (_zcTaken == 0 || _conn is not { } c) return;
        _zcTaken = 0;
        c.EndZeroCopySend(_zcCopy);
        if (c.HasZeroCopyCompletions) Changed();
    }

    public override long ReadErrorQueue(MsgHdr* msg)
    {
        if (_conn is not { } c || !c.TryTakeZeroCopyCompletion(out var done)) return -Errno.EAGAIN;
        return ErrorQueue.Deliver(msg, done);
    }

    /// <summary>A send on a connection that can no longer send: EPIPE, with SIGPIPE unless MSG_NOSIGNAL.</summary>
    private static long Broken(int flags)
    {
        if ((flags & Abi.MSG_NOSIGNAL) == 0) Engine.RaiseSigPipe();
        return -Errno.EPIPE;
    }

    public override int TakeError()
    {
        int e = _pendingError;
        _pendingError = 0;
        if (e == 0 && _conn is { Error: not TcpError.None } c && !_errorDelivered && c.Error != TcpError.Aborted)
        {
            _errorDelivered = true;
            _refusedReported = true;
            return ErrorOf(c.Error);
        }
        return e;
    }

    public override int ReadableBytes() => _conn?.Available ?? 0;

    public override long GetProtocolOption(int level, int name, byte* value, uint* length)
    {
        if (level == Abi.IPPROTO_TCP)
        {
            switch (name)
            {
                case Abi.TCP_NODELAY: return Options.WriteInt(value, length, _noDelay ? 1 : 0);
                case Abi.TCP_KEEPIDLE: return Options.WriteInt(value, length, _keepIdle);
                case Abi.TCP_KEEPINTVL: return Options.WriteInt(value, length, _keepInterval);
                case Abi.TCP_KEEPCNT: return Options.WriteInt(value, length, _keepCount);
                case Abi.TCP_MAXSEG: return Options.WriteInt(value, length, _conn?.MaxSegmentSize ?? 536);
                case Abi.TCP_INFO: return TcpInfo.Write(_conn, _listener is not null, value, length);
            }
        }
        return -Errno.ENOPROTOOPT;
    }

    public override long SetProtocolOption(int level, int name, int value)
    {
        if (level != Abi.IPPROTO_TCP) return -Errno.ENOPROTOOPT;
        switch (name)
        {
            case Abi.TCP_NODELAY:
                _noDelay = value != 0;
                if (_conn is { } c) c.NoDelay = _noDelay;
                return 0;
            case Abi.TCP_KEEPIDLE when value is >= 1 and <= 32767: _keepIdle = value; return 0;
            case Abi.TCP_KEEPINTVL when value is >= 1 and <= 32767: _keepInterval = value; return 0;
            case Abi.TCP_KEEPCNT when value is >= 1 and <= 127: _keepCount = value; return 0;
            case Abi.TCP_KEEPIDLE or Abi.TCP_KEEPINTVL or Abi.TCP_KEEPCNT: return -Errno.EINVAL;
            case Abi.TCP_MAXSEG: return 0; // accepted and ignored before connect, as a hint
        }
        return -Errno.ENOPROTOOPT;
    }

    public bool IsListening => _listener is not null;
    public bool IsConnecting => _conn is { State: TcpState.SynSent or TcpState.SynReceived };
}
