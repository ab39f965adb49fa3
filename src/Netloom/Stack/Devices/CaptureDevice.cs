using Netloom.Time;
using Netloom.Wire.Capture;

namespace Netloom.Stack.Devices;

/// <summary>A device decorator that writes every frame in and out to a capture (smoltcp's pcap tracer).</summary>
internal sealed class CaptureDevice : IFrameDevice
{
    private readonly IFrameDevice _inner;
    private readonly ICaptureWriter _writer;
    private readonly int _interface;
    private readonly Func<Instant> _clock;

    public CaptureDevice(IFrameDevice inner, ICaptureWriter writer, Func<Instant> clock, string name = "host")
    {
        _inner = inner;
        _writer = writer;
        _clock = clock;
        _interface = writer.AddInterface(LinkType.Ethernet, name);
    }

    public int MaxFrameSize => _inner.MaxFrameSize;

    public bool TryReceive(out ReadOnlySpan<byte> frame)
    {
        if (!_inner.TryReceive(out frame)) return false;
        _writer.Write(_interface, _clock(), frame, -1, PacketDirection.Inbound);
        return true;
    }

    public void ReleaseReceived() => _inner.ReleaseReceived();

    public Span<byte> TryAllocateTransmit(int length) => _inner.TryAllocateTransmit(length);

    public void CommitTransmit(int length)
    {
        // The device contract: the buffer asked for again is the one just written.
        _writer.Write(_interface, _clock(), _inner.TryAllocateTransmit(length)[..length], -1, PacketDirection.Outbound);
        _inner.CommitTransmit(length);
    }

    public void Flush()
    {
        _inner.Flush();
        _writer.Flush();
    }
}
