using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>getsockopt and setsockopt: the socket-level options here, the protocol's in the socket.</summary>
internal sealed unsafe partial class Engine
{
    public long GetSockOpt(int fd, int level, int name, byte* value, uint* length)
    {
        lock (Lock)
        {
            Advance();
            if (Get(fd) is not { } s) return -Errno.EBADF;
            if (level == Abi.SOL_SOCKET)
            {
                switch (name)
                {
                    case Abi.SO_TYPE: return Options.WriteInt(value, length, s.Type);
                    case Abi.SO_ERROR: return Options.WriteInt(value, length, s.TakeError());
                    case Abi.SO_DOMAIN: return Options.WriteInt(value, length, s.Family);
                    case Abi.SO_PROTOCOL: return Options.WriteInt(value, length, s.Type == Abi.SOCK_STREAM ? Abi.IPPROTO_TCP : Abi.IPPROTO_UDP);
                    case Abi.SO_ACCEPTCONN: return Options.WriteInt(value, length, s is TcpRunSocket { IsListening: true } ? 1 : 0);
                    case Abi.SO_REUSEADDR: return Options.WriteInt(value, length, s.ReuseAddress ? 1 : 0);
                    case Abi.SO_REUSEPORT: return Options.WriteInt(value, length, s.ReusePort ? 1 : 0);
                    case Abi.SO_KEEPALIVE: return Options.WriteInt(value, length, s.KeepAlive ? 1 : 0);
                    case Abi.SO_RCVBUF: return Options.WriteInt(value, length, s.ReceiveBuffer);
                    case Abi.SO_SNDBUF: return Options.WriteInt(value, length, s.SendBuffer);
                    case Abi.SO_ZEROCOPY: return Options.WriteInt(value, length, s.ZeroCopy ? 1 : 0);
                    case Abi.SO_LINGER:
                    {
                        Span<int> l = [s.LingerOn, s.LingerSeconds];
                        return Options.WriteBytes(value, length, System.Runtime.InteropServices.MemoryMarshal.AsBytes(l));
                    }
                    case Abi.SO_RCVTIMEO: return WriteTimeval(value, length, s.ReceiveTimeoutNs);
                    case Abi.SO_SNDTIMEO: return WriteTimeval(value, length, s.SendTimeoutNs);
                }
                return -Errno.ENOPROTOOPT;
            }
            if (level == Abi.IPPROTO_IP && name == Abi.IP_TOS) return Options.WriteInt(value, length, s.Tos);
            if (level == Abi.IPPROTO_IPV6) return GetIpv6Option(s, name, value, length);
            return s.GetProtocolOption(level, name, value, length);
        }
    }

    public long SetSockOpt(int fd, int level, int name, byte* value, uint length)
    {
        long r;
        lock (Lock)
        {
            if (Get(fd) is not { } s) return -Errno.EBADF;
            r = Set(s, level, name, value, length);
        }
        // The placeholder gets the option too, so a socket handed over to the kernel keeps it.
        if (r == 0) Libc.SetSockOpt(fd, level, name, value, length);
        return r;
    }

    private static long Set(RunSocket s, int level, int name, byte* value, uint length)
    {
        if (level == Abi.SOL_SOCKET && name is Abi.SO_LINGER)
        {
            if (value is null || length < 8) return -Errno.EINVAL;
            s.LingerOn = ((int*)value)[0] != 0 ? 1 : 0;
            s.LingerSeconds = Math.Max(0, ((int*)value)[1]);
            return 0;
        }
        if (level == Abi.SOL_SOCKET && name is Abi.SO_RCVTIMEO or Abi.SO_SNDTIMEO)
        {
            if (value is null || length < 16) return -Errno.EINVAL;
            long sec = ((long*)value)[0], usec = ((long*)value)[1];
            if (usec is < 0 or >= 1_000_000) return -Errno.EDOM;
            if (sec < 0) sec = usec = 0; // Linux: a negative time means no timeout
            long ns = sec * 1_000_000_000 + usec * 1000;
            if (name == Abi.SO_RCVTIMEO) s.ReceiveTimeoutNs = ns; else s.SendTimeoutNs = ns;
            return 0;
        }
        if (!Options.TryReadInt(value, length, out int v)) return -Errno.EINVAL;
        if (level == Abi.SOL_SOCKET)
        {
            switch (name)
            {
                case Abi.SO_REUSEADDR: s.ReuseAddress = v != 0; return 0;
                case Abi.SO_REUSEPORT: s.ReusePort = v != 0; return 0;
                case Abi.SO_KEEPALIVE: s.KeepAlive = v != 0; return 0;
                case Abi.SO_ZEROCOPY when v is 0 or 1: s.ZeroCopy = v == 1; return 0; // as sock_setsockopt: a boolean, 0 or 1
                case Abi.SO_ZEROCOPY: return -Errno.EINVAL;
                // As Linux: the value is doubled for bookkeeping, with a floor.
                case Abi.SO_RCVBUF: s.ReceiveBuffer = Math.Max(2304, (int)Math.Min(2L * Math.Max(0, v), 1 << 26)); s.ReceiveBufferSet = true; return 0;
                case Abi.SO_SNDBUF: s.SendBuffer = Math.Max(4608, (int)Math.Min(2L * Math.Max(0, v), 1 << 26)); s.SendBufferSet = true; return 0;
            }
            return -Errno.ENOPROTOOPT;
        }
        if (level == Abi.IPPROTO_IP && name == Abi.IP_TOS) { s.Tos = v & 0xFC; return 0; }
        if (level == Abi.IPPROTO_IPV6) return SetIpv6Option(s, name, v);
        return s.SetProtocolOption(level, name, v);
    }

