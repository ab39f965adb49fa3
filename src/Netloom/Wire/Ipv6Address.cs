using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Netloom.Wire;

/// <summary>An IPv6 address held as a 128-bit number in wire order (2001:db8::1 is 0x20010db8...0001).</summary>
public readonly record struct Ipv6Address(UInt128 Value)
{
    public static readonly Ipv6Address Unspecified = default;
    public static readonly Ipv6Address Loopback = new(UInt128.One);
    /// <summary>ff02::1, all nodes on the link (RFC 4291 §2.7.1).</summary>
    public static readonly Ipv6Address AllNodes = new(new UInt128(0xFF02_0000_0000_0000UL, 1));
    /// <summary>ff02::2, all routers on the link.</summary>
    public static readonly Ipv6Address AllRouters = new(new UInt128(0xFF02_0000_0000_0000UL, 2));
    /// <summary>ff02::16, where MLDv2 reports go (RFC 3810 §5.2.14).</summary>
    public static readonly Ipv6Address AllMldv2Routers = new(new UInt128(0xFF02_0000_0000_0000UL, 0x16));

    public Ipv6Address(ulong high, ulong low) : this(new UInt128(high, low)) { }

    public static Ipv6Address Read(ReadOnlySpan<byte> bytes) => new(BinaryPrimitives.ReadUInt128BigEndian(bytes));
    public void Write(Span<byte> bytes) => BinaryPrimitives.WriteUInt128BigEndian(bytes, Value);

    public ulong High => (ulong)(Value >> 64);
    public ulong Low => (ulong)Value;

    public bool IsUnspecified => Value == UInt128.Zero;
    public bool IsLoopback => Value == UInt128.One;
    public bool IsMulticast => High >> 56 == 0xFF;
    /// <summary>fe80::/10 (RFC 4291 §2.5.6).</summary>
    public bool IsLinkLocal => High >> 54 == 0xFE80 >> 6;
    /// <summary>A multicast address of link-local scope (ff02::/16 and the like: scope 2).</summary>
    public bool IsLinkScopeMulticast => IsMulticast && (High >> 48 & 0xF) == 2;
    /// <summary>::ffff:0:0/96, an IPv4 address carried in IPv6 form (RFC 4291 §2.5.5.2).</summary>
    public bool IsIpv4Mapped => High == 0 && Low >> 32 == 0xFFFF;

    /// <summary>The solicited-node multicast address ff02::1:ffXX:XXXX of this address (RFC 4291 §2.7.1).</summary>
    public Ipv6Address SolicitedNode => new(0xFF02_0000_0000_0000UL, 0x0000_0001_FF00_0000UL | (Low & 0xFF_FFFF));

    /// <summary>The Ethernet address a multicast IPv6 address maps to: 33:33 and its low 32 bits (RFC 2464 §7).</summary>
    public MacAddress MulticastMac => MacAddress.FromUInt64(0x3333_0000_0000UL | (uint)Low);

    /// <summary>True when both addresses fall in the same prefix of the given length (0 to 128).</summary>
    public bool SameSubnet(Ipv6Address other, int prefixLength) =>
        prefixLength <= 0 || (prefixLength >= 128 ? Value == other.Value : (Value ^ other.Value) >> (128 - prefixLength) == UInt128.Zero);

    /// <summary>This address with every bit past <paramref name="prefixLength"/> cleared.</summary>
    public Ipv6Address Prefix(int prefixLength) =>
        prefixLength <= 0 ? default : prefixLength >= 128 ? this : new(Value & ~(UInt128.MaxValue >> prefixLength));

    /// <summary>A /64 prefix with a modified EUI-64 interface identifier from a MAC (RFC 4291 appendix A, RFC 2464 §4).</summary>
    public static Ipv6Address FromPrefixAndMac(Ipv6Address prefix, MacAddress mac)
    {
        ulong m = mac.ToUInt64();
        ulong iid = (m >> 24 << 40) | 0xFF_FE00_0000UL | (m & 0xFF_FFFF);
        iid ^= 0x0200_0000_0000_0000UL; // flip the universal/local bit
        return new(prefix.High, iid);
    }

    /// <summary>The link-local address fe80::/64 with the MAC's modified EUI-64 identifier.</summary>
    public static Ipv6Address LinkLocalFromMac(MacAddress mac) => FromPrefixAndMac(new Ipv6Address(0xFE80_0000_0000_0000UL, 0), mac);

    /// <summary>The IPv6 address <paramref name="address"/> holds; an IPv4 address becomes IPv4-mapped.</summary>
    public static Ipv6Address FromIPAddress(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily == AddressFamily.InterNetwork) address = address.MapToIPv6();
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out _);
        return Read(b);
    }

    public IPAddress ToIPAddress()
    {
        Span<byte> b = stackalloc byte[16];
        Write(b);
        return new IPAddress(b);
    }

    public static explicit operator Ipv6Address(IPAddress address) => FromIPAddress(address);
    public static explicit operator IPAddress(Ipv6Address address) => address.ToIPAddress();

    /// <summary>Parses RFC 4291 §2.2 text (with "::", and an embedded dotted quad); no zone, no prefix.</summary>
    public static bool TryParse(string? text, out Ipv6Address address)
    {
        address = default;
        if (string.IsNullOrEmpty(text) || text.Contains('%') || !text.Contains(':')) return false;
        if (!IPAddress.TryParse(text, out var ip) || ip.AddressFamily != AddressFamily.InterNetworkV6) return false;
        address = FromIPAddress(ip);
        return true;
    }

    public static Ipv6Address Parse(string text) =>
        TryParse(text, out var a) ? a : throw new FormatException($"'{text}' is not an IPv6 address (expected such as 2001:db8::1)");

    /// <summary>RFC 5952 text (lowercase, the longest run of zeros as "::").</summary>
    public override string ToString() => ToIPAddress().ToString();
}
