using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// An IP address of either version as TCP sees it: 128 opaque bits the IP layer gave it. TCP
/// only compares, hashes and hands them back, so an IPv6 layer can use the same sockets. IPv4
/// addresses are held IPv4-mapped (::ffff:a.b.c.d, RFC 4291 §2.5.5.2).
/// </summary>
internal readonly record struct IpAddr(UInt128 Bits)
{
    private const ulong MappedPrefix = 0xFFFF_0000_0000UL; // ::ffff:0:0/96

    public static IpAddr FromIpv4(Ipv4Address address) => new(new UInt128(0, MappedPrefix | address.Value));

    public static IpAddr FromIpv6(Ipv6Address address) => new(address.Value);

    /// <summary>An IPv4 address is an <see cref="IpAddr"/> without loss, so code written for IPv4 (ICMP errors, tests) reads unchanged.</summary>
    public static implicit operator IpAddr(Ipv4Address address) => FromIpv4(address);

    public bool IsIpv4 => Bits >> 32 == 0xFFFF;

    /// <summary>The IPv6 address (for the IPv6 layer); an IPv4 one comes out IPv4-mapped.</summary>
    public Ipv6Address Ipv6 => new(Bits);

    /// <summary>The IPv4 address of an IPv4-mapped value (for the IPv4 layer).</summary>
    public Ipv4Address Ipv4 => IsIpv4 ? new Ipv4Address((uint)Bits) : ThrowNotIpv4();

    private Ipv4Address ThrowNotIpv4() => throw new InvalidOperationException($"{this} is not an IPv4 address");

    /// <summary>The address as System.Net has it: IPv4 for an IPv4-mapped value, else IPv6.</summary>
    public System.Net.IPAddress ToIPAddress() => IsIpv4 ? Ipv4.ToIPAddress() : Ipv6.ToIPAddress();

    public override string ToString()
    {
        if (IsIpv4) return Ipv4.ToString();
        Span<byte> b = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(b, Bits);
        return new System.Net.IPAddress(b).ToString();
    }
}

/// <summary>One end of a TCP connection: an opaque address and a port.</summary>
internal readonly record struct TcpEndpoint(IpAddr Address, ushort Port)
{
    public override string ToString() => Address.IsIpv4 ? $"{Address}:{Port}" : $"[{Address}]:{Port}";
}
