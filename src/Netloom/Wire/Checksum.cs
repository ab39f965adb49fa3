using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Netloom.Wire;

/// <summary>
/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit
/// big-endian words. Partial sums are <c>uint</c> values in the big-endian word domain, so a
/// pseudo-header can be added as plain numbers.
/// </summary>
internal static class Checksum
{
    /// <summary>
    /// Adds <paramref name="data"/> to a partial sum. An odd final byte is padded with zero as
    /// the low-order byte of its word; only the last chunk of a message may have odd length.
    /// </summary>
    public static uint Add(uint sum, ReadOnlySpan<byte> data)
    {
        // RFC 1071 2(B): the sum is byte-order independent, so we add native (little-endian)
        // words and swap the folded result once at the end.
        ulong le = SumNative(data);
        ushort folded = Fold16(le);
        return sum + BinaryPrimitives.ReverseEndianness(folded);
    }

    /// <summary>Adds a 32-bit value (an IPv4 address) as two words.</summary>
    public static uint Add(uint sum, uint value) => sum + (value >> 16) + (value & 0xFFFF);

    /// <summary>The IPv4 pseudo-header sum for TCP and UDP (RFC 793 §3.1, RFC 768).</summary>
    public static uint PseudoHeader(Ipv4Address source, Ipv4Address destination, byte protocol, int length) =>
        Add(Add(0, source.Value), destination.Value) + protocol + (uint)length;

    /// <summary>
    /// The IPv6 pseudo-header sum (RFC 8200 §8.1): both addresses, the upper-layer length as 32
    /// bits and the next header as 32 bits. <paramref name="destination"/> is the final one (after
    /// a routing header).
    /// </summary>
    public static uint PseudoHeader(Ipv6Address source, Ipv6Address destination, byte nextHeader, int length)
    {
        ulong s = Words(source.High) + Words(source.Low) + Words(destination.High) + Words(destination.Low)
            + ((uint)length >> 16) + ((uint)length & 0xFFFF) + nextHeader;
        s = (s & 0xFFFF_FFFF) + (s >> 32);
        return (uint)((s & 0xFFFF) + (s >> 16));
    }

    private static ulong Words(ulong v) => (v >> 48) + (v >> 32 & 0xFFFF) + (v >> 16 & 0xFFFF) + (v & 0xFFFF);

    /// <summary>An upper-layer checksum (TCP, UDP, ICMPv6) of <paramref name="message"/> under the IPv6 pseudo-header; zero over a message holding its own means it verifies.</summary>
    public static ushort Transport(Ipv6Address source, Ipv6Address destination, IpProtocol protocol, ReadOnlySpan<byte> message) =>
        Finish(Add(PseudoHeader(source, destination, (byte)protocol, message.Length), message));

    /// <summary>
    /// The TCP or UDP checksum of <paramref name="segment"/> (header and payload) under its IPv4
    /// pseudo-header. Over a segment that holds its own checksum, zero means it verifies.
    /// </summary>
    public static ushort Transport(Ipv4Address source, Ipv4Address destination, IpProtocol protocol, ReadOnlySpan<byte> segment) =>
        Finish(Add(PseudoHeader(source, destination, (byte)protocol, segment.Length), segment));

