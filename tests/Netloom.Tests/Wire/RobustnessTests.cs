using Netloom.Tests.Support;
using Netloom.Wire;

namespace Netloom.Tests.Wire;

/// <summary>
/// A million random and mutated frames (seeded, so a failure reproduces) through every parser:
/// no exception, no read out of bounds (spans would throw), and whatever parses re-emits.
/// </summary>
public class RobustnessTests
{
    private const int Iterations = 1_000_000;
    private const int Seed = 20261121;

    [Fact]
    public void A_million_random_and_mutated_frames_never_throw()
    {
        var rng = new Random(Seed);
        byte[][] seeds = [.. GoldenFrameTests.All.Select(Hex.Bytes), .. Ipv6GoldenFrameTests.Frames.Select(f => Hex.Bytes(f.Hex))];
        var frame = new byte[1600];
        var emitted = new byte[1600];
        int wellFormed = 0, reemitted = 0;
        for (int i = 0; i < Iterations; i++)
        {
            int len = Mutate(rng, seeds, frame);
            var span = frame.AsSpan(0, len);
            try
            {
                ExerciseEveryParser(span);
                var d = DecodedFrame.Decode(span);
                if (!d.IsWellFormed) continue;
                wellFormed++;
                if (!d.ChecksumsOk) continue;
                d.Emit(span, emitted);
                var again = DecodedFrame.Decode(emitted.AsSpan(0, len));
                Assert.True(again.IsWellFormed && again.ChecksumsOk, $"iteration {i}: re-emitted frame does not decode cleanly: {again.Error}");
                reemitted++;
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                Assert.Fail($"iteration {i} (seed {Seed}) threw on {Hex.Of(span)}: {e}");
            }
        }
        // The mutations must still reach deep layers, or this test proves little.
        Assert.True(wellFormed > Iterations / 10, $"only {wellFormed} well-formed frames");
        Assert.True(reemitted > Iterations / 20, $"only {reemitted} frames re-emitted");
    }

    /// <summary>Half random bytes, half a fixture with a few bytes flipped, truncated or extended.</summary>
    private static int Mutate(Random rng, byte[][] seeds, byte[] frame)
    {
        if (rng.Next(8) == 0)
        {
            int n = rng.Next(0, 200);
            rng.NextBytes(frame.AsSpan(0, n));
            return n;
        }
        var s = seeds[rng.Next(seeds.Length)];
        s.CopyTo(frame, 0);
        int len = s.Length;
        switch (rng.Next(4))
        {
            case 0: len = rng.Next(0, len + 1); break;                                     // truncate
            case 1: int extra = rng.Next(1, 64); rng.NextBytes(frame.AsSpan(len, extra)); len += extra; break; // trailer
            default: break;
        }
        int flips = rng.Next(0, 4);
        for (int k = 0; k < flips && len > 0; k++) frame[rng.Next(len)] = (byte)rng.Next(256);
        return len;
    }

    private static void ExerciseEveryParser(ReadOnlySpan<byte> b)
    {
        Span<byte> buf = stackalloc byte[60];
        Span<byte> ndpBuf = stackalloc byte[1600];
        foreach (int offset in (ReadOnlySpan<int>)[0, 14, 34, 42, 54, 62])
        {
            if (offset > b.Length) break;
            var s = b[offset..];
            if (EthernetFrame.TryParse(s, out var e, out _)) { _ = e.Destination; _ = e.EtherType; _ = e.Payload.Length; }
            if (ArpPacket.TryParse(s, out var a, out _)) { _ = a.SenderIp; _ = a.TargetMac; }
            if (Ipv4Packet.TryParse(s, out var ip, out _)) { _ = ip.ChecksumValid; _ = ip.Options.Length; _ = ip.Payload.Length; }
            if (Ipv4Packet.TryParseQuoted(s, out var q, out _)) { _ = q.Payload.Length; }
            if (IcmpMessage.TryParse(s, out var icmp, out _)) { _ = icmp.ChecksumValid; icmp.TryGetQuoted(out _, out _); }
            if (UdpDatagram.TryParse(s, out var u, out _)) { _ = u.ChecksumValid(default(Ipv4Address), default); _ = u.ChecksumValid(default(Ipv6Address), default); }
            if (TcpRepr.TryParse(s, out var t, out _))
            {
                var header = t;
                header.PayloadLength = 0;
                header.Emit(buf, default(Ipv4Address), default);
            }
            if (Ipv6Packet.TryParse(s, out var v6, out _) && v6.TryReadExtensions(out var x, out _)) { _ = x.UpperLayerOffset <= v6.Payload.Length ? 0 : throw new InvalidOperationException("upper layer past the payload"); }
            if (Ipv6Packet.TryParseQuoted(s, out var q6, out _)) Ipv6Extensions.TryParse(q6.NextHeader, q6.Payload, out _, out _);
            if (Icmpv6Message.TryParse(s, out var m6, out _)) { _ = m6.ChecksumValid(default, default); m6.TryGetQuoted(out _, out _); }
            if (NdpRepr.TryParse(s, out var ndp, out _) && !ndp.HasUnkeptOptions && ndp.BufferLength <= ndpBuf.Length) ndp.Emit(ndpBuf, default, default);
            if (Mldv2Report.TryParse(s, out var mld, out _)) { int at = 0; for (int r = 0; r < mld.RecordCount; r++) mld.TryReadRecord(ref at, out _); }
        }
    }
}
