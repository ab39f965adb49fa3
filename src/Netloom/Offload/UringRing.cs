using System.Runtime.InteropServices;
using Netloom.Interop;
using static Netloom.Interop.IoUring;

namespace Netloom.Offload;

/// <summary>What went wrong setting io_uring up, said so a user can act on it.</summary>
public sealed class UringUnavailableException(string message, int errno) : Exception(message)
{
    public int Errno { get; } = errno;
}

/// <summary>
/// One io_uring instance: the submission queue (SQ), its entries (SQEs) and the completion queue
/// (CQ), each mmap'd from the kernel. One thread owns it. Prepare entries with <see cref="TryGetSqe"/>,
/// then <see cref="Submit"/> publishes the SQ tail once and enters the kernel once for all of
/// them; completions are read with <see cref="TryPeek"/> and <see cref="Advance"/>.
/// </summary>
internal sealed unsafe partial class UringRing : IDisposable
{
    private readonly int _fd;
    private readonly void* _sqRing, _cqRing;
    private readonly nuint _sqRingSize, _cqRingSize, _sqesSize;
    private readonly bool _singleMmap;
    private readonly uint* _sqHead, _sqTail, _sqFlags, _sqArray, _cqHead, _cqTail, _cqFlags;
    private readonly uint _sqMask, _cqMask;
    private readonly Sqe* _sqes;
    private readonly Cqe* _cqes;
    private uint _sqLocalTail;   // entries prepared but not yet published
    private readonly bool _sqPoll;
    private bool _disposed;

    public UringRing(uint entries = 256, uint flags = 0, uint cqEntries = 0, uint sqThreadIdleMs = 50)
    {
        var p = new Params { Flags = flags | (cqEntries > 0 ? SetupCqSize : 0), CqEntries = cqEntries, SqThreadIdle = sqThreadIdleMs };
        _sqPoll = (flags & SetupSqPoll) != 0;
        int fd = Setup(entries, &p);
        if (fd < 0) throw Unavailable("io_uring_setup", Libc.Errno);
        _fd = fd;
        Features = p.Features;
        SqEntries = p.SqEntries;
        CqEntries = p.CqEntries;
        _sqRingSize = p.SqOff.Array + p.SqEntries * sizeof(uint);
        _cqRingSize = p.CqOff.Cqes + p.CqEntries * (uint)sizeof(Cqe);
        _singleMmap = (p.Features & FeatSingleMmap) != 0;
        if (_singleMmap) _sqRingSize = _cqRingSize = Math.Max(_sqRingSize, _cqRingSize);
        _sqRing = Map(_sqRingSize, OffSqRing);
        _cqRing = _singleMmap ? _sqRing : Map(_cqRingSize, OffCqRing);
        _sqesSize = p.SqEntries * (uint)sizeof(Sqe);
        _sqes = (Sqe*)Map(_sqesSize, OffSqes);
        byte* sq = (byte*)_sqRing, cq = (byte*)_cqRing;
        _sqHead = (uint*)(sq + p.SqOff.Head);
        _sqTail = (uint*)(sq + p.SqOff.Tail);
        _sqFlags = (uint*)(sq + p.SqOff.Flags);
        _sqArray = (uint*)(sq + p.SqOff.Array);
        _sqMask = *(uint*)(sq + p.SqOff.RingMask);
        _cqHead = (uint*)(cq + p.CqOff.Head);
        _cqTail = (uint*)(cq + p.CqOff.Tail);
        _cqFlags = (uint*)(cq + p.CqOff.Flags);
        _cqMask = *(uint*)(cq + p.CqOff.RingMask);
        _cqes = (Cqe*)(cq + p.CqOff.Cqes);
        _sqLocalTail = *_sqTail;
        // The SQ array maps slot i to SQE i for good: entries are used in ring order.
        for (uint i = 0; i < p.SqEntries; i++) _sqArray[i] = i;
    }

    public int Fd => _fd;
    public uint Features { get; }
    public uint SqEntries { get; }
    public uint CqEntries { get; }
    public long Enters { get; private set; }
    /// <summary>A kernel thread polls the SQ (IORING_SETUP_SQPOLL): submitting needs no system call while it is awake.</summary>
    public bool SqPoll => _sqPoll;

    /// <summary>
    /// Registers a table of <paramref name="count"/> empty file slots (IORING_REGISTER_FILES with
    /// -1 entries): accepts can then put sockets straight into it (direct descriptors), and
    /// operations on them skip the per-call file lookup. False when the kernel refuses.
    /// </summary>
    public bool RegisterSparseFiles(int count)
    {
        var fds = new int[count];
        Array.Fill(fds, -1);
        fixed (int* f = fds) return IoUring.Register(_fd, RegisterFiles, f, (uint)count) >= 0;
    }