    /// <summary>Folds a partial sum to 16 bits and complements it: the value to put on the wire.</summary>
    public static ushort Finish(uint sum)
    {
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    /// <summary>
    /// Folds a sum to 16 bits without complementing it: what the checksum field of a frame whose
    /// checksum was left to the other end holds (the pseudo-header sum, as the kernel's
    /// CHECKSUM_PARTIAL and virtio-net's NEEDS_CSUM leave it). Summing the whole segment over that
    /// field then gives the real checksum (<see cref="PartialChecksum.Complete"/>).
    /// </summary>
    public static ushort Fold(uint sum) => (ushort)~Finish(sum);

    /// <summary>The checksum of a whole buffer.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => Finish(Add(0, data));

    /// <summary>True when a buffer that includes its checksum field sums to all ones.</summary>
    public static bool Verify(ReadOnlySpan<byte> data, uint initial = 0) => Finish(Add(initial, data)) == 0;

    /// <summary>
    /// RFC 1624 eqn. 3: the new checksum after one 16-bit word changed from
    /// <paramref name="oldWord"/> to <paramref name="newWord"/>: HC' = ~(~HC + ~m + m').
    /// </summary>
    public static ushort Update(ushort checksum, ushort oldWord, ushort newWord)
    {
        uint sum = (uint)(ushort)~checksum + (ushort)~oldWord + newWord;
        return Finish(sum);
    }

    /// <summary>RFC 1624 update for a 32-bit field such as an address.</summary>
    public static ushort Update(ushort checksum, uint oldValue, uint newValue)
    {
        uint sum = (uint)(ushort)~checksum
            + (ushort)~(oldValue >> 16) + (ushort)~(oldValue & 0xFFFF)
            + (newValue >> 16) + (newValue & 0xFFFF);
        return Finish(sum);
    }

    private static ushort Fold16(ulong s)
    {
        s = (s & 0xFFFF_FFFF) + (s >> 32);
        s = (s & 0xFFFF_FFFF) + (s >> 32);
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        return (ushort)s;
    }

    /// <summary>Sum of little-endian 32-bit words (and a tail) with end-around carries deferred.</summary>
    internal static ulong SumNative(ReadOnlySpan<byte> data)
    {
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint n = (nuint)data.Length, i = 0;
        ulong sum = 0;

        // Each 32-bit word is added as its two 16-bit halves into 32-bit lanes (a mask and a
        // shift, no cross-lane widening): a lane takes at most 0xFFFF per step, so it cannot
        // overflow within a block of 32768 steps; the lanes are folded into 64 bits per block.
        if (Vector512.IsHardwareAccelerated && n >= 256)
        {
            var mask = Vector512.Create(0xFFFFu);
            while (i + 128 <= n)
            {
                nuint stop = Math.Min(n - 127, i + 128 * (nuint)32768);
                Vector512<uint> lo0 = default, hi0 = default, lo1 = default, hi1 = default;
                for (; i < stop; i += 128)
                {
                    var v0 = Vector512.LoadUnsafe(ref p, i).AsUInt32();
                    var v1 = Vector512.LoadUnsafe(ref p, i + 64).AsUInt32();
                    lo0 += v0 & mask;
                    hi0 += v0 >> 16;
                    lo1 += v1 & mask;
                    hi1 += v1 >> 16;
                }
                ulong lo = Lanes(Vector512.WidenLower(lo0) + Vector512.WidenUpper(lo0) + Vector512.WidenLower(lo1) + Vector512.WidenUpper(lo1));
                ulong hi = Lanes(Vector512.WidenLower(hi0) + Vector512.WidenUpper(hi0) + Vector512.WidenLower(hi1) + Vector512.WidenUpper(hi1));
                sum = AddCarry(sum, AddCarry(lo, hi << 16));
                sum = AddCarry(sum, hi >> 48);
            }
        }
        else if (Vector256.IsHardwareAccelerated && n >= 128)
        {
            var mask = Vector256.Create(0xFFFFu);
            while (i + 64 <= n)
            {
                nuint stop = Math.Min(n - 63, i + 64 * (nuint)32768);
                Vector256<uint> lo0 = default, hi0 = default, lo1 = default, hi1 = default;
                for (; i < stop; i += 64)
                {
                    var v0 = Vector256.LoadUnsafe(ref p, i).AsUInt32();
                    var v1 = Vector256.LoadUnsafe(ref p, i + 32).AsUInt32();
                    lo0 += v0 & mask;
                    hi0 += v0 >> 16;
                    lo1 += v1 & mask;
                    hi1 += v1 >> 16;
                }
                var l = Vector256.WidenLower(lo0) + Vector256.WidenUpper(lo0) + Vector256.WidenLower(lo1) + Vector256.WidenUpper(lo1);
                var h = Vector256.WidenLower(hi0) + Vector256.WidenUpper(hi0) + Vector256.WidenLower(hi1) + Vector256.WidenUpper(hi1);
                ulong lo = l.GetElement(0) + l.GetElement(1) + l.GetElement(2) + l.GetElement(3);
                ulong hi = h.GetElement(0) + h.GetElement(1) + h.GetElement(2) + h.GetElement(3);
                sum = AddCarry(sum, AddCarry(lo, hi << 16));
                sum = AddCarry(sum, hi >> 48);
            }
        }
        else if (Vector128.IsHardwareAccelerated && n >= 64)
        {
            Vector128<ulong> a0 = default, a1 = default;
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector128.LoadUnsafe(ref p, i).AsUInt32();
                a0 += Vector128.WidenLower(v);
                a1 += Vector128.WidenUpper(v);
            }
            var t = a0 + a1;
            sum = AddCarry(t.GetElement(0), t.GetElement(1));
        }

        for (; i + 8 <= n; i += 8)
            sum = AddCarry(sum, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
        if (i + 4 <= n)
        {
            sum = AddCarry(sum, Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i)));
            i += 4;
        }
        if (i + 2 <= n)
        {
            sum = AddCarry(sum, Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, i)));
            i += 2;
        }
        if (i < n)
            sum = AddCarry(sum, Unsafe.Add(ref p, i)); // low byte in little-endian = high byte on the wire
        return sum;
    }

    private static ulong Lanes(Vector512<ulong> v) =>
        v.GetElement(0) + v.GetElement(1) + v.GetElement(2) + v.GetElement(3) + v.GetElement(4) + v.GetElement(5) + v.GetElement(6) + v.GetElement(7);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong AddCarry(ulong a, ulong b)
    {
        ulong s = a + b;
        return s + (s < a ? 1UL : 0UL);
    }
}
