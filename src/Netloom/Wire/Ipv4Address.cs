using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Netloom.Wire;

/// <summary>An IPv4 address held as a host-order uint (10.0.0.1 is 0x0A000001).</summary>
public readonly record struct Ipv4Address(uint Value) : IComparable<Ipv4Address>
{
    public static readonly Ipv4Address Any = new(0);
    public static readonly Ipv4Address Broadcast = new(0xFFFFFFFF);
    public static readonly Ipv4Address Loopback = new(0x7F000001);

    public Ipv4Address(byte a, byte b, byte c, byte d) : this((uint)(a << 24 | b << 16 | c << 8 | d)) { }

    /// <summary>
    /// The IPv4 address <paramref name="address"/> holds; an IPv4-mapped IPv6 address (::ffff:a.b.c.d,
    /// as dual-mode sockets report) counts as IPv4. Throws <see cref="ArgumentException"/> for any
    /// other IPv6 address (the IPv6 forms of the API take <see cref="Ipv6Address"/>).
    /// </summary>
    public static Ipv4Address FromIPAddress(IPAddress address, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(address))] string? paramName = null)
    {
        ArgumentNullException.ThrowIfNull(address, paramName);
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetwork)
            throw new ArgumentException($"{address} is an {address.AddressFamily} address where an IPv4 address is needed (the IPv6 forms take Ipv6Address or IPAddress)", paramName);
        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return Read(bytes);
    }

    /// <summary>The same address as a <see cref="IPAddress"/> (a new object each call).</summary>
    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[4];
        Write(bytes);
        return new IPAddress(bytes);
    }

    /// <summary>See <see cref="FromIPAddress"/>: throws <see cref="ArgumentException"/> for IPv6.</summary>
    public static explicit operator Ipv4Address(IPAddress address) => FromIPAddress(address);
    public static explicit operator IPAddress(Ipv4Address address) => address.ToIPAddress();

    public static Ipv4Address Read(ReadOnlySpan<byte> bytes) => new(BinaryPrimitives.ReadUInt32BigEndian(bytes));
    public void Write(Span<byte> bytes) => BinaryPrimitives.WriteUInt32BigEndian(bytes, Value);

    public bool IsUnspecified => Value == 0;
    public bool IsBroadcast => Value == 0xFFFFFFFF;
    public bool IsMulticast => (Value >> 28) == 0xE;
    public bool IsLoopback => (Value >> 24) == 127;

    /// <summary>True when both addresses fall in the same prefix of the given length.</summary>
    public bool SameSubnet(Ipv4Address other, int prefixLength) =>
        prefixLength == 0 || (Value ^ other.Value) >> (32 - prefixLength) == 0;

    public int CompareTo(Ipv4Address other) => Value.CompareTo(other.Value);

    public static bool TryParse(ReadOnlySpan<char> text, out Ipv4Address address)
    {
        address = default;
        uint v = 0;
        for (int part = 0; part < 4; part++)
        {
            int dot = text.IndexOf('.');
            var piece = part < 3 ? (dot < 0 ? ReadOnlySpan<char>.Empty : text[..dot]) : text;
            if (piece.IsEmpty || piece.Length > 3) return false;
            if (!uint.TryParse(piece, NumberStyles.None, CultureInfo.InvariantCulture, out uint octet) || octet > 255) return false;
            v = v << 8 | octet;
            if (part < 3) text = text[(dot + 1)..];
        }
        address = new Ipv4Address(v);
        return true;
    }

    public static Ipv4Address Parse(string text) =>
        TryParse(text, out var a) ? a : throw new FormatException($"'{text}' is not an IPv4 address (expected dotted quad such as 10.0.0.1)");

    public bool TryFormat(Span<char> destination, out int written)
    {
        written = 0;
        for (int i = 0; i < 4; i++)
        {
            if (i > 0)
            {
                if (written >= destination.Length) return false;
                destination[written++] = '.';
            }
            if (!((byte)(Value >> (24 - 8 * i))).TryFormat(destination[written..], out int n, default, CultureInfo.InvariantCulture)) return false;
            written += n;
        }
        return true;
    }

    public override string ToString()
    {
        Span<char> buf = stackalloc char[15];
        TryFormat(buf, out int n);
        return new string(buf[..n]);
    }
}
