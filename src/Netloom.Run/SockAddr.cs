using System.Buffers.Binary;
using Netloom.Run.Native;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Run;

/// <summary>
/// struct sockaddr_in and struct sockaddr_in6, read and written with the kernel's checks. An
/// address of either family is held as an <see cref="IpAddr"/>: an IPv4 one is IPv4-mapped
/// (::ffff:a.b.c.d), which is exactly what an AF_INET6 socket reports for an IPv4 peer.
/// </summary>
internal static unsafe class SockAddr
{
    public const int InLength = 16;
    /// <summary>sizeof(struct sockaddr_in6).</summary>
    public const int In6Length = 28;
    /// <summary>SIN6_LEN_RFC2133: a sockaddr_in6 without sin6_scope_id, the shortest the kernel takes.</summary>
    public const int In6MinLength = 24;
    // struct sockaddr_in6's fields (pinned against gcc by RunLayoutTests).
    public const int In6Port = 2, In6FlowInfo = 4, In6Addr = 8, In6ScopeId = 24;

    /// <summary>0, or -EINVAL / -EAFNOSUPPORT as the kernel answers a bad address.</summary>
    public static long Read(byte* p, uint length, out Ipv4Address address, out ushort port)
    {
        address = default;
        port = 0;
        if (p is null || length < 2) return -Errno.EINVAL;
        ushort family = *(ushort*)p;
        if (family != Abi.AF_INET) return -Errno.EAFNOSUPPORT;
        if (length < InLength) return -Errno.EINVAL;
        port = BinaryPrimitives.ReadUInt16BigEndian(new ReadOnlySpan<byte>(p + 2, 2));
        address = Ipv4Address.Read(new ReadOnlySpan<byte>(p + 4, 4));
        return 0;
    }

    /// <summary>
    /// An address given to a socket of <paramref name="family"/>: sockaddr_in for AF_INET (as
    /// <see cref="Read(byte*, uint, out Ipv4Address, out ushort)"/>), sockaddr_in6 for AF_INET6,
    /// where inet6_bind and tcp_v6_connect first want SIN6_LEN_RFC2133 bytes (EINVAL), then the
    /// family (EAFNOSUPPORT). The scope id is 0 when the caller's struct is too short to hold one.
    /// </summary>
    public static long Read(int family, byte* p, uint length, out IpAddr address, out ushort port, out uint scopeId)
    {
        scopeId = 0;
        if (family == Abi.AF_INET)
        {
            long r = Read(p, length, out var v4, out port);
            address = IpAddr.FromIpv4(v4);
            return r;
        }
        address = default;
        port = 0;
        if (p is null || length < In6MinLength) return -Errno.EINVAL;
        if (*(ushort*)p != Abi.AF_INET6) return -Errno.EAFNOSUPPORT;
        port = BinaryPrimitives.ReadUInt16BigEndian(new ReadOnlySpan<byte>(p + In6Port, 2));
        address = IpAddr.FromIpv6(Ipv6Address.Read(new ReadOnlySpan<byte>(p + In6Addr, 16)));
        if (length >= In6Length) scopeId = *(uint*)(p + In6ScopeId);
        return 0;
    }

    /// <summary>Writes as much as *length allows and sets *length to the full size, as the kernel does.</summary>
    public static void Write(byte* p, uint* length, Ipv4Address address, ushort port)
    {
        if (p is null || length is null) return;
        Span<byte> full = stackalloc byte[InLength];
        full.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(full, Abi.AF_INET);
        BinaryPrimitives.WriteUInt16BigEndian(full[2..], port);
        address.Write(full[4..]);
        int n = (int)Math.Min(*length, (uint)InLength);
        full[..n].CopyTo(new Span<byte>(p, n));
        *length = InLength;
    }

    /// <summary>
    /// The address as a socket of <paramref name="family"/> reports it: sockaddr_in (an IPv6
    /// address cannot reach an AF_INET socket; it would show as 0.0.0.0), or sockaddr_in6 with an
    /// IPv4 address IPv4-mapped and <paramref name="scopeId"/> on a link-local one.
    /// </summary>
    public static void Write(int family, byte* p, uint* length, IpAddr address, ushort port, uint scopeId)
    {
        if (family == Abi.AF_INET)
        {
            Write(p, length, address.IsIpv4 ? address.Ipv4 : Ipv4Address.Any, port);
            return;
        }
        if (p is null || length is null) return;
        Span<byte> full = stackalloc byte[In6Length];
        full.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(full, Abi.AF_INET6);
        BinaryPrimitives.WriteUInt16BigEndian(full[In6Port..], port);
        address.Ipv6.Write(full[In6Addr..]);
        if (address.Ipv6.IsLinkLocal) BinaryPrimitives.WriteUInt32LittleEndian(full[In6ScopeId..], scopeId);
        int n = (int)Math.Min(*length, (uint)In6Length);
        full[..n].CopyTo(new Span<byte>(p, n));
        *length = In6Length;
    }
}
