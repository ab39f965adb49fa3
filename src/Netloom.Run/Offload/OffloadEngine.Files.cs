using Netloom.Offload;
using Netloom.Run.Native;
using static Netloom.Interop.IoUring;

namespace Netloom.Run;

/// <summary>
/// Files beside the offloaded sockets (ESCA's "assume success" applied to what a static-file
/// server does per request). A small <c>sendfile</c> behind queued bytes becomes a read in the
/// ring straight into the connection's send queue, ordered before the sends after it; the close
/// of that file becomes a close in the ring, after the read. Neither is a system call of its own:
/// both go in with the next io_uring_enter.
///
/// What changes for the program, and what keeps it safe:
/// - sendfile returns the count asked for. The bytes go out once the read is done; a read that
///   finds fewer bytes (the file shrank since the program's fstat) or fails aborts the connection
///   (shutdown both ways and EIO on the next call), as a web server closes a connection whose file
///   was truncated: the peer never gets a wrong byte after a short reply.
/// - A queued close frees its number one batch later (at most a millisecond, the flusher's period):
///   an open in between gets another number, and a lock the file held is released then.
/// - dup2/dup3 onto such a number, close_range over it, and fork first submit the queued closes
///   (the interposer calls <see cref="Settle"/>), so a queued close never closes a descriptor the
///   program made after.
/// </summary>
internal sealed unsafe partial class OffloadEngine
{
    /// <summary>
    /// Sendfile by a read in the ring only up to this size (a small file's whole body). A larger
    /// file costs more in the two copies (into the queue, into the socket) than in two system
    /// calls: its queued bytes go first with one send, then the kernel's sendfile, which copies
    /// nothing (<see cref="SendQueuedNow"/>).
    /// </summary>
    private const int MaxRingFileRead = 16 << 10;
    private const byte FileRead = 9, FileClose = 10, WritePoll = 11;

    // Reads in the ring: the connection and the range each fills (slot = the tag's slot).
    private readonly List<(OffloadConnection Conn, SendQueue.FileFill Fill)?> _reads = new();
    private readonly Stack<int> _freeReads = new();
    private int _readsInFlight;
    // Files the program gave sendfile on an offloaded connection since it last closed them: their close may be queued.
    private readonly HashSet<int> _files = new();
    // Queued closes not known to be submitted yet: descriptor -> the SQ index of its close.
    private readonly Dictionary<int, uint> _closing = new();
    // What NETLOOM_STATS=1 prints beside the other counts.
    private long _fileReads, _fileCloses;

    /// <summary>
    /// sendfile of up to 64 KiB at an explicit offset behind bytes still queued: reads in the ring
    /// into the queue (one per contiguous piece). Returns -1 when this path does not apply.
    /// </summary>
    private long SendFileByRing(OffloadConnection c, int inFd, long* offset, nuint count)
    {
        if (offset is null || count == 0 || count > MaxRingFileRead || inFd < 0) return -1;
        if (c.Output.Queued == 0 && !c.SendInFlight) return -1; // the kernel's sendfile (no copy) does better
        if (c.SendError != 0 || c.ShutWrite || c.Output.Queued + (long)count > OffloadConnection.MaxQueued) return -1;
        long pos = *offset;
        if (pos < 0) return -Errno.EINVAL;
        int left = (int)count;
        long at = pos;
        while (left > 0)
        {
            var fill = c.Output.Reserve(left, out nint address);
            int slot;
            if (_freeReads.Count > 0) slot = _freeReads.Pop();
            else { slot = _reads.Count; _reads.Add(null); }
            _reads[slot] = (c, fill);
            var sqe = _ring.NextSqe();
            UringRing.PrepRead(sqe, inFd, (void*)address, (uint)fill.Length, (ulong)at);
            sqe->UserData = UringTag.Make(FileRead, slot, 0);
            _readsInFlight++;
            _fileReads++;
            at += fill.Length;
            left -= fill.Length;
        }
        *offset = pos + (long)count;
        _files.Add(inFd);
        if (_ring.Unsubmitted >= _ring.SqEntries / 2) Flush();
        return (long)count;
    }

