using System.CommandLine;
using System.Text.Json;
using Netloom.Wire;
using Netloom.Wire.Capture;

namespace Netloom.Cli.Commands;

/// <summary>`netloom pcap decode` and `netloom pcap convert`.</summary>
internal static class PcapCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo>("file") { Description = "A pcap or pcapng capture" };
        var json = new Option<bool>("--json") { Description = "Print JSON Lines, one object per frame" };
        var decode = new Command("decode", "Print each frame of a capture, decoded layer by layer") { file, json };
        decode.SetAction(r => Decode(r.GetValue(file)!, r.GetValue(json)));

        var input = new Argument<FileInfo>("in") { Description = "The capture to read (pcap or pcapng)" };
        var output = new Argument<FileInfo>("out") { Description = "The capture to write: .pcapng, or .pcap for classic pcap" };
        var convert = new Command("convert", "Re-encode every well-formed frame through the wire writers; copy the rest unchanged") { input, output };
        convert.SetAction(r => Convert(r.GetValue(input)!, r.GetValue(output)!));

        return new Command("pcap", "Read, decode and convert pcap and pcapng captures") { decode, convert };
    }

    private static CaptureReader? OpenOrReport(FileInfo file, out int code)
    {
        code = CliErrors.Ok;
        try
        {
            return CaptureReader.Open(file.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            code = CliErrors.Report(e is FileNotFoundException or DirectoryNotFoundException ? $"{file}: no such file" : e.Message, CliErrors.BadInput);
            return null;
        }
    }

    private static int Decode(FileInfo file, bool json)
    {
        using var reader = OpenOrReport(file, out int code);
        if (reader is null) return code;
        using var outStream = new BufferedStream(Console.OpenStandardOutput(), 1 << 16);
        using var stdout = new StreamWriter(outStream, bufferSize: 1 << 16) { AutoFlush = false };
        using var jw = new Utf8JsonWriter(outStream);
        int n = 0;
        long? first = null;
        while (reader.Read(out var p) == CaptureReadResult.Packet)
        {
            n++;
            var d = p.LinkType == LinkType.Ethernet ? DecodedFrame.Decode(p.Data) : default;
            if (json)
            {
                if (p.LinkType == LinkType.Ethernet) FrameFormatter.WriteJson(jw, n, d);
                else WriteUnsupportedLink(jw, n, p.Data.Length, p.LinkType);
                jw.Flush();
                outStream.WriteByte((byte)'\n');
                jw.Reset();
                continue;
            }
            first ??= p.Timestamp.Nanoseconds;
            double t = (p.Timestamp.Nanoseconds - first.Value) / 1e9;
            if (p.LinkType != LinkType.Ethernet)
            {
                stdout.WriteLine($"{n,6} {t,12:F6}  link type {(int)p.LinkType} is not decoded ({p.Data.Length} bytes)");
                continue;
            }
            var (src, dst, proto, info) = FrameFormatter.Describe(d);
            stdout.WriteLine($"{n,6} {t,12:F6}  {src,-17} → {dst,-17} {proto,-5} {d.Length,5}  {info}");
        }
        stdout.Flush();
        if (reader.Error is not null) return CliErrors.Report($"{file}: {reader.Error} (after {n} frames)");
        return CliErrors.Ok;
    }

    private static void WriteUnsupportedLink(Utf8JsonWriter w, int n, int length, LinkType linkType)
    {
        w.WriteStartObject();
        w.WriteNumber("frame", n);
        w.WriteNumber("length", length);
        w.WriteString("error", $"frame: link type {(int)linkType} is not decoded");
        w.WriteEndObject();
    }

    private static int Convert(FileInfo input, FileInfo output)
    {
        using var reader = OpenOrReport(input, out int code);
        if (reader is null) return code;
        ICaptureWriter writer;
        try
        {
            writer = CaptureWriter.Create(output.FullName);
        }
        catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException)
        {
            return CliErrors.Report(e.Message, CliErrors.BadInput);
        }
        using (writer)
        {
            var interfaces = new Dictionary<int, int>();
            var scratch = new byte[CaptureLimits.MaxRecordLength];
            long total = 0, reencoded = 0, copied = 0, differ = 0;
            while (reader.Read(out var p) == CaptureReadResult.Packet)
            {
                total++;
                if (!interfaces.TryGetValue(p.InterfaceId, out int outId))
                {
                    try { outId = writer.AddInterface(p.LinkType, $"if{p.InterfaceId}"); }
                    catch (NotSupportedException e) { return CliErrors.Report(e.Message, CliErrors.BadInput); }
                    interfaces[p.InterfaceId] = outId;
                }
                var d = p.LinkType == LinkType.Ethernet ? DecodedFrame.Decode(p.Data) : default;
                if (p.LinkType == LinkType.Ethernet && d.IsWellFormed && d.ChecksumsOk)
                {
                    int len = d.Emit(p.Data, scratch);
                    if (!scratch.AsSpan(0, len).SequenceEqual(p.Data)) differ++;
                    writer.Write(outId, p.Timestamp, scratch.AsSpan(0, len), p.OriginalLength);
                    reencoded++;
                }
                else
                {
                    writer.Write(outId, p.Timestamp, p.Data, p.OriginalLength);
                    copied++;
                }
            }
            Console.WriteLine($"{total} frames: {reencoded} re-encoded from their parsed form, {copied} copied unchanged (malformed, bad checksum or not Ethernet); {differ} re-encoded frames differ from the original");
            if (reader.Error is not null) return CliErrors.Report($"{input}: {reader.Error} (after {total} frames)");
        }
        return CliErrors.Ok;
    }
}
