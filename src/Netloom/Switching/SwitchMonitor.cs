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

    /// <summary>
    /// The next monitor in the switch's chain (a file capture and live captures at once). A chain
    /// is never changed once the forwarding thread can see it: a change builds a new one.
    /// </summary>
    internal SwitchMonitor? Next { get; private init; }

    internal ICaptureWriter Writer => _writer;

    /// <summary>This monitor (same writer, same interfaces) in front of <paramref name="next"/>.</summary>
    internal SwitchMonitor Before(SwitchMonitor? next) => new(_writer) { _interfaceOf = _interfaceOf, Next = next };

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
        for (var m = this; m is not null; m = m.Next)
            if ((uint)port < (uint)m._interfaceOf.Length && m._interfaceOf[port] is int id and >= 0)
                m._writer.Write(id, now, frame, -1, direction);
    }

    public void Flush()
    {
        for (var m = this; m is not null; m = m.Next) m._writer.Flush();
    }
    public void Dispose() => _writer.Dispose();
}
