using System.Buffers.Binary;
using Netloom.Time;
using Netloom.Wire.Capture;

namespace Netloom.Tests.Capture;

public class CaptureFileTests
{
    private static readonly byte[] FrameA = [.. Enumerable.Range(0, 60).Select(i => (byte)i)];
    private static readonly byte[] FrameB = [.. Enumerable.Range(0, 1514).Select(i => (byte)(i * 7))];
    private static readonly Instant T0 = Instant.FromSeconds(1_700_000_000, 123_456_789);

    private static List<(Instant Ts, int Iface, LinkType Link, int Orig, byte[] Data)> ReadAll(byte[] file, out string? error)
    {
        using var r = CaptureReader.Open(new MemoryStream(file));
        var list = new List<(Instant, int, LinkType, int, byte[])>();
        CaptureReadResult res;
        while ((res = r.Read(out var p)) == CaptureReadResult.Packet)
            list.Add((p.Timestamp, p.InterfaceId, p.LinkType, p.OriginalLength, p.Data.ToArray()));
        error = r.Error;
        Assert.Equal(error is null ? CaptureReadResult.End : CaptureReadResult.Error, res);
        return list;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Pcap_round_trip_keeps_data_and_timestamps(bool nanos)
    {
        var ms = new MemoryStream();
        using (var w = new PcapWriter(ms, nanosecondResolution: nanos))
        {
            w.AddInterface(LinkType.Ethernet);
            w.Write(0, T0, FrameA);
            w.Write(0, T0 + Duration.FromMicroseconds(5), FrameB, originalLength: 2000);
        }
        var got = ReadAll(ms.ToArray(), out var err);
        Assert.Null(err);
        Assert.Equal(2, got.Count);
        Assert.Equal(FrameA, got[0].Data);
        Assert.Equal(FrameB, got[1].Data);
        Assert.Equal(2000, got[1].Orig);
        long expect = nanos ? T0.Nanoseconds : T0.Nanoseconds / 1000 * 1000;
        Assert.Equal(expect, got[0].Ts.Nanoseconds);
        Assert.Equal(LinkType.Ethernet, got[0].Link);
    }

    [Theory]
    [InlineData(0xA1B2C3D4u, 1000L)]
    [InlineData(0xA1B23C4Du, 1L)]
    public void Big_endian_pcap_is_read(uint magic, long unitNs)
    {
        var b = new byte[24 + 16 + FrameA.Length];
        BinaryPrimitives.WriteUInt32BigEndian(b, magic);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4), 2);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(6), 4);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(16), 65535);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(20), 1);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(24), 100);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(28), 42);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(32), (uint)FrameA.Length);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(36), (uint)FrameA.Length);
        FrameA.CopyTo(b, 40);
        var got = ReadAll(b, out var err);
        Assert.Null(err);
        Assert.Single(got);
        Assert.Equal(100_000_000_000 + 42 * unitNs, got[0].Ts.Nanoseconds);
        Assert.Equal(FrameA, got[0].Data);
    }

    [Fact]
    public void Pcapng_with_several_interfaces_round_trips()
    {
        var ms = new MemoryStream();
        using (var w = new PcapNgWriter(ms))
        {
            int a = w.AddInterface(LinkType.Ethernet, "left");
            int b = w.AddInterface(LinkType.Raw, "right", snapLength: 100);
            w.Write(a, T0, FrameA);
            w.Write(b, T0 + Duration.FromNanoseconds(1), FrameB);
        }
        var got = ReadAll(ms.ToArray(), out var err);
        Assert.Null(err);
        Assert.Equal(2, got.Count);
        Assert.Equal((T0, 0, LinkType.Ethernet), (got[0].Ts, got[0].Iface, got[0].Link));
        Assert.Equal(FrameA, got[0].Data);
        Assert.Equal(1, got[1].Iface);
        Assert.Equal(LinkType.Raw, got[1].Link);
        Assert.Equal(FrameB[..100], got[1].Data); // cut to the interface's snap length
        Assert.Equal(FrameB.Length, got[1].Orig);
        Assert.Equal(T0.Nanoseconds + 1, got[1].Ts.Nanoseconds);
    }

    /// <summary>Builds a pcapng block by hand, little- or big-endian.</summary>
    private static byte[] Block(bool be, uint type, byte[] body)
    {
        int len = 12 + (body.Length + 3 & ~3);
        var b = new byte[len];
        void U32(int at, uint v) { if (be) BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(at), v); else BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), v); }
        U32(0, type);
        U32(4, (uint)len);
        body.CopyTo(b, 8);
        U32(len - 4, (uint)len);
        return b;
    }

    private static byte[] Body(bool be, params object[] fields)
    {
        var ms = new MemoryStream();
        foreach (var f in fields)
        {
            byte[] v = f switch
            {
                ushort u => be ? [(byte)(u >> 8), (byte)u] : [(byte)u, (byte)(u >> 8)],
                uint u => be ? [(byte)(u >> 24), (byte)(u >> 16), (byte)(u >> 8), (byte)u] : [(byte)u, (byte)(u >> 8), (byte)(u >> 16), (byte)(u >> 24)],
                byte[] raw => raw,
                _ => throw new ArgumentException("field type"),
            };
            ms.Write(v);
        }
        return ms.ToArray();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Pcapng_resolutions_offsets_unknown_and_simple_blocks(bool be)
    {
        var file = new MemoryStream();
        file.Write(Block(be, 0x0A0D0D0A, Body(be, 0x1A2B3C4Du, (ushort)1, (ushort)0, 0xFFFFFFFFu, 0xFFFFFFFFu)));
        // Interface 0: default resolution (microseconds). Interface 1: 2^-10 s and an if_tsoffset of 100 s.
        file.Write(Block(be, 1, Body(be, (ushort)1, (ushort)0, 0u)));
        byte[] tsoff = be ? [0, 0, 0, 0, 0, 0, 0, 100] : [100, 0, 0, 0, 0, 0, 0, 0];
        file.Write(Block(be, 1, Body(be, (ushort)1, (ushort)0, 0u, (ushort)9, (ushort)1, new byte[] { 0x8A, 0, 0, 0 }, (ushort)14, (ushort)8, tsoff, (ushort)0, (ushort)0)));
        file.Write(Block(be, 0x0BAD, [1, 2, 3, 4, 5, 6, 7, 8])); // unknown: skipped
        file.Write(Block(be, 6, Body(be, 0u, 0u, 1_500_000u, 4u, 4u, new byte[] { 9, 8, 7, 6 })));
        file.Write(Block(be, 6, Body(be, 1u, 0u, 3u * 1024 + 512, 2u, 2u, new byte[] { 1, 2 })));
        file.Write(Block(be, 3, Body(be, 3u, new byte[] { 5, 5, 5 })));
        var got = ReadAll(file.ToArray(), out var err);
        Assert.Null(err);
        Assert.Equal(3, got.Count);
        Assert.Equal(1_500_000_000L, got[0].Ts.Nanoseconds);
        Assert.Equal(new byte[] { 9, 8, 7, 6 }, got[0].Data);
        Assert.Equal(103_500_000_000L, got[1].Ts.Nanoseconds);
        Assert.Equal(new byte[] { 5, 5, 5 }, got[2].Data);
    }

    [Fact]
    public void Truncated_pcap_names_the_offset()
    {
        var ms = new MemoryStream();
        using (var w = new PcapWriter(ms)) { w.AddInterface(LinkType.Ethernet); w.Write(0, T0, FrameA); w.Write(0, T0, FrameB); }
        var full = ms.ToArray();
        var got = ReadAll(full[..(full.Length - 10)], out var err);
        Assert.Single(got);
        Assert.Equal($"pcap: record data at offset {24 + 16 + FrameA.Length} is truncated: {FrameB.Length - 10} of {FrameB.Length} bytes present", err);
    }

    [Fact]
    public void Absurd_pcap_record_length_is_rejected_not_allocated()
    {
        var ms = new MemoryStream();
        using (var w = new PcapWriter(ms)) { w.AddInterface(LinkType.Ethernet); w.Write(0, T0, FrameA); }
        var b = ms.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(24 + 8), 0x7FFFFFFF);
        ReadAll(b, out var err);
        Assert.Equal("pcap: record at offset 24 claims 2147483647 captured bytes, more than the 16777216 limit", err);
    }

    [Fact]
    public void Pcapng_block_with_mismatched_trailer_names_the_offset()
    {
        var ms = new MemoryStream();
        using (var w = new PcapNgWriter(ms)) { w.AddInterface(LinkType.Ethernet); w.Write(0, T0, FrameA); }
        var b = ms.ToArray();
        b[^1] ^= 0x40; // corrupt the last block's trailing length
        var got = ReadAll(b, out var err);
        Assert.Empty(got);
        Assert.Matches(@"^pcapng: block at offset \d+ has length 92 but trailing length \d+$", err);
    }

    [Fact]
    public void Pcapng_packet_for_an_undeclared_interface_is_an_error()
    {
        var file = new MemoryStream();
        file.Write(Block(false, 0x0A0D0D0A, Body(false, 0x1A2B3C4Du, (ushort)1, (ushort)0, 0xFFFFFFFFu, 0xFFFFFFFFu)));
        file.Write(Block(false, 6, Body(false, 3u, 0u, 0u, 0u, 0u)));
        ReadAll(file.ToArray(), out var err);
        Assert.Equal("pcapng: packet block at offset 28 names interface 3, but the section declares 0", err);
    }

    [Fact]
    public void Unknown_magic_is_rejected_with_a_clear_message()
    {
        var e = Assert.Throws<InvalidDataException>(() => CaptureReader.Open(new MemoryStream([1, 2, 3, 4, 5, 6, 7, 8])));
        Assert.Contains("neither pcap nor pcapng", e.Message);
    }

    [Fact]
    public void Random_garbage_after_a_valid_header_never_throws()
    {
        var rng = new Random(5);
        for (int i = 0; i < 2000; i++)
        {
            var ms = new MemoryStream();
            using (var w = i % 2 == 0 ? (CaptureWriter)new PcapNgWriter(ms) : new PcapWriter(ms)) { w.AddInterface(LinkType.Ethernet); w.Write(0, T0, FrameA); }
            var b = ms.ToArray().ToList();
            var junk = new byte[rng.Next(0, 200)];
            rng.NextBytes(junk);
            b.AddRange(junk);
            var bytes = b.ToArray();
            for (int k = 0; k < 3; k++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
            try { ReadAll(bytes, out _); }
            catch (InvalidDataException) { } // magic hit by a flip: refused at open
        }
    }
}
