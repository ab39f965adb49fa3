using System.Runtime.InteropServices;
using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>
/// A kernel TCP socket whose calls the offload engine serves: a listener (multishot accept) or
/// a connection (multishot receive into provided buffers, sends queued and submitted in batches).
/// Every member is called with the engine lock held.
/// </summary>
internal abstract class OffloadSocket(int fd) : IEpollMember
{
    /// <summary>The descriptor io_uring operations name (the program's, or the engine's own dup once the program closed it).</summary>
    public int IoFd = fd;
    public int Names;
    public bool NonBlocking;
    public int Slot;
    public uint Generation;
    public int LingerOn, LingerSeconds;
    public long ReceiveTimeoutNs, SendTimeoutNs;
    /// <summary>SO_ZEROCOPY as the program set it (the kernel socket has it too: an accepted connection reads it from there).</summary>
    public bool ZeroCopy;

    public abstract short Readiness();
    public EpollWatchers Epoll { get; } = new();

    /// <summary>An event that may change what the socket is ready for: edge-triggered epoll reports it again, and every epoll set watching it looks.</summary>
    public void Moved() => Epoll.Moved();
}

internal sealed class OffloadListener(int fd) : OffloadSocket(fd)
{
    /// <summary>At most this many accepted connections wait for the program: past it accepting stops, and the kernel's backlog holds the rest.</summary>
    public const int MaxQueued = 4096;
    public readonly Queue<int> Accepted = new();
    public bool Armed;
    public int Error;

    public override short Readiness() => Accepted.Count > 0 ? Abi.POLLIN : Error != 0 ? Abi.POLLERR : (short)0;
}

/// <summary>The bytes queued for sending on one connection: native chunks, so a send in flight never moves.</summary>
internal sealed unsafe class SendQueue : IDisposable
{
    public const int ChunkSize = 64 << 10;
    // Chunks given back, for the next queue (under the engine lock, as every queue is): a reply
    // per request must not cost a malloc and a free of 64 KiB (and the heap's brk and page faults).
    private static readonly Stack<nint> s_free = new();
    private const int MaxFree = 256;

    private static nint Rent() => s_free.Count > 0 ? s_free.Pop() : (nint)NativeMemory.Alloc(ChunkSize);

    private static void Return(nint chunk)
    {
        if (s_free.Count < MaxFree) s_free.Push(chunk);
        else NativeMemory.Free((void*)chunk);
    }
    private readonly Queue<nint> _chunks = new();
    private nint _tail;          // the last chunk, being filled
    private int _headSent;       // bytes of the first chunk already sent
    private int _tailFilled;     // bytes of the last chunk filled
    public long Queued { get; private set; }

    // Reserved ranges a file read in the ring is still filling (sendfile), oldest first, by their
    // place in the stream of bytes ever queued: nothing at or past the first one may be sent yet,
    // and no chunk may go back to the pool while a read still writes into it.
    private readonly Queue<FileFill> _fills = new();
    private long _appended, _sentTotal;
    private bool _disposed;

    /// <summary>A range of the queue that a read in the ring fills; <see cref="Done"/> once it did.</summary>
    public sealed class FileFill(long start, int length)
    {
        public readonly long Start = start;
        public readonly int Length = length;
        public bool Done;
    }

    /// <summary>Ranges are still being filled.</summary>
    public bool Filling => _fills.Count > 0;

    /// <summary>
    /// Reserves up to <paramref name="want"/> contiguous bytes at the tail (fewer at a chunk's end)
    /// for a read in the ring to fill; they count as queued, and are sent once <see cref="Filled"/>.
    /// </summary>
    public FileFill Reserve(int want, out nint address)
    {
        if (_tail == 0 || _tailFilled == ChunkSize)
        {
            _tail = Rent();
            _chunks.Enqueue(_tail);
            _tailFilled = 0;
        }
        int n = Math.Min(want, ChunkSize - _tailFilled);
        address = _tail + _tailFilled;
        var fill = new FileFill(_appended, n);
        _fills.Enqueue(fill);
        _tailFilled += n;
        _appended += n;
        Queued += n;
        return fill;
    }

    /// <summary>A read finished its range; the ranges done at the front stop holding the sends back.</summary>
    public void Filled(FileFill fill)
    {
        fill.Done = true;
        while (_fills.Count > 0 && _fills.Peek().Done) _fills.Dequeue();
        if (_disposed && _fills.Count == 0) Dispose();
    }