    /// <summary>
    /// IPPROTO_IPV6 options (ipv6(7)) on AF_INET6 sockets; an AF_INET socket answers as Linux's
    /// does (getsockopt EOPNOTSUPP, setsockopt ENOPROTOOPT). IPV6_V6ONLY decides what the socket
    /// speaks; the hop limits, traffic class, multicast loop and path MTU discovery mode are
    /// checked as do_ipv6_setsockopt checks them and recorded (the stack puts its own values on
    /// the wire). The rest, options that promise ancillary data or multicast membership
    /// (IPV6_RECVPKTINFO, IPV6_ADD_MEMBERSHIP...) among them, answer EOPNOTSUPP, the kernel's
    /// answer for an option it does not have, so a program that needs one learns it at once
    /// rather than waiting for control messages that never come.
    /// </summary>
    private static long GetIpv6Option(RunSocket s, int name, byte* value, uint* length)
    {
        if (s.Family != Abi.AF_INET6) return -Errno.EOPNOTSUPP;
        switch (name)
        {
            case Abi.IPV6_V6ONLY: return Options.WriteInt(value, length, s.V6Only ? 1 : 0);
            case Abi.IPV6_UNICAST_HOPS: return Options.WriteInt(value, length, s.UnicastHops >= 0 ? s.UnicastHops : 64);
            case Abi.IPV6_TCLASS: return Options.WriteInt(value, length, s.TrafficClass);
            case Abi.IPV6_MULTICAST_HOPS: return Options.WriteInt(value, length, s.MulticastHops);
            case Abi.IPV6_MULTICAST_LOOP: return Options.WriteInt(value, length, s.MulticastLoop);
            case Abi.IPV6_MTU_DISCOVER: return Options.WriteInt(value, length, s.PmtuDiscover);
        }
        return -Errno.EOPNOTSUPP;
    }

    private static long SetIpv6Option(RunSocket s, int name, int v)
    {
        if (s.Family != Abi.AF_INET6) return -Errno.ENOPROTOOPT;
        switch (name)
        {
            case Abi.IPV6_V6ONLY:
                if (s.IsBound) return -Errno.EINVAL; // as Linux: fixed once the socket has a port
                s.V6Only = v != 0;
                return 0;
            case Abi.IPV6_UNICAST_HOPS when v is >= -1 and <= 255: s.UnicastHops = v; return 0;
            case Abi.IPV6_MULTICAST_HOPS when v is >= -1 and <= 255: s.MulticastHops = v == -1 ? 1 : v; return 0;
            case Abi.IPV6_TCLASS when v is >= -1 and <= 255: s.TrafficClass = v == -1 ? 0 : v; return 0;
            case Abi.IPV6_MULTICAST_LOOP when v is 0 or 1: s.MulticastLoop = v; return 0;
            case Abi.IPV6_MTU_DISCOVER when v is >= 0 and <= 5: s.PmtuDiscover = v; return 0;
            case Abi.IPV6_UNICAST_HOPS or Abi.IPV6_MULTICAST_HOPS or Abi.IPV6_TCLASS or Abi.IPV6_MULTICAST_LOOP or Abi.IPV6_MTU_DISCOVER:
                return -Errno.EINVAL;
        }
        return -Errno.EOPNOTSUPP;
    }

    private static long WriteTimeval(byte* value, uint* length, long ns)
    {
        Span<long> tv = [ns / 1_000_000_000, ns % 1_000_000_000 / 1000];
        return Options.WriteBytes(value, length, System.Runtime.InteropServices.MemoryMarshal.AsBytes(tv));
    }
}
