namespace Netloom.Wire.Capture;

/// <summary>Shared buffering for the capture writers: records are staged in one reusable buffer.</summary>
public abstract class CaptureWriter : ICaptureWriter
{
    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _used;

    protected CaptureWriter(Stream stream, bool ownsStream)
    {
        _stream = stream;
        _ownsStream = ownsStream;
    }

    /// <summary>Opens a writer whose format follows the file extension: .pcapng, or .pcap / .cap for classic pcap.</summary>
    public static ICaptureWriter Create(string path)
    {
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is not (".pcapng" or ".pcap" or ".cap"))
            throw new ArgumentException($"'{path}': use the extension .pcapng, or .pcap for classic pcap");
        var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1);
        return ext == ".pcapng" ? new PcapNgWriter(fs, ownsStream: true) : new PcapWriter(fs, ownsStream: true);
    }

    public abstract int AddInterface(LinkType linkType, string? name = null, int snapLength = CaptureLimits.DefaultSnapLength);
    public abstract void Write(int interfaceId, Time.Instant timestamp, ReadOnlySpan<byte> data, int originalLength = -1,
        PacketDirection direction = PacketDirection.Unknown);

    /// <summary>Reserves <paramref name="length"/> bytes in the staging buffer, flushing first when needed.</summary>
    protected Span<byte> Reserve(int length)
    {
        if (_used + length > _buffer.Length) FlushBuffer();
        if (length > _buffer.Length) return default;
        var s = _buffer.AsSpan(_used, length);
        _used += length;
        return s;
    }

    /// <summary>Writes bytes too large for the staging buffer straight through.</summary>
    protected void WriteThrough(ReadOnlySpan<byte> bytes)
    {
        FlushBuffer();
        _stream.Write(bytes);
    }

    private void FlushBuffer()
    {
        if (_used == 0) return;
        _stream.Write(_buffer, 0, _used);
        _used = 0;
    }

    public void Flush()
    {
        FlushBuffer();
        _stream.Flush();
    }

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return; // a writer shared with a switch monitor may be disposed by both
        _disposed = true;
        Flush();
        if (_ownsStream) _stream.Dispose();
        GC.SuppressFinalize(this);
    }
}