    /// <summary>
    /// Registers <paramref name="eventFd"/> to be signalled when completions are posted or, on a
    /// DEFER_TASKRUN ring, when completions wait for the owner to run them: a thread sleeping in
    /// poll on other descriptors can include it. Starts disabled (<see cref="EventFdEnabled"/>).
    /// </summary>
    public bool RegisterEventFd(int eventFd)
    {
        EventFdEnabled = false;
        return IoUring.Register(_fd, IoUring.RegisterEventFd, &eventFd, 1) >= 0;
    }

    /// <summary>The registered eventfd is signalled (IORING_CQ_EVENTFD_DISABLED clear): only while a poll waits on it, so a busy ring pays nothing.</summary>
    public bool EventFdEnabled
    {
        get => (Volatile.Read(ref *_cqFlags) & 1) == 0;
        set
        {
            uint f = Volatile.Read(ref *_cqFlags);
            Volatile.Write(ref *_cqFlags, value ? f & ~1u : f | 1u);
            Interlocked.MemoryBarrier(); // the flag before the caller reads the queues
        }
    }

    /// <summary>The entries prepared and not yet published are those from <see cref="PublishedTail"/> up to <see cref="PreparedTail"/> (<see cref="EntryAt"/>).</summary>
    public uint PublishedTail => Volatile.Read(ref *_sqTail);
    public uint PreparedTail => _sqLocalTail;
    /// <summary>Every published entry has been taken by the kernel.</summary>
    public bool AllPublishedConsumed => Volatile.Read(ref *_sqHead) == PublishedTail;
    public Sqe* EntryAt(uint index) => &_sqes[index & _sqMask];

    /// <summary>
    /// Turns a prepared entry that is not yet published into a no-op with
    /// <paramref name="userData"/>: what it would have done will not happen (the caller does it
    /// another way). False when it is published already (the kernel takes it at the next entry).
    /// </summary>
    public bool TryNeutralize(uint index, ulong userData)
    {
        if ((int)(index - PublishedTail) < 0 || (int)(_sqLocalTail - index) <= 0) return false;
        Sqe* sqe = EntryAt(index);
        *sqe = default;
        sqe->Opcode = OpNop;
        sqe->UserData = userData;
        return true;
    }

    private void* Map(nuint size, ulong offset)
    {
        void* p = Libc.Mmap(null, size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED | Libc.MAP_POPULATE, _fd, (nint)offset);
        if (p == (void*)-1) throw Unavailable($"mmap of the io_uring region at 0x{offset:x}", Libc.Errno);
        return p;
    }

    internal static UringUnavailableException Unavailable(string what, int errno)
    {
        string disabled = File.Exists("/proc/sys/kernel/io_uring_disabled") ? File.ReadAllText("/proc/sys/kernel/io_uring_disabled").Trim() : "?";
        string hint = errno switch
        {
            Errno.EPERM or Errno.EACCES => $"io_uring is not allowed here (kernel.io_uring_disabled={disabled}, or a seccomp filter); run with --engine sockets",
            Errno.ENOSYS => "this kernel has no io_uring (ENOSYS); run with --engine sockets",
            Errno.ENOMEM => "not enough locked memory for the rings; raise RLIMIT_MEMLOCK or use fewer entries",
            _ => $"{Libc.Describe(errno)} (errno {errno})",
        };
        return new UringUnavailableException($"{what} failed: {hint}", errno);
    }

    /// <summary>Which operations this kernel's io_uring supports (IORING_REGISTER_PROBE).</summary>
    public bool Supports(byte op)
    {
        int size = sizeof(ProbeHeader) + 256 * sizeof(ProbeOp);
        byte* buf = stackalloc byte[size];
        new Span<byte>(buf, size).Clear();
        if (IoUring.Register(_fd, RegisterProbe, buf, 256) < 0) return false;
        var ops = (ProbeOp*)(buf + sizeof(ProbeHeader));
        return op <= ((ProbeHeader*)buf)->LastOp && (ops[op].Flags & ProbeOpSupported) != 0;
    }

    /// <summary>Free submission slots (prepared but unsubmitted entries count as used).</summary>
    public uint SqSpace => SqEntries - (_sqLocalTail - Volatile.Read(ref *_sqHead));

