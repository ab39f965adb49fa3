using System.Runtime.InteropServices;
using Netloom.Interop;
using static Netloom.Interop.PacketSocket;

namespace Netloom.Rings;

/// <summary>
/// An AF_PACKET socket bound to one interface (packet(7)). Receive uses a TPACKET_V3 mmap ring
/// (blocks the kernel fills and hands over whole); each frame is copied into an RX slot, because
/// V3 packs frames of any size into blocks while ring slots hold fixed buffers. Transmit hands up
/// to 64 frames to the kernel per sendmmsg, with PACKET_QDISC_BYPASS. Our own transmissions are
/// not looped back to us (PACKET_IGNORE_OUTGOING).
/// </summary>
internal sealed unsafe class AfPacketPort : DescriptorPort
{
    private const int TxBatch = 64;
    private const uint BlockSize = 1 << 18, BlockCount = 16;
    internal const int PacketIgnoreOutgoing = 23;

    private readonly int _fd;
    private readonly byte* _ring;
    private readonly nuint _ringBytes;
    private uint _block;          // the block we read next
    private bool _blockOpen;
    private uint _remaining;      // packets left in the open block
    private uint _offset;         // offset of the next packet in the open block
    private readonly Libc.MMsgHdr* _messages;
    private readonly Libc.IoVec* _iovecs;
    private readonly uint* _slotOfMessage;
    private bool _disposed;

    private AfPacketPort(string name, int fd, byte* ring, nuint ringBytes, PortOptions options) : base(name, options)
    {
        _fd = fd;
        _ring = ring;
        _ringBytes = ringBytes;
        _messages = (Libc.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(TxBatch * sizeof(Libc.MMsgHdr)));
        _iovecs = (Libc.IoVec*)NativeMemory.AllocZeroed((nuint)(TxBatch * sizeof(Libc.IoVec)));
        _slotOfMessage = (uint*)NativeMemory.AllocZeroed(TxBatch * sizeof(uint));
    }

    /// <summary>Kernel receive-ring drops so far (from PACKET_STATISTICS).</summary>
    public long KernelDrops { get; private set; }