    /// <summary>
    /// Before a sendfile too large for the ring's read: the bytes queued ahead (a reply's headers)
    /// go now with one non-blocking send, so the file can follow by the kernel's sendfile. Only
    /// when no send of ours is in flight or being filled (the bytes keep their order); whatever
    /// the socket does not take stays queued, and the file then goes by copy behind it.
    /// </summary>
    private static void SendQueuedNow(OffloadConnection c, bool aheadOfFills = false)
    {
        if (c.SendInFlight || (c.Output.Filling && !aheadOfFills) || c.SendError != 0 || (c.ShutWrite && !aheadOfFills)) return;
        while (c.Output.Queued > 0)
        {
            var (address, length) = c.Output.Next();
            if (length == 0) return;
            nint r = Sys.Send(c.IoFd, (void*)address, (nuint)length, Abi.MSG_DONTWAIT | Abi.MSG_NOSIGNAL);
            if (r < 0)
            {
                int e = Libc.Errno;
                if (e is Errno.EAGAIN or Errno.EINTR) return;
                c.SendError = e; // reported by the next call, as a failed send in the ring is
                c.Output.Dispose();
                c.Moved();
                return;
            }
            c.Output.Sent((int)r);
            c.Moved(); // room in the queue: writable again for a program that filled it
            if (r < length) return;
        }
    }

    /// <summary>The kernel socket's send buffer is full (a short sendfile): not writable until a poll in the ring says it drained.</summary>
    private void ArmWritePoll(OffloadConnection c, bool full = true)
    {
        if (full && !c.KernelFull) { c.KernelFull = true; c.Moved(); }
        if (c.WritePollArmed) return;
        var sqe = _ring.NextSqe();
        UringRing.PrepPollAdd(sqe, c.IoFd, (uint)Abi.POLLOUT);
        sqe->UserData = UringTag.Make(WritePoll, c.Slot, c.Generation);
        c.WritePollArmed = true;
    }

    private int WritePollDone(in Cqe cqe)
    {
        if (Resolve(cqe.UserData) is not OffloadConnection c) return 0;
        c.WritePollArmed = false;
        c.KernelFull = false;
        c.Moved();
        if (SingleIssuer && _roomWaits.Remove(c)) KickSend(c); // a send that met a full socket (owner mode) goes again
        return 1;
    }

    /// <summary>A read in the ring ended: its range may be sent, or, short or failed, the connection is aborted.</summary>
    private int FileReadDone(in Cqe cqe)
    {
        int slot = UringTag.Slot(cqe.UserData);
        if ((uint)slot >= (uint)_reads.Count || _reads[slot] is not var (c, fill)) return 0;
        _reads[slot] = null;
        _freeReads.Push(slot);
        _readsInFlight--;
        c.Output.Filled(fill);
        if (cqe.Res != fill.Length && c.SendError == 0 && c.Slot >= 0)
        {
            // The file was shorter than the program said (or unreadable): the reply cannot be
            // completed, so nothing after it may follow; the peer sees the connection end.
            c.SendError = cqe.Res < 0 ? -cqe.Res : Errno.EIO;
            if (!c.SendInFlight) c.Output.Dispose(); // else the send's completion sees the error; close frees the rest
            Sys.Shutdown(c.IoFd, Abi.SHUT_RDWR);
        }
        c.Moved();
        KickSend(c);
        return 1;
    }

    /// <summary>close of a file the program gave sendfile on an offloaded socket: queued in the ring (behind any read of it there). Kernel otherwise.</summary>
    public long CloseFile(int fd)
    {
        lock (_lock)
        {
            if (!_files.Remove(fd)) return Abi.Kernel;
            var sqe = _ring.NextSqe();
            UringRing.PrepClose(sqe, fd);
            sqe->UserData = UringTag.Make(FileClose, 0, 0);
            _closing[fd] = _ring.SqIndexOf(sqe);
            _fileCloses++;
            if (_closing.Count > 256) PruneClosing();
            if (!MayEnter) WakeOwner();
            return 0;
        }
    }

    /// <summary>
    /// Before the program reuses a descriptor number by itself (dup2/dup3 onto it, close_range, fork;
    /// <paramref name="fd"/> -1 for all): queued closes of it are submitted first, so they close
    /// the file they were meant for.
    /// </summary>
    public long Settle(int fd)
    {
        lock (_lock)
        {
            if (fd >= 0) _files.Remove(fd); // the program's own call closes it now
            if (_closing.Count == 0) return 0;
            if (!MayEnter) { SettleForOther(); return 0; }
            PruneClosing();
            if (fd >= 0 ? !_closing.ContainsKey(fd) : _closing.Count == 0) return 0;
            for (int i = 0; i < 1000 && _closing.Count > 0; i++)
            {
                _ring.SubmitAll();
                PruneClosing();
                if (_closing.Count > 0) Reap(); // the completion queue was full
            }
            return 0;
        }
    }

    /// <summary>Forgets the queued closes the kernel has taken from the submission queue.</summary>
    private void PruneClosing()
    {
        List<int>? done = null;
        foreach (var (fd, index) in _closing) if (_ring.Consumed(index)) (done ??= new()).Add(fd);
        if (done is not null) foreach (int fd in done) _closing.Remove(fd);
    }
}
