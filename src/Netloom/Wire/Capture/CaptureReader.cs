using System.Buffers.Binary;

namespace Netloom.Wire.Capture;

/// <summary>
/// Reads pcap or pcapng, chosen by the file's magic number. Streaming: one record in memory at a
/// time. A truncated or corrupt file ends the stream with <see cref="CaptureReadResult.Error"/>
/// and an <see cref="Error"/> message that names the byte offset.
/// </summary>
public abstract class CaptureReader : IDisposable
{
    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private byte[] _buffer = new byte[2048];

    protected CaptureReader(Stream stream, bool ownsStream)
    {
        _stream = stream;
        _ownsStream = ownsStream;
    }

    /// <summary>Why the last read returned <see cref="CaptureReadResult.Error"/>.</summary>
    public string? Error { get; private set; }

    /// <summary>Byte offset of the next unread record.</summary>
    public long Offset { get; protected set; }

    public abstract string Format { get; }

    public abstract CaptureReadResult Read(out CapturedPacket packet);

    public static CaptureReader Open(string path) =>
        Open(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16), ownsStream: true, path);

    /// <summary>Opens a stream positioned at the start of a pcap or pcapng file.</summary>
    public static CaptureReader Open(Stream stream, bool ownsStream = false, string? name = null)
    {
        Span<byte> magic = stackalloc byte[4];
        int n = stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        if (n < 4)
            throw new InvalidDataException($"{name ?? "capture"}: {n} bytes is too short for a pcap or pcapng file");
        uint le = BinaryPrimitives.ReadUInt32LittleEndian(magic);
        if (le == PcapNgReader.SectionHeaderType) return new PcapNgReader(stream, ownsStream, magic);
        if (PcapReader.IsMagic(le)) return new PcapReader(stream, ownsStream, magic);
        throw new InvalidDataException($"{name ?? "capture"}: magic 0x{le:x8} at offset 0 is neither pcap nor pcapng");
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes into the record buffer, or fails naming the offset.</summary>
    protected bool TryFill(int count, long recordOffset, string what, out Span<byte> bytes)
    {
        if (count > _buffer.Length)
            Array.Resize(ref _buffer, Math.Max(count, Math.Min(_buffer.Length * 2, CaptureLimits.MaxRecordLength)));
        bytes = _buffer.AsSpan(0, count);
        int got = _stream.ReadAtLeast(bytes, count, throwOnEndOfStream: false);
        if (got == count) return true;
        Fail($"{Format}: {what} at offset {recordOffset} is truncated: {got} of {count} bytes present");
        return false;
    }

    /// <summary>Reads up to <paramref name="count"/> bytes; returns how many arrived (0 at a clean end).</summary>
    protected int ReadSome(Span<byte> bytes) => _stream.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);

    protected CaptureReadResult Fail(string message)
    {
        Error = message;
        return CaptureReadResult.Error;
    }

    public void Dispose()
    {
        if (_ownsStream) _stream.Dispose();
        GC.SuppressFinalize(this);
    }
}