    public static AfPacketPort Open(PortSpec spec, PortOptions? options = null)
    {
        if (spec.Kind != PortKind.AfPacket) throw new ArgumentException($"{spec} is not an afpacket spec", nameof(spec));
        int ifindex = Netdevice.Index(spec.Name);
        ushort protocol = (ushort)(ETH_P_ALL << 8 | ETH_P_ALL >> 8); // network byte order
        int fd = Libc.Socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
        if (fd < 0) throw Netdevice.Error($"{spec}: AF_PACKET socket", Libc.Errno);
        byte* ring = null;
        nuint ringBytes = BlockSize * BlockCount;
        try
        {
            int version = TPACKET_V3;
            Check(Libc.SetSockOpt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(int)), spec, "PACKET_VERSION TPACKET_V3");
            var req = new TpacketReq3
            {
                BlockSize = BlockSize,
                BlockCount = BlockCount,
                FrameSize = 2048,
                FrameCount = BlockSize * BlockCount / 2048,
                RetireBlockTimeoutMs = 1, // hand over a partly filled block after 1 ms: latency over batching
            };
            Check(Libc.SetSockOpt(fd, SOL_PACKET, PACKET_RX_RING, &req, (uint)sizeof(TpacketReq3)), spec, "PACKET_RX_RING");
            ring = (byte*)Libc.Mmap(null, ringBytes, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
            if (ring == (byte*)-1) { ring = null; throw Netdevice.Error($"{spec}: mmap of the RX ring", Libc.Errno); }
            int one = 1;
            Libc.SetSockOpt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(int));   // best effort: older kernels lack it
            Libc.SetSockOpt(fd, SOL_PACKET, PacketIgnoreOutgoing, &one, sizeof(int));  // likewise
            var addr = new SockaddrLl { Family = AF_PACKET, Protocol = protocol, IfIndex = ifindex };
            Check(Libc.Bind(fd, &addr, (uint)sizeof(SockaddrLl)), spec, $"bind to {spec.Name}");
            return new AfPacketPort(spec.ToString(), fd, ring, ringBytes, options ?? new PortOptions());
        }
        catch
        {
            if (ring is not null) Libc.Munmap(ring, ringBytes);
            Libc.Close(fd);
            throw;
        }
    }

    private static void Check(int rc, PortSpec spec, string what)
    {
        if (rc < 0) throw Netdevice.Error($"{spec}: {what}", Libc.Errno);
    }

    public override void TxSync()
    {
        var tx = TxRing;
        uint n = (uint)tx.Size, head = tx.Head, k = TxHwCur;
        if (head >= n) return;
        long sent = 0, bytes = 0, drops = 0, invalid = 0;
        while (k != head)
        {
            // A batch of consecutive valid slots; an invalid one is counted and passed on its own.
            int m = 0;
            uint kk = k;
            while (kk != head && m < TxBatch)
            {
                ref Slot s = ref tx.Slots[kk];
                if (!Pool.IsSendable(s)) break;
                _iovecs[m] = new Libc.IoVec { Base = Pool.BufferPointer(s.BufferIndex), Length = s.Length };
                _messages[m] = new Libc.MMsgHdr { Header = new Libc.MsgHdr { Iov = &_iovecs[m], IovLength = 1 } };
                _slotOfMessage[m] = kk;
                m++;
                kk = kk + 1 == n ? 0 : kk + 1;
            }
            if (m == 0)
            {
                invalid++;
                k = k + 1 == n ? 0 : k + 1;
                continue;
            }
            int r = Libc.SendMMsg(_fd, _messages, (uint)m, 0);
            if (r < 0)
            {
                int e = Libc.Errno;
                if (e is Errno.EAGAIN or Errno.EINTR or Errno.ENOBUFS) break; // the queue is full: retry at the next sync
                drops++; // the kernel refused the first frame (too big, link down): drop it and go on
                k = _slotOfMessage[0] + 1 == n ? 0 : _slotOfMessage[0] + 1;
                continue;
            }
            for (int i = 0; i < r; i++) bytes += (long)_iovecs[i].Length;
            sent += r;
            k = r == m ? kk : _slotOfMessage[r];
            if (r < m) break;
        }
        FinishTxSync(k, sent, bytes, drops, invalid);
    }

    public override void RxSync()
    {
        var rx = RxRing;
        uint n = (uint)rx.Size, head = rx.Head, t = rx.Tail;
        if (head >= n) return;
        long got = 0, bytes = 0, invalid = 0;
        int max = Pool.BufferSize;
        while ((t + 1) % n != head)
        {
            var desc = (BlockDesc*)(_ring + (nuint)_block * BlockSize);
            if (!_blockOpen)
            {
                if ((Volatile.Read(ref desc->BlockStatus) & TP_STATUS_USER) == 0) break; // the kernel still owns it
                _remaining = desc->NumPackets;
                _offset = desc->OffsetToFirstPacket;
                _blockOpen = true;
            }
            if (_remaining == 0 || _offset > BlockSize - (uint)sizeof(Tpacket3Hdr))
            {
                // Done with this block (or its offsets make no sense): give it back to the kernel.
                if (_remaining != 0) invalid++;
                Volatile.Write(ref desc->BlockStatus, TP_STATUS_KERNEL);
                _blockOpen = false;
                _block = (_block + 1) % BlockCount;
                continue;
            }
            var hdr = (Tpacket3Hdr*)((byte*)desc + _offset);
            uint snap = hdr->SnapLength, mac = hdr->Mac;
            ref Slot s = ref rx.Slots[t];
            // A slot whose buffer index the user left pointing outside the pool (a swap gone
            // wrong) is never written through: the frame meant for it is dropped and counted
            // invalid, as TX counts a slot it cannot send, and the slot waits for a real buffer.
            if ((ulong)_offset + mac + snap <= BlockSize && snap > 0 && Pool.IsValid(s.BufferIndex))
            {
                int len = (int)Math.Min(snap, (uint)max);
                new ReadOnlySpan<byte>((byte*)hdr + mac, len).CopyTo(new Span<byte>(Pool.BufferPointer(s.BufferIndex), len));
                s.Length = (ushort)len;
                s.Flags = SlotFlags.None;
                got++;
                bytes += len;
                t = t + 1 == n ? 0 : t + 1;
            }
            else invalid++;
            _remaining--;
            _offset = hdr->NextOffset == 0 ? BlockSize : _offset + hdr->NextOffset;
        }
        rx.SetTail(t);
        rx.Counters.Record(got, bytes, invalid: invalid);
        if ((rx.Counters.Syncs & 255) == 0) ReadKernelDrops();
    }

    /// <summary>Adds the kernel's ring drops since the last read (PACKET_STATISTICS resets on read).</summary>
    public void ReadKernelDrops()
    {
        StatsV3 st;
        uint len = (uint)sizeof(StatsV3);
        if (Libc.GetSockOpt(_fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
        {
            KernelDrops += st.Drops;
            RxRing.Counters.Drops += st.Drops;
        }
    }

    protected override bool Block(bool rx, long timeoutNs, bool interruptible) => PollDescriptor(_fd, rx, timeoutNs);

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Libc.Munmap(_ring, _ringBytes);
        Libc.Close(_fd);
        NativeMemory.Free(_messages);
        NativeMemory.Free(_iovecs);
        NativeMemory.Free(_slotOfMessage);
        FreeRings();
    }
}
