using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace Netloom.Wire;

/// <summary>A 48-bit Ethernet address, stored in the low 48 bits of a ulong in wire order.</summary>
public readonly record struct MacAddress
{
    private readonly ulong _value;

    private MacAddress(ulong value) => _value = value & 0xFFFF_FFFF_FFFFUL;

    public static readonly MacAddress Broadcast = new(0xFFFF_FFFF_FFFFUL);
    public static readonly MacAddress Zero = default;

    public MacAddress(byte a, byte b, byte c, byte d, byte e, byte f)
        : this(((ulong)a << 40) | ((ulong)b << 32) | ((ulong)c << 24) | ((ulong)d << 16) | ((ulong)e << 8) | f) { }

    public static MacAddress FromUInt64(ulong value) => new(value);

    /// <summary>Reads six bytes; the caller has checked the length.</summary>
    public static MacAddress Read(ReadOnlySpan<byte> bytes) =>
        new(((ulong)BinaryPrimitives.ReadUInt16BigEndian(bytes) << 32) | BinaryPrimitives.ReadUInt32BigEndian(bytes[2..]));

    public void Write(Span<byte> bytes)
    {
        BinaryPrimitives.WriteUInt16BigEndian(bytes, (ushort)(_value >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(bytes[2..], (uint)_value);
    }

    public ulong ToUInt64() => _value;
    public bool IsBroadcast => _value == 0xFFFF_FFFF_FFFFUL;
    /// <summary>The I/G bit: set for multicast and broadcast.</summary>
    public bool IsMulticast => (_value & (1UL << 40)) != 0;
    public bool IsUnicast => !IsMulticast;
    /// <summary>The U/L bit: set for locally administered addresses.</summary>
    public bool IsLocal => (_value & (1UL << 41)) != 0;

    public static bool TryParse(string? text, out MacAddress address)
    {
        address = default;
        if (text is null || text.Length != 17) return false;
        ulong v = 0;
        for (int i = 0; i < 6; i++)
        {
            if (i > 0 && text[i * 3 - 1] is not (':' or '-')) return false;
            int hi = HexValue(text[i * 3]), lo = HexValue(text[i * 3 + 1]);
            if (hi < 0 || lo < 0) return false;
            v = (v << 8) | (uint)(hi << 4 | lo);
        }
        address = new MacAddress(v);
        return true;
    }

    public static MacAddress Parse(string text) =>
        TryParse(text, out var a) ? a : throw new FormatException($"'{text}' is not a MAC address (expected six hex pairs such as 02:00:00:00:00:01)");

    private static int HexValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    public bool TryFormat(Span<char> destination, out int written)
    {
        written = 0;
        if (destination.Length < 17) return false;
        const string hex = "0123456789abcdef";
        for (int i = 0; i < 6; i++)
        {
            byte b = (byte)(_value >> (40 - 8 * i));
            if (i > 0) destination[i * 3 - 1] = ':';
            destination[i * 3] = hex[b >> 4];
            destination[i * 3 + 1] = hex[b & 0xF];
        }
        written = 17;
        return true;
    }

    public override string ToString()
    {
        Span<char> buf = stackalloc char[17];
        TryFormat(buf, out _);
        return new string(buf);
    }
}
