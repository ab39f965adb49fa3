using Netloom.Interop;

namespace Netloom.Rings;

/// <summary>
/// A Linux TAP device (tuntap): frames the kernel sends to the device arrive on RX, frames put
/// on TX reach the kernel's stack. Opening creates the device if it is missing (in the calling
/// thread's network namespace) and brings it up. IFF_NO_PI: frames carry no extra header.
/// TAP moves one frame per read or write system call; each sync batches as many as are ready.
/// </summary>
internal sealed unsafe class TapPort : DescriptorPort
{
    private readonly int _fd;
    private readonly byte[] _discard; // where a frame goes that has no valid slot buffer to go to
    private bool _disposed;

    private TapPort(string name, int fd, PortOptions options) : base(name, options)
    {
        _fd = fd;
        _discard = GC.AllocateArray<byte>(Pool.BufferSize, pinned: true);
    }

    public static TapPort Open(PortSpec spec, PortOptions? options = null)
    {
        if (spec.Kind != PortKind.Tap) throw new ArgumentException($"{spec} is not a tap spec", nameof(spec));
        int fd = Libc.Open("/dev/net/tun", Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (fd < 0) throw Netdevice.Error($"{spec}: opening /dev/net/tun", Libc.Errno);
        try
        {
            var req = Netdevice.Request(spec.Name);
            req.Flags = Netdevice.IFF_TAP | Netdevice.IFF_NO_PI;
            if (Libc.Ioctl(fd, Netdevice.TUNSETIFF, &req) < 0) throw Netdevice.Error($"{spec}: TUNSETIFF", Libc.Errno);
            Netdevice.BringUp(spec.Name);
            return new TapPort(spec.ToString(), fd, options ?? new PortOptions());
        }
        catch
        {
            Libc.Close(fd);
            throw;
        }
    }

    public override void TxSync()
    {
        var tx = TxRing;
        uint n = (uint)tx.Size, head = tx.Head, k = TxHwCur;
        if (head >= n) return;
        long sent = 0, bytes = 0, drops = 0, invalid = 0;
        while (k != head)
        {
            ref Slot s = ref tx.Slots[k];
            if (!Pool.IsSendable(s)) invalid++;
            else
            {
                nint w = Libc.Write(_fd, Pool.BufferPointer(s.BufferIndex), s.Length);
                if (w < 0)
                {
                    int e = Libc.Errno;
                    if (e is Errno.EAGAIN or Errno.EINTR or Errno.ENOBUFS) break; // full for now: try again at the next sync
                    drops++; // the device refused this frame (down, or too big): drop it and go on
                }
                else { sent++; bytes += s.Length; }
            }
            k = k + 1 == n ? 0 : k + 1;
        }
        FinishTxSync(k, sent, bytes, drops, invalid);
    }

    public override void RxSync()
    {
        var rx = RxRing;
        uint n = (uint)rx.Size, head = rx.Head, t = rx.Tail;
        if (head >= n) return;
        long got = 0, bytes = 0, invalid = 0;
        // Fill [tail, head - 1): the slots the user has handed back.
        while ((t + 1) % n != head)
        {
            ref Slot s = ref rx.Slots[t];
            if (!Pool.IsValid(s.BufferIndex))
            {
                // The user left a buffer index here that is not one of the pool's (a swap gone
                // wrong): never read through it. The frame meant for this slot is read into a
                // discard buffer and counted invalid, as TX counts a slot it cannot send; the
                // slot stays unfilled until it holds a real buffer again.
                nint d;
                fixed (byte* p = _discard) d = Libc.Read(_fd, p, (nuint)_discard.Length);
                if (d <= 0) break;
                invalid++;
                continue;
            }
            nint r = Libc.Read(_fd, Pool.BufferPointer(s.BufferIndex), (nuint)Pool.BufferSize);
            if (r <= 0) break; // EAGAIN: nothing more now
            s.Length = (ushort)r;
            s.Flags = SlotFlags.None;
            got++;
            bytes += r;
            t = t + 1 == n ? 0 : t + 1;
        }
        rx.SetTail(t);
        rx.Counters.Record(got, bytes, invalid: invalid);
    }

    protected override bool Block(bool rx, long timeoutNs, bool interruptible) => PollDescriptor(_fd, rx, timeoutNs);

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Libc.Close(_fd); // a TAP created here without IFF_PERSIST goes away with its last descriptor
        FreeRings();
    }
}
