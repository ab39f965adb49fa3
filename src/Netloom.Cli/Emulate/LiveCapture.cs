using System.Threading.Channels;
using Netloom.Emulation;
using Netloom.Time;
using Netloom.Wire.Capture;

namespace Netloom.Cli.Emulate;

/// <summary>
/// One live capture of a link for one client: a pcapng stream written on the emulator's thread and
/// read by an HTTP thread. The writer stages whole blocks and hands them over as chunks through a
/// channel; past <see cref="MaxQueuedBytes"/> waiting (a slow reader), whole chunks are dropped and
/// counted, so the file stays valid and memory stays bounded. The section and interface blocks
/// (the first chunk) are never dropped.
/// </summary>
internal sealed class LiveCapture : ICaptureWriter
{
    public const long MaxQueuedBytes = 8 << 20;
    private readonly ChunkStream _stream;
    private readonly PcapNgWriter _writer;
    private readonly long _frameLimit;

    public LiveCapture(Link link, long frameLimit) : this(frameLimit) => Link = link;

    /// <summary>A capture of something other than an emulated link (a port of a running `netloom switch`).</summary>
    public LiveCapture(long frameLimit)
    {
        _frameLimit = frameLimit <= 0 ? long.MaxValue : frameLimit;
        _stream = new ChunkStream();
        _writer = new PcapNgWriter(_stream);
    }

    public Link Link { get; } = null!;
    public ChannelReader<byte[]> Reader => _stream.Channel.Reader;
    public long Frames { get; private set; }
    public long DroppedChunks => _stream.Dropped;
    /// <summary>True once the frame limit is reached: the emulator's thread removes the capture.</summary>
    public bool Done => Frames >= _frameLimit;

    public int AddInterface(LinkType linkType, string? name = null, int snapLength = CaptureLimits.DefaultSnapLength) =>
        _writer.AddInterface(linkType, name, snapLength);

    public void Write(int interfaceId, Instant timestamp, ReadOnlySpan<byte> data, int originalLength = -1, PacketDirection direction = PacketDirection.Unknown)
    {
        if (Done) return;
        _writer.Write(interfaceId, timestamp, data, originalLength, direction);
        Frames++;
    }

    /// <summary>Hands what is staged to the reader (the emulator's thread calls it after each slice).</summary>
    public void Flush() => _writer.Flush();

    /// <summary>Ends the stream for the reader (after a last flush).</summary>
    public void Dispose()
    {
        _writer.Dispose();
        _stream.Channel.Writer.TryComplete();
    }

    private sealed class ChunkStream : Stream
    {
        private long _queued;
        private bool _first = true;
        public readonly Channel<byte[]> Channel = System.Threading.Channels.Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        public long Dropped;

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (buffer.IsEmpty) return;
            if (!_first && Interlocked.Read(ref _queued) + buffer.Length > MaxQueuedBytes) { Dropped++; return; }
            _first = false;
            Interlocked.Add(ref _queued, buffer.Length);
            Channel.Writer.TryWrite(buffer.ToArray());
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        /// <summary>The reader took a chunk of <paramref name="length"/> bytes.</summary>
        public void Taken(int length) => Interlocked.Add(ref _queued, -length);
        public override void Flush() { }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    /// <summary>The reader's side: a chunk was written out (frees its share of the bound).</summary>
    public void Taken(byte[] chunk) => _stream.Taken(chunk.Length);
}
