using Netloom.Run.Native;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Run;

/// <summary>
/// A SOCK_DGRAM socket over a <see cref="UdpBinding"/>, bound on first use as the kernel binds
/// (an ephemeral port at the first send or connect). A datagram taken out for MSG_PEEK or
/// FIONREAD is held until a receive takes it.
/// </summary>
internal sealed unsafe class UdpRunSocket(Engine engine, int family) : RunSocket(engine, Abi.SOCK_DGRAM, family)
{
    public const int MaxDatagram = 65507;
    /// <summary>The largest datagram that arrives: an IPv6 payload of 65,535 bytes less the UDP header.</summary>
    private const int MaxReceived = 65527;
    [ThreadStatic] private static byte[]? _scratch;
    private UdpBinding? _binding;
    // 0.0.0.0 (IPv4-mapped) for AF_INET, :: for AF_INET6 until bind says otherwise.
    private IpAddr _bindAddress = family == Abi.AF_INET ? IpAddr.FromIpv4(Ipv4Address.Any) : default;
    private bool _connected, _shutRead, _shutWrite;
    private IpAddr _peer;
    private ushort _peerPort;
    private int _pendingError;
    // The held datagram (MSG_PEEK, FIONREAD).
    private byte[]? _held;
    private int _heldLength = -1;
    private IpAddr _heldFrom;
    private ushort _heldPort;

    // MSG_ZEROCOPY: datagrams are gathered into the stack's frame by copying, so each send
    // completes at once, reported as copied (SO_EE_CODE_ZEROCOPY_COPIED).
    private readonly ZeroCopyLog _completions = new();
    private uint _zeroCopyNext;

    private static byte[] Scratch => _scratch ??= new byte[MaxReceived + 1];

    public override bool IsBound => _binding is not null;

    /// <summary>
    /// Whether a datagram from <paramref name="from"/> is this socket's: the binding takes both
    /// versions on its port, so an AF_INET socket drops IPv6 senders, an IPV6_V6ONLY one IPv4
    /// senders; a connected socket drops everyone but its peer. (The filter is here rather than
    /// in the binding, so that connect with AF_UNSPEC simply ends it.)
    /// </summary>
    private bool Takes(IpAddr from, ushort port) =>
        TakesFrom(from, _bindAddress) && (!_connected || (from == _peer && port == _peerPort));

    /// <summary>The next datagram this socket takes (others are dropped on the way), into <paramref name="buffer"/>.</summary>
    private bool TryTake(byte[] buffer, out int length, out IpAddr from, out ushort port)
    {
        while (_binding!.TryReceiveAny(buffer, out length, out from, out port))
            if (Takes(from, port)) return true;
        return false;
    }

    public override short Readiness()
    {
        TakeIcmpErrors();
        short r = Abi.POLLOUT;
        if (_heldLength >= 0 || (_binding is { } b && b.QueuedDatagrams > 0) || _shutRead) r |= Abi.POLLIN;
        if (_pendingError != 0 || !_completions.IsEmpty) r |= Abi.POLLERR;
        return r;
    }

    private long EnsureBound(ushort port)
    {
        if (_binding is not null) return 0;
        try
        {
            _binding = Engine.Interface.OpenUdp(port, Math.Clamp(ReceiveBuffer, 4096, 16 << 20));
            _binding.Observer = this;
            return 0;
        }
        catch (InvalidOperationException) { return -Errno.EADDRINUSE; }
    }

    public override long Bind(byte* addr, uint length, int fd)
    {
        long bad = SockAddr.Read(Family, addr, length, out var address, out var port, out uint scope);
        if (bad < 0) return bad;
        if (_binding is not null) return -Errno.EINVAL;
        long where = Engine.CheckBind(this, address, scope, broadcastOk: true);
        if (where == Abi.Kernel) return Engine.HandOver(fd);
        if (where < 0) return where;
        _bindAddress = address;
        return EnsureBound(port);
    }