    /// <summary>The next free SQE, cleared, or false when the SQ is full (submit first).</summary>
    public bool TryGetSqe(out Sqe* sqe)
    {
        sqe = null;
        if (SqSpace == 0) return false;
        sqe = &_sqes[_sqLocalTail & _sqMask];
        *sqe = default;
        _sqLocalTail++;
        return true;
    }

    /// <summary>
    /// The next free SQE, cleared; when the SQ is full, submits what is prepared first to make room
    /// (liburing's io_uring_get_sqe returns NULL instead and leaves the submit to the caller).
    /// </summary>
    public Sqe* NextSqe()
    {
        Sqe* sqe;
        while (!TryGetSqe(out sqe))
        {
            if (!MayEnter) throw new IOException("the io_uring submission queue is full and only its owner thread may submit (--single-issuer); that thread has not called in meanwhile");
            Submit();
        }
        return sqe;
    }

    /// <summary>A SINGLE_ISSUER ring: only the thread that called <see cref="MarkOwnerThread"/> may enter it; another thread's <see cref="NextSqe"/> on a full queue throws instead.</summary>
    public bool OwnerOnly { get; private set; }
    [ThreadStatic] private static bool t_owner;

    /// <summary>The calling thread may enter the ring: any thread, or on an <see cref="OwnerOnly"/> ring only its owner.</summary>
    public bool MayEnter => !OwnerOnly || t_owner;

    public void MarkOwnerThread()
    {
        OwnerOnly = true;
        t_owner = true;
    }

    /// <summary>
    /// Publishes every prepared entry and enters the kernel once; with <paramref name="waitFor"/>
    /// it also waits until that many completions are ready. <paramref name="getEvents"/> enters
    /// even with nothing to submit or wait for, to run completions the kernel deferred to this
    /// thread (DEFER_TASKRUN). Returns the entries the kernel took.
    /// </summary>
    public int Submit(uint waitFor = 0, bool getEvents = false)
    {
        uint toSubmit = Unsubmitted;
        Volatile.Write(ref *_sqTail, _sqLocalTail);
        uint flags = waitFor > 0 || getEvents ? EnterGetEvents : 0;
        if (_sqPoll)
        {
            // The kernel thread takes the entries by itself; enter only to wake it after it idled, or to wait.
            Interlocked.MemoryBarrier(); // the tail store before reading its flags (liburing's smp_mb)
            if ((Volatile.Read(ref *_sqFlags) & SqNeedWakeup) != 0) flags |= EnterSqWakeup;
            if (flags == 0) return (int)toSubmit;
        }
        else if (toSubmit == 0 && !_publishedOnly && waitFor == 0 && !getEvents) return 0;
        // Entries published earlier without entering (Publish) go in too: the kernel submits what
        // the SQ holds, at most the count it is given.
        bool hadPublished = _publishedOnly;
        if (_publishedOnly) { toSubmit = SqEntries; _publishedOnly = false; }
        while (true)
        {
            int r = Enter(_fd, toSubmit, waitFor, flags);
            Enters++;
            if (r >= 0) return r;
            int e = Libc.Errno;
            if (e != Errno.EINTR && (hadPublished || toSubmit > 0)) _publishedOnly = true; // still to be submitted
            if (e == Errno.EINTR) continue;
            if (e is Errno.EAGAIN or Errno.EBUSY /* the CQ is full: reap first */) return 0;
            if (e == Errno.EEXIST) throw new IOException("io_uring_enter: only the thread that owns this SINGLE_ISSUER ring may enter it");
            throw new IOException($"io_uring_enter: {Libc.Describe(e)} (errno {e})");
        }
    }

    // Entries were published by Publish and no enter has submitted them yet.
    private volatile bool _publishedOnly;

    /// <summary>
    /// Publishes every prepared entry without entering the kernel; returns how many. A thread that
    /// prepares entries under a lock can publish them there and enter (<see cref="EnterAndWait"/>)
    /// after leaving it, while other threads prepare more.
    /// </summary>
    public uint Publish()
    {
        uint n = Unsubmitted;
        Volatile.Write(ref *_sqTail, _sqLocalTail);
        if (n > 0) _publishedOnly = true;
        return n;
    }

    /// <summary>The kernel honours a minimum wait (<see cref="EnterAndWait"/>'s coalescing; 6.12 and later).</summary>
    public bool SupportsMinWait => (Features & FeatMinTimeout) != 0;

