using System.Buffers.Binary;
using Netloom.Wire;

namespace Netloom.Tests.Wire;

public class ChecksumTests
{
    /// <summary>A plain RFC 1071 reference: big-endian 16-bit words, 32-bit accumulator.</summary>
    private static ushort Reference(ReadOnlySpan<byte> data, uint initial = 0)
    {
        ulong sum = initial;
        int i = 0;
        for (; i + 1 < data.Length; i += 2) sum += (uint)(data[i] << 8 | data[i + 1]);
        if (i < data.Length) sum += (uint)data[i] << 8;
        while (sum >> 16 != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    [Fact]
    public void Rfc1071_example_sums_to_ddf2()
    {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2; the checksum is its complement.
        byte[] data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        Assert.Equal((ushort)0x220d, Checksum.Compute(data)); // ~0xddf2
    }

    [Fact]
    public void Vectorized_sum_matches_reference_for_every_length_and_alignment()
    {
        var rng = new Random(1071);
        var buf = new byte[4200];
        rng.NextBytes(buf);
        for (int offset = 0; offset < 8; offset++)
            for (int len = 0; len <= 3000; len += len < 300 ? 1 : 37)
                Assert.Equal(Reference(buf.AsSpan(offset, len)), Checksum.Compute(buf.AsSpan(offset, len)));
    }

    [Fact]
    public void All_ones_data_does_not_lose_carries()
    {
        var buf = new byte[65535];
        buf.AsSpan().Fill(0xFF);
        foreach (int len in new[] { 1, 2, 63, 64, 127, 128, 1500, 9000, 65535 })
            Assert.Equal(Reference(buf.AsSpan(0, len)), Checksum.Compute(buf.AsSpan(0, len)));
    }

    [Fact]
    public void Sums_longer_than_a_vector_block_keep_every_carry()
    {
        // The vector loop folds its 32-bit lanes every 2 MiB (AVX2) or 4 MiB (AVX-512): all-ones
        // and random data past several blocks, at odd lengths, must still match the reference.
        var ones = new byte[9 << 20];
        ones.AsSpan().Fill(0xFF);
        var random = new byte[9 << 20];
        new Random(4096).NextBytes(random);
        foreach (var buf in new[] { ones, random })
            foreach (int len in new[] { (2 << 20) - 1, 2 << 20, (4 << 20) + 129, 9 << 20 })
                Assert.Equal(Reference(buf.AsSpan(0, len)), Checksum.Compute(buf.AsSpan(0, len)));
    }

    [Fact]
    public void Verify_accepts_a_buffer_holding_its_own_checksum()
    {
        var rng = new Random(7);
        var buf = new byte[100];
        rng.NextBytes(buf);
        buf[10] = buf[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(buf.AsSpan(10), Checksum.Compute(buf));
        Assert.True(Checksum.Verify(buf));
        buf[50] ^= 1;
        Assert.False(Checksum.Verify(buf));
    }

    [Fact]
    public void Incremental_update_matches_recomputation()
    {
        // RFC 1624: patch the checksum after changing one word, or a 32-bit address.
        var rng = new Random(1624);
        var buf = new byte[60];
        for (int trial = 0; trial < 10_000; trial++)
        {
            rng.NextBytes(buf);
            buf[10] = buf[11] = 0;
            ushort c = Checksum.Compute(buf);
            int at = 2 * rng.Next(6, 29); // any word but the checksum
            if (rng.Next(2) == 0)
            {
                ushort oldWord = BinaryPrimitives.ReadUInt16BigEndian(buf.AsSpan(at));
                ushort newWord = (ushort)rng.Next(65536);
                BinaryPrimitives.WriteUInt16BigEndian(buf.AsSpan(at), newWord);
                c = Checksum.Update(c, oldWord, newWord);
            }
            else
            {
                at = 12 + 4 * rng.Next(0, 11);
                uint oldValue = BinaryPrimitives.ReadUInt32BigEndian(buf.AsSpan(at));
                uint newValue = (uint)rng.NextInt64();
                BinaryPrimitives.WriteUInt32BigEndian(buf.AsSpan(at), newValue);
                c = Checksum.Update(c, oldValue, newValue);
            }
            // Equal as ones' complement numbers: 0x0000 and 0xFFFF are both zero.
            ushort expected = Checksum.Compute(buf);
            Assert.True(c == expected || (c, expected) is (0, 0xFFFF) or (0xFFFF, 0), $"trial {trial}: {c:x4} != {expected:x4}");
        }
    }

    [Fact]
    public void Pseudo_header_adds_addresses_protocol_and_length()
    {
        var src = Ipv4Address.Parse("192.0.2.1");
        var dst = Ipv4Address.Parse("198.51.100.7");
        byte[] pseudo = [192, 0, 2, 1, 198, 51, 100, 7, 0, 17, 0, 28];
        Assert.Equal(Reference(pseudo), Checksum.Finish(Checksum.PseudoHeader(src, dst, 17, 28)));
    }
}