    public override long Connect(byte* addr, uint length, int fd)
    {
        if (addr is not null && length >= 2 && *(ushort*)addr == 0) // AF_UNSPEC: dissolve the association
        {
            _connected = false;
            _binding?.Disconnect();
            return 0;
        }
        long bad = ReadAddress(addr, length, out var address, out var port, out uint scope);
        if (bad < 0) return bad;
        long where = Route(address, scope);
        if (where == Abi.Kernel)
        {
            if (_binding is not null) return -Errno.ENETUNREACH;
            return Engine.HandOver(fd);
        }
        if (where < 0) return where;
        long r = EnsureBound(0);
        if (r < 0) return r;
        _peer = address;
        _peerPort = port;
        _connected = true;
        _binding!.Connect(address, port); // so the binding turns an ICMP error about a datagram to the peer into a pending error
        return 0;
    }

    /// <summary>
    /// An address given to connect or sendto. An AF_INET6 socket also takes a sockaddr_in (as
    /// ip6_datagram_connect and udpv6_sendmsg do) unless it is IPV6_V6ONLY.
    /// </summary>
    private long ReadAddress(byte* addr, uint length, out IpAddr address, out ushort port, out uint scope)
    {
        if (Family == Abi.AF_INET6 && addr is not null && length >= 2 && *(ushort*)addr == Abi.AF_INET)
        {
            scope = 0;
            long r = SockAddr.Read(Abi.AF_INET, addr, length, out address, out port, out _);
            return r == 0 && V6Only ? -Errno.ENETUNREACH : r;
        }
        return SockAddr.Read(Family, addr, length, out address, out port, out scope);
    }

    /// <summary>0 when the stack serves the destination, <see cref="Abi.Kernel"/> when the kernel does, or -errno.</summary>
    private long Route(IpAddr to, uint scope)
    {
        if (!to.IsIpv4) return Engine.Route6(to.Ipv6, scope);
        if (Family == Abi.AF_INET6 && V6Only) return -Errno.ENETUNREACH;
        return Engine.Serves(to.Ipv4) ? 0 : Abi.Kernel;
    }

    public override long Shutdown(int how)
    {
        if (how is < Abi.SHUT_RD or > Abi.SHUT_RDWR) return -Errno.EINVAL;
        if (!_connected) return -Errno.ENOTCONN;
        if (how != Abi.SHUT_WR) _shutRead = true;
        if (how != Abi.SHUT_RD) _shutWrite = true;
        Changed();
        return 0;
    }

    public override long Close()
    {
        _binding?.Close();
        _binding = null;
        Changed();
        return 0;
    }

    public override long GetSockName(byte* addr, uint* length)
    {
        WriteAddress(addr, length, _bindAddress, _binding?.LocalPort ?? 0);
        return 0;
    }

    public override long GetPeerName(byte* addr, uint* length)
    {
        if (!_connected) return -Errno.ENOTCONN;
        WriteAddress(addr, length, _peer, _peerPort);
        return 0;
    }

    /// <summary>The binding's hard ICMP error about a datagram to the connected peer (it matches the quoted addresses and ports), as an errno.</summary>
    private void TakeIcmpErrors()
    {
        if (_binding is null) return;
        switch (_binding.TakePendingError())
        {
            case System.Net.Sockets.SocketError.ConnectionRefused: _pendingError = Errno.ECONNREFUSED; break;
            case System.Net.Sockets.SocketError.ProtocolOption: _pendingError = Errno.ENOPROTOOPT; break;
            case System.Net.Sockets.SocketError.AccessDenied: _pendingError = Errno.EACCES; break;
        }
    }

    public override long TryReceive(MsgHdr* msg, int flags)
    {
        TakeIcmpErrors();
        if (_pendingError != 0) { int e = _pendingError; _pendingError = 0; return -e; }
        if (_shutRead && _heldLength < 0 && (_binding is null || _binding.QueuedDatagrams == 0)) return 0;
        ReadOnlySpan<byte> data;
        IpAddr from;
        ushort port;
        bool peek = (flags & Abi.MSG_PEEK) != 0;
        if (_heldLength >= 0)
        {
            data = _held.AsSpan(0, _heldLength);
            from = _heldFrom;
            port = _heldPort;
            if (!peek) _heldLength = -1;
        }
        else
        {
            if (_binding is null) return -Errno.EAGAIN;
            byte[] buffer = peek ? (_held ??= new byte[MaxReceived + 1]) : Scratch;
            if (!TryTake(buffer, out int n, out from, out port)) return -Errno.EAGAIN;
            data = buffer.AsSpan(0, n);
            if (peek) { _heldLength = n; _heldFrom = from; _heldPort = port; }
        }
        // Scatter into the iovecs; the rest of a datagram is discarded (MSG_TRUNC says so).
        int copied = 0;
        for (nuint i = 0; i < msg->IovLength && copied < data.Length; i++)
        {
            int room = (int)Math.Min(msg->Iov[i].Length, int.MaxValue);
            int k = Math.Min(room, data.Length - copied);
            data.Slice(copied, k).CopyTo(new Span<byte>(msg->Iov[i].Base, k));
            copied += k;
        }
        msg->Flags = copied < data.Length ? Abi.MSG_TRUNC : 0;
        if (msg->Name is not null)
        {
            uint len = msg->NameLength;
            WriteAddress((byte*)msg->Name, &len, from, port);
            msg->NameLength = len;
        }
        return (flags & Abi.MSG_TRUNC) != 0 ? data.Length : copied;
    }

