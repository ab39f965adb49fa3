using Netloom.Time;
using Netloom.Wire.Capture;

namespace Netloom.Switching;

/// <summary>
/// Captures chosen switch ports to a pcapng file: frames the port brought in (inbound) and
/// frames the switch sent out of it (outbound), each port its own interface in the file.
/// The switch holds no monitor when nothing is captured, so capture costs nothing when off.
/// </summary>
public sealed class SwitchMonitor : IDisposable
{
    private readonly ICaptureWriter _writer;
    private int[] _interfaceOf = [];

    public SwitchMonitor(ICaptureWriter writer) => _writer = writer;

    public void Watch(int port, string name)
    {
        if (port >= _interfaceOf.Length)
        {
            int old = _interfaceOf.Length;
            Array.Resize(ref _interfaceOf, port + 1);
            _interfaceOf.AsSpan(old).Fill(-1);
        }
        _interfaceOf[port] = _writer.AddInterface(LinkType.Ethernet, name);
    }

    internal void Capture(int port, ReadOnlySpan<byte> frame, Instant now, PacketDirection direction)
    {
        if ((uint)port < (uint)_interfaceOf.Length && _interfaceOf[port] is int id and >= 0)
            _writer.Write(id, now, frame, -1, direction);
    }

    public void Flush() => _writer.Flush();
    public void Dispose() => _writer.Dispose();
}
