using Netloom.Rings;
using Netloom.Stack;

namespace Netloom.Sockets;

/// <summary>
/// Puts a stack on any port: received frames are read straight from the RX ring's slots and
/// frames to send are written straight into TX slots, so nothing is copied in between.
/// </summary>
internal sealed class PortDevice : IFrameDevice
{
    private readonly IPort _port;
    private uint _rxNext;
    private int _rxTaken;
    private bool _txPending;
    private bool _closed;

    public PortDevice(IPort port, int mtu = 1500)
    {
        _port = port;
        MaxFrameSize = Math.Min(mtu + 14, port.Tx.Pool.BufferSize);
        _rxNext = port.Rx.Head;
    }

    public IPort Port => _port;
    public int MaxFrameSize { get; }

    /// <summary>
    /// Detaches the device from its port before the port is disposed: from then on nothing is
    /// received and every send is refused (the stack counts it as DeviceFull), so a socket closed
    /// after its stack stopped cannot write a FIN or RST into rings that are gone.
    /// </summary>
    internal void Close() => _closed = true;

    public bool TryReceive(out ReadOnlySpan<byte> frame)
    {
        if (_closed) { frame = default; return false; }
        var rx = _port.Rx;
        if (_rxTaken == 0)
        {
            _port.RxSync();
            _rxNext = rx.Head;
        }
        if (_rxTaken >= rx.Space) { frame = default; return false; }
        frame = rx.Packet(_rxNext);
        _rxNext = rx.Next(_rxNext);
        _rxTaken++;
        return true;
    }

    public void ReleaseReceived()
    {
        if (_rxTaken == 0 || _closed) return;
        _port.Rx.Release(_rxTaken);
        _rxTaken = 0;
        _port.RxSync();
    }

    public Span<byte> TryAllocateTransmit(int length)
    {
        if (_closed) return Span<byte>.Empty;
        var tx = _port.Tx;
        if (length > tx.Pool.BufferSize) return Span<byte>.Empty;
        if (tx.IsEmpty) _port.TxSync();
        if (tx.IsEmpty) return Span<byte>.Empty;
        return tx.Buffer(tx.Head)[..length];
    }

    public void CommitTransmit(int length)
    {
        var tx = _port.Tx;
        tx[tx.Head].Length = (ushort)length;
        tx.Release(1);
        _txPending = true;
    }

    public void Flush()
    {
        if (!_txPending || _closed) return;
        _port.TxSync();
        _txPending = false;
    }
}