    public override long TrySend(MsgHdr* msg, int flags, long alreadySent)
    {
        if (_shutWrite)
        {
            if ((flags & Abi.MSG_NOSIGNAL) == 0) Engine.RaiseSigPipe();
            return -Errno.EPIPE;
        }
        IpAddr to;
        ushort port;
        // AF_UNSPEC as the name of an AF_INET6 socket's datagram means "no name" (udpv6_sendmsg).
        bool named = msg->Name is not null && msg->NameLength > 0
            && !(Family == Abi.AF_INET6 && msg->NameLength >= 2 && *(ushort*)msg->Name == 0);
        if (named)
        {
            if (Family == Abi.AF_INET6 && msg->NameLength < 2) return -Errno.EINVAL;
            long bad = ReadAddress((byte*)msg->Name, msg->NameLength, out to, out port, out uint scope);
            if (bad == -Errno.EAFNOSUPPORT && Family == Abi.AF_INET6) return -Errno.EINVAL; // udpv6_sendmsg: an unknown family is EINVAL
            if (bad < 0) return bad;
            // A fresh socket's first datagram to loopback or off every route: the socket becomes
            // the kernel's (the engine hands it over); a socket already in use cannot move.
            long where = Route(to, scope);
            if (where == Abi.Kernel) return _binding is null ? Abi.Kernel : -Errno.ENETUNREACH;
            if (where < 0) return where;
        }
        else if (_connected) { to = _peer; port = _peerPort; }
        else return -Errno.EDESTADDRREQ;
        long total = TotalLength(msg);
        if (total > MaxDatagram) return -Errno.EMSGSIZE;
        long r = EnsureBound(0);
        if (r < 0) return r;
        // Gather the iovecs into one datagram.
        byte[] buffer = Scratch;
        int at = 0;
        for (nuint i = 0; i < msg->IovLength; i++)
        {
            int k = (int)msg->Iov[i].Length;
            new ReadOnlySpan<byte>(msg->Iov[i].Base, k).CopyTo(buffer.AsSpan(at));
            at += k;
        }
        // A datagram the stack drops is lost, as on a full NIC queue.
        if (to.IsIpv4) _binding!.SendTo(buffer.AsSpan(0, at), to.Ipv4, port);
        else _binding!.SendTo(buffer.AsSpan(0, at), to.Ipv6, port);
        Engine.Interface.FlushOutput(); // out now, not at the owner thread's next poll
        if (ZeroCopy && (flags & Abi.MSG_ZEROCOPY) != 0 && at > 0)
        {
            _completions.Complete(_zeroCopyNext++, copied: true);
            Changed(); // its completion makes the socket POLLERR: pollers and epoll sets look again
        }
        return at;
    }

    public override long ReadErrorQueue(MsgHdr* msg) =>
        _completions.TryTake(out var done) ? ErrorQueue.Deliver(msg, done) : -Errno.EAGAIN;

    public override int TakeError()
    {
        TakeIcmpErrors();
        int e = _pendingError;
        _pendingError = 0;
        return e;
    }

    /// <summary>FIONREAD on a datagram socket: the size of the next datagram (0 if none).</summary>
    public override int ReadableBytes()
    {
        if (_heldLength >= 0) return _heldLength;
        if (_binding is null || _binding.QueuedDatagrams == 0) return 0;
        var held = _held ??= new byte[MaxReceived + 1];
        if (!TryTake(held, out int n, out _heldFrom, out _heldPort)) return 0;
        _heldLength = n;
        return n;
    }
}