    /// <summary>Appends up to <paramref name="room"/> bytes of <paramref name="data"/>; returns how many it took.</summary>
    public int Append(ReadOnlySpan<byte> data, long room)
    {
        int take = (int)Math.Min(data.Length, Math.Max(0, room));
        int done = 0;
        while (done < take)
        {
            if (_tail == 0 || _tailFilled == ChunkSize)
            {
                _tail = Rent();
                _chunks.Enqueue(_tail);
                _tailFilled = 0;
            }
            int n = Math.Min(take - done, ChunkSize - _tailFilled);
            data.Slice(done, n).CopyTo(new Span<byte>((byte*)_tail + _tailFilled, n));
            _tailFilled += n;
            done += n;
        }
        Queued += done;
        _appended += done;
        return done;
    }

    /// <summary>The contiguous bytes to send next (in the first chunk).</summary>
    public (nint Address, int Length) Next()
    {
        if (Queued == 0) return (0, 0);
        nint head = _chunks.Peek();
        int end = head == _tail ? _tailFilled : ChunkSize;
        int length = end - _headSent;
        if (_fills.Count > 0) length = (int)Math.Min(length, _fills.Peek().Start - _sentTotal); // not past a range still being read
        return (head + _headSent, length);
    }

    /// <summary>The kernel took <paramref name="n"/> bytes of <see cref="Next"/>.</summary>
    public void Sent(int n)
    {
        Queued -= n;
        _sentTotal += n;
        _headSent += n;
        nint head = _chunks.Peek();
        int end = head == _tail ? _tailFilled : ChunkSize;
        if (_headSent < end) return;
        _chunks.Dequeue();
        Return(head);
        _headSent = 0;
        if (head == _tail) { _tail = 0; _tailFilled = 0; }
    }

    public void Dispose()
    {
        Queued = 0;
        // A read in the ring still writes into a chunk: the chunks go back when the last one ends.
        if (_fills.Count > 0) { _disposed = true; return; }
        _disposed = false;
        _appended = _sentTotal = 0;
        while (_chunks.Count > 0) Return(_chunks.Dequeue());
        _tail = 0;
        _tailFilled = _headSent = 0;
        Queued = 0;
    }
}

internal sealed class OffloadConnection(int fd) : OffloadSocket(fd)
{
    /// <summary>Queued, unsent bytes past which a send takes no more (EAGAIN, then EPOLLOUT): about the kernel's tcp_wmem maximum.</summary>
    public const long MaxQueued = 4 << 20;

    // Received: provided buffers in arrival order (id, length), the first read up to HeadConsumed.
    public readonly Queue<(ushort Id, int Length)> Input = new();
    public int HeadConsumed;
    public long Available;
    public bool Eof, RecvArmed, Starved;
    public int RecvError;

    // Sending.
    public readonly SendQueue Output = new();
    public bool SendInFlight;
    /// <summary>Waits in the engine's list for its send to be prepared before the next submit.</summary>
    public bool KickPending;
    /// <summary>A send failed (EPIPE, ECONNRESET): reported by the next call, as a socket's pending error is.</summary>
    public int SendError;
    public bool SendErrorReported;
    public bool ShutWrite, ShutWritePending;
    /// <summary>A sendfile by the kernel found its send buffer full: not writable until the poll armed for POLLOUT completes.</summary>
    public bool KernelFull, WritePollArmed;

    /// <summary>The program closed it; the engine keeps <see cref="OffloadSocket.IoFd"/> (a dup) until the queue drains.</summary>
    public bool Closed;

    public bool Writable => Output.Queued < MaxQueued;

    /// <summary>
    /// MSG_ZEROCOPY sends: large ones go out with io_uring's zero-copy send and complete on its
    /// notification; the rest are copied into <see cref="Output"/> and complete at once, as
    /// copied; either way on this error queue (POLLERR).
    /// </summary>
    public readonly Netloom.Stack.ZeroCopyLog Completions = new();
    public uint ZeroCopyNext;
    /// <summary>Sends made with io_uring's zero-copy send, not yet reported (OffloadEngine.ZeroCopy.cs).</summary>
    public OffloadEngine.ZeroCopyState? Zc;

    public override short Readiness()
    {
        short r = Completions.IsEmpty ? (short)0 : Abi.POLLERR;
        if (Available > 0 || Eof || RecvError != 0) r |= Abi.POLLIN;
        if (Eof) r |= Abi.POLLRDHUP;
        if (RecvError != 0 || SendError != 0) r |= Abi.POLLERR | Abi.POLLHUP;
        if (Eof && ShutWrite) r |= Abi.POLLHUP;
        if (!ShutWrite && Writable && !KernelFull) r |= Abi.POLLOUT;
        if (SendError != 0) r |= Abi.POLLOUT;
        return r;
    }
}