    /// <summary>
    /// One io_uring_enter: submits <paramref name="toSubmit"/> published entries and waits for a
    /// completion, at most <paramref name="timeoutNs"/> (negative: no limit), with
    /// <paramref name="sigmask"/> (a kernel sigset, or null) in force while it waits. Returns 0,
    /// -ETIME, or -EINTR when a signal handler ran.
    /// With <paramref name="coalesceUs"/> (needs <see cref="SupportsMinWait"/>) it waits for
    /// <paramref name="batch"/> completions for up to that long from the start of the wait, and
    /// after that returns at the first completion, or at once if any came meanwhile: a wait that
    /// starts while completions arrive often collects several, and one that outlasts the minimum
    /// (an idle program) returns at the first, as without it. May return early (0) when there is no
    /// limit: the kernel's minimum wait needs an overall timeout, so it is one second.
    /// </summary>
    public int EnterAndWait(uint toSubmit, long timeoutNs, void* sigmask, uint coalesceUs = 0, uint batch = 1)
    {
        if (coalesceUs > 0 && timeoutNs < 0) timeoutNs = 1_000_000_000;
        KernelTimespec ts = new() { Seconds = timeoutNs / 1_000_000_000, Nanoseconds = timeoutNs % 1_000_000_000 };
        GeteventsArg arg = new()
        {
            Sigmask = (ulong)sigmask, SigmaskSize = sigmask is null ? 0u : 8u,
            Timespec = timeoutNs < 0 ? 0 : (ulong)&ts,
            MinWaitUsec = coalesceUs,
        };
        // The kernel submits what the SQ holds, at most the count given: everything published so far.
        if (toSubmit > 0 || _publishedOnly) { toSubmit = SqEntries; _publishedOnly = false; }
        int r = EnterExt(_fd, toSubmit, coalesceUs > 0 ? Math.Max(1u, batch) : 1u, EnterGetEvents, &arg);
        Enters++;
        if (r >= 0) return 0;
        int e = Libc.Errno;
        if (e is Errno.EINTR or Errno.ETIME) return -e;
        if (e is Errno.EAGAIN or Errno.EBUSY) return 0;
        throw new IOException($"io_uring_enter: {Libc.Describe(e)} (errno {e})");
    }

    /// <summary>The submission-queue index of <paramref name="sqe"/> (a prepared entry), for <see cref="Consumed"/>.</summary>
    public uint SqIndexOf(Sqe* sqe)
    {
        uint slot = (uint)(sqe - _sqes);
        return _sqLocalTail - 1 - ((_sqLocalTail - 1 - slot) & _sqMask);
    }

    /// <summary>The kernel has taken the entry at <paramref name="index"/> from the submission queue (submitted it).</summary>
    public bool Consumed(uint index) => (int)(Volatile.Read(ref *_sqHead) - index) > 0;

    /// <summary>
    /// Publishes every prepared entry and enters once to submit everything the submission queue
    /// holds, including entries another thread published and has not entered for yet: when it
    /// returns, every entry published before the call has been taken by the kernel (unless the
    /// completion queue was full: check <see cref="Consumed"/>).
    /// </summary>
    public void SubmitAll()
    {
        Volatile.Write(ref *_sqTail, _sqLocalTail);
        while (true)
        {
            int r = Enter(_fd, SqEntries, 0, 0);
            Enters++;
            if (r >= 0 || Libc.Errno != Errno.EINTR) return;
        }
    }

    /// <summary>Entries prepared and not yet submitted.</summary>
    public uint Unsubmitted => _sqLocalTail - *_sqTail;

    /// <summary>
    /// The kernel has completions waiting to be run on this thread (IORING_SQ_TASKRUN, set when the
    /// ring was made with IORING_SETUP_TASKRUN_FLAG): a busy-polling owner reads this instead of entering.
    /// </summary>
    public bool TaskWorkPending => (Volatile.Read(ref *_sqFlags) & SqTaskrun) != 0;

    /// <summary>The oldest unread completion, if any.</summary>
    public bool TryPeek(out Cqe cqe)
    {
        uint head = *_cqHead;
        if (head == Volatile.Read(ref *_cqTail)) { cqe = default; return false; }
        cqe = _cqes[head & _cqMask];
        return true;
    }

    /// <summary>Marks <paramref name="count"/> completions read, giving their slots back to the kernel.</summary>
    public void Advance(uint count = 1) => Volatile.Write(ref *_cqHead, *_cqHead + count);

    public uint CqReady => Volatile.Read(ref *_cqTail) - *_cqHead;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Libc.Munmap(_sqes, _sqesSize);
        if (!_singleMmap) Libc.Munmap(_cqRing, _cqRingSize);
        Libc.Munmap(_sqRing, _sqRingSize);
        Libc.Close(_fd);
    }
}
