using Netloom.Time;
using Netloom.Wire.Capture;

namespace Netloom.Stack.Devices;

/// <summary>
/// A device decorator that writes every frame in and out to a capture (smoltcp's pcap tracer).
/// It passes the checksum capability through and writes frames as they are: on a port whose two
/// ends declared it, TCP and UDP checksums in the capture hold only the pseudo-header sum (as
/// tcpdump shows them on a kernel with checksum offload), so a capture does not change what is
/// measured; run with the capability off (<c>--full-checksums</c>) to capture filled-in ones.
/// </summary>
internal sealed class CaptureDevice : IFrameDevice, IChecksumOffloadDevice
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

    public bool ChecksumOffload => _inner is IChecksumOffloadDevice { ChecksumOffload: true };
    public bool ReceivedPartial => _inner is IChecksumOffloadDevice { ReceivedPartial: true };
    public void MarkNextPartial() => (_inner as IChecksumOffloadDevice)?.MarkNextPartial();

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
