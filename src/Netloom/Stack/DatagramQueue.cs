using System.Buffers.Binary;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// A bounded FIFO of datagrams with their source, in one byte ring sized at construction:
/// a full queue refuses (the caller counts the drop); it never grows.
/// Each record: length (4), source address (16, IPv4 held IPv4-mapped), source port (2), padding (2), then the bytes.
/// </summary>
internal sealed class DatagramQueue
{
    private const int Header = 24;
    private readonly byte[] _ring;
    private readonly int _maxCount;
    private int _head, _tail, _used, _count; // _used counts bytes including headers and wrap padding

    public DatagramQueue(int bytes, int maxCount)
    {
        _ring = new byte[bytes];
        _maxCount = maxCount;
    }

    public int Count => _count;
    public bool IsEmpty => _count == 0;

    public bool TryEnqueue(ReadOnlySpan<byte> data, IpAddr from, ushort port)
    {
        int need = Header + data.Length;
        if (_count == _maxCount || need > _ring.Length) return false;
        int tailRoom = _ring.Length - _tail;
        int waste = need > tailRoom ? tailRoom : 0; // records never wrap: skip the end of the ring
        if (_used + waste + need > _ring.Length) return false;
        if (waste > 0)
        {
            if (tailRoom >= 4) BinaryPrimitives.WriteInt32LittleEndian(_ring.AsSpan(_tail), -1); // wrap marker
            _used += waste;
            _tail = 0;
        }
        var r = _ring.AsSpan(_tail, need);
        BinaryPrimitives.WriteInt32LittleEndian(r, data.Length);
        BinaryPrimitives.WriteUInt128BigEndian(r[4..], from.Bits);
        BinaryPrimitives.WriteUInt16BigEndian(r[20..], port);
        data.CopyTo(r[Header..]);
        _tail = (_tail + need) % _ring.Length;
        _used += need;
        _count++;
        return true;
    }

    /// <summary>Copies the oldest datagram out (cut to <paramref name="buffer"/>) and removes it.</summary>
    public bool TryDequeue(Span<byte> buffer, out int length, out IpAddr from, out ushort port)
    {
        length = 0;
        from = default;
        port = 0;
        if (_count == 0) return false;
        if (_ring.Length - _head < Header || BinaryPrimitives.ReadInt32LittleEndian(_ring.AsSpan(_head)) < 0)
        {
            _used -= _ring.Length - _head; // the wrap padding
            _head = 0;
        }
        var r = _ring.AsSpan(_head);
        int len = BinaryPrimitives.ReadInt32LittleEndian(r);
        from = new IpAddr(BinaryPrimitives.ReadUInt128BigEndian(r[4..]));
        port = BinaryPrimitives.ReadUInt16BigEndian(r[20..]);
        length = Math.Min(len, buffer.Length);
        r.Slice(Header, length).CopyTo(buffer);
        _head = (_head + Header + len) % _ring.Length;
        _used -= Header + len;
        _count--;
        if (_count == 0) _head = _tail = _used = 0;
        return true;
    }
}
