using Netloom.Rings;
using Netloom.Stack;

namespace Netloom.Sockets;

/// <summary>
/// Puts a stack on any port: received frames are read straight from the RX ring's slots and
/// frames to send are written straight into TX slots, so nothing is copied in between. Over a
/// shm port with loan buffers it also lends them (<see cref="ILoanDevice"/>): a frame sent from
/// one is the buffer itself, handed back when the peer has consumed it.
/// </summary>
internal sealed class PortDevice : IFrameDevice, ILoanDevice, IChecksumOffloadDevice
{
    private readonly ShmPort? _shm;      // the port, when it takes loan buffers
    private readonly uint _loanBase;
    private readonly bool[] _atPort = [];
    private readonly bool[] _rented = [];
    private readonly uint[] _free = [];
    private int _freeCount, _atPortCount;

    private readonly IPort _port;
    private uint _rxNext;
    private int _rxTaken;
    private bool _txPending;
    private bool _closed;
    private readonly IChecksumPort? _csumPort; // a shm port or pipe whose end declared the checksum capability
    private bool _rxPartial, _txPartial;

    public PortDevice(IPort port, int mtu = 1500)
    {
        _port = port;
        MaxFrameSize = Math.Min(mtu + 14, port.Tx.Pool.BufferSize);
        _rxNext = port.Rx.Head;
        if (port is IChecksumPort { ChecksumOffloadDeclared: true } declared) _csumPort = declared;
        if (port is ShmPort { LoanCount: > 0 } shm)
        {
            _shm = shm;
            _loanBase = shm.LoanBase;
            int n = shm.LoanCount;
            _atPort = new bool[n];
            _rented = new bool[n];
            _free = new uint[n];
            for (int i = 0; i < n; i++) _free[i] = _loanBase + (uint)(n - 1 - i);
            _freeCount = n;
            shm.LoanReturned = OnReturned;
        }
    }

    public int LoanBufferSize => _shm is null ? 0 : _shm.Tx.Pool.BufferSize;
    public Action<uint>? LoanReturned { get; set; }

    public bool TryRentLoan(out uint buffer)
    {
        if (_freeCount == 0) { buffer = 0; return false; }
        buffer = _free[--_freeCount];
        _rented[buffer - _loanBase] = true;
        return true;
    }

    public void ReturnLoan(uint buffer)
    {
        uint i = Check(buffer);
        if (!_rented[i]) throw new InvalidOperationException($"loan buffer {buffer} is not rented");
        if (_atPort[i]) throw new InvalidOperationException($"loan buffer {buffer} is still at the port");
        _rented[i] = false;
        _free[_freeCount++] = buffer;
    }

    public Span<byte> LoanBuffer(uint buffer)
    {
        Check(buffer);
        return _shm!.LoanBuffer(buffer);
    }

    public bool IsAtPort(uint buffer) => _atPort[Check(buffer)];

    public bool TryTransmitLoan(uint buffer, int length)
    {
        uint i = Check(buffer);
        var flags = _txPartial ? SlotFlags.ChecksumPartial : SlotFlags.None;
        _txPartial = false; // the mark is for this frame only, sent or not
        if (_closed) return false;
        if (_atPort[i]) throw new InvalidOperationException($"loan buffer {buffer} is already at the port");
        if (_shm!.Tx.IsEmpty) _shm.TxSync();
        if (!_shm.TransmitLoan(buffer, length, flags)) return false;
        _atPort[i] = true;
        _atPortCount++;
        _txPending = true;
        return true;
    }

    private uint Check(uint buffer)
    {
        uint i = buffer - _loanBase;
        if (_shm is null || i >= (uint)_atPort.Length) throw new ArgumentOutOfRangeException(nameof(buffer), buffer, "not a loan buffer of this device");
        return i;
    }

    private void OnReturned(uint buffer)
    {
        uint i = buffer - _loanBase;
        if (i >= (uint)_atPort.Length || !_atPort[i]) return;
        _atPort[i] = false;
        _atPortCount--;
        LoanReturned?.Invoke(buffer);
    }

    /// <summary>Both ends of the shm port or pipe declared the checksum capability (for the current session).</summary>
    public bool ChecksumOffload => _csumPort is { ChecksumOffload: true };
    public bool ReceivedPartial => _rxPartial;
    public void MarkNextPartial() => _txPartial = true;

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
        _rxPartial = _csumPort is not null && (rx[_rxNext].Flags & SlotFlags.ChecksumPartial) != 0; // the port passes it only if this end declared it
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
        tx[tx.Head].Flags = _txPartial ? SlotFlags.ChecksumPartial : SlotFlags.None;
        _txPartial = false;
        tx.Release(1);
        _txPending = true;
    }

    public void Flush()
    {
        if ((!_txPending && _atPortCount == 0) || _closed) return; // loans at the port: look for the ones handed back
        _port.TxSync();
        _txPending = false;
    }
}
