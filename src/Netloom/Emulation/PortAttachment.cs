using Netloom.Rings;
using Netloom.Sockets;

namespace Netloom.Emulation;

/// <summary>
/// A node whose one link leads to something outside the emulator (a kernel behind a TAP, a program
/// under <c>netloom run</c> behind a shm port): the real-time loop polls it between events.
/// </summary>
internal interface IAttachedNode : IDisposable
{
    /// <summary>Puts on the link what arrived from outside; the number of frames taken.</summary>
    int Poll(long now);
}

/// <summary>
/// Frames between a node's link and a real port. They are copied at the boundary: the emulator's
/// frames live in its own pool, and the port's buffers belong to the port.
/// </summary>
internal sealed class PortAttachment(IPort port, int mtu) : IDisposable
{
    private readonly PortDevice _device = new(port, mtu);

    public IPort Port => port;
    public long FramesOut { get; private set; }
    public long FramesIn { get; private set; }

    /// <summary>Copies <paramref name="frame"/> out to the port; false when the port's ring is full.</summary>
    public bool Deliver(SimFrame frame)
    {
        var buf = _device.TryAllocateTransmit(frame.Length);
        if (buf.IsEmpty) return false;
        frame.Span.CopyTo(buf);
        _device.CommitTransmit(frame.Length);
        _device.Flush();
        FramesOut++;
        return true;
    }

    /// <summary>
    /// Takes every frame the port has received: each goes to <paramref name="send"/> in a frame from
    /// the network's pool when <paramref name="up"/>, and is dropped otherwise (or when it does not
    /// fit, counted in <paramref name="discarded"/>). Returns how many frames the port had.
    /// </summary>
    public int Poll(Network network, bool up, Action<SimFrame> send, ref long discarded)
    {
        int n = 0;
        while (_device.TryReceive(out var frame))
        {
            n++;
            if (!up) continue;
            var f = network.Pool.Rent();
            if (f is null || frame.Length > f.Data.Length) { discarded++; if (f is not null) network.Pool.Return(f); continue; }
            frame.CopyTo(f.Data);
            f.Length = frame.Length;
            FramesIn++;
            send(f);
        }
        _device.ReleaseReceived();
        return n;
    }

    public void Dispose() => port.Dispose();
}
