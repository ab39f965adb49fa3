using Netloom.Interop;
using static Netloom.Interop.IoUring;

namespace Netloom.Offload;

/// <summary>
/// SQE builders, named after liburing's io_uring_prep_* helpers (which are inline C, so not
/// callable from here). Each fills the fields its operation reads in an SQE that
/// <see cref="TryGetSqe"/> or <see cref="NextSqe"/> has cleared; the caller then sets user_data
/// and, for a registered file, <see cref="FixedFile"/>.
/// </summary>
internal sealed unsafe partial class UringRing
{
    /// <summary>io_uring_prep_nop.</summary>
    public static void PrepNop(Sqe* s) => s->Opcode = OpNop;

    /// <summary>
    /// io_uring_prep_multishot_accept: one SQE keeps accepting, a completion (F_MORE) per
    /// connection; res is the new descriptor. <paramref name="flags"/> are accept4's (SOCK_CLOEXEC).
    /// </summary>
    public static void PrepMultishotAccept(Sqe* s, int listenFd, int flags)
    {
        s->Opcode = OpAccept;
        s->Fd = listenFd;
        s->IoPrio = AcceptMultishot;
        s->OpFlags = (uint)flags;
    }

    /// <summary>
    /// io_uring_prep_multishot_accept_direct: each new socket goes into a free slot of the
    /// registered file table (IORING_FILE_INDEX_ALLOC); res is the slot. A direct descriptor has no
    /// descriptor-table entry, so SOCK_CLOEXEC would be refused (EINVAL).
    /// </summary>
    public static void PrepMultishotAcceptDirect(Sqe* s, int listenFd)
    {
        PrepMultishotAccept(s, listenFd, 0);
        s->FileIndex = FileIndexAlloc;
    }

    /// <summary>
    /// io_uring_prep_recv_multishot with buffer selection: receives until the stream ends, each
    /// completion into a buffer the kernel picks from <paramref name="bufferGroup"/> (CQE flags >> 16 name it).
    /// </summary>
    public static void PrepRecvMultishot(Sqe* s, int fd, ushort bufferGroup)
    {
        s->Opcode = OpRecv;
        s->Fd = fd;
        s->IoPrio = RecvMultishot;
        s->Flags |= SqeBufferSelect;
        s->BufIndex = bufferGroup;
    }

    /// <summary>io_uring_prep_recv into one buffer.</summary>
    public static void PrepRecv(Sqe* s, int fd, void* buffer, uint length, int flags)
    {
        s->Opcode = OpRecv;
        s->Fd = fd;
        s->Addr = (ulong)buffer;
        s->Len = length;
        s->OpFlags = (uint)flags;
    }

    /// <summary>io_uring_prep_send.</summary>
    public static void PrepSend(Sqe* s, int fd, void* buffer, uint length, int flags)
    {
        s->Opcode = OpSend;
        s->Fd = fd;
        s->Addr = (ulong)buffer;
        s->Len = length;
        s->OpFlags = (uint)flags;
    }

    /// <summary>
    /// io_uring_prep_send_zc: completes twice, first with the byte count (F_MORE), then with
    /// F_NOTIF once the kernel no longer reads <paramref name="buffer"/>.
    /// </summary>
    public static void PrepSendZc(Sqe* s, int fd, void* buffer, uint length, int flags)
    {
        PrepSend(s, fd, buffer, length, flags);
        s->Opcode = OpSendZc;
    }

    /// <summary>
    /// A send bundle (io_uring_prep_send with IOSQE_BUFFER_SELECT and IORING_RECVSEND_BUNDLE, 6.10+):
    /// one send takes every buffer queued in <paramref name="bufferGroup"/>, in order, as writev would.
    /// </summary>
    public static void PrepSendBundle(Sqe* s, int fd, ushort bufferGroup, int flags)
    {
        s->Opcode = OpSend;
        s->Fd = fd;
        s->Flags |= SqeBufferSelect;
        s->BufIndex = bufferGroup;
        s->IoPrio = RecvSendBundle;
        s->OpFlags = (uint)flags;
    }

    /// <summary>io_uring_prep_read (offset ulong.MaxValue: the file's current position, as read(2)).</summary>
    public static void PrepRead(Sqe* s, int fd, void* buffer, uint length, ulong offset)
    {
        s->Opcode = OpRead;
        s->Fd = fd;
        s->Addr = (ulong)buffer;
        s->Len = length;
        s->Off = offset;
    }

    /// <summary>io_uring_prep_timeout: completes with -ETIME after <paramref name="time"/>, or once <paramref name="count"/> other completions came (0: never).</summary>
    public static void PrepTimeout(Sqe* s, KernelTimespec* time, uint count, uint flags)
    {
        s->Opcode = OpTimeout;
        s->Fd = -1;
        s->Addr = (ulong)time;
        s->Len = 1;
        s->Off = count;
        s->OpFlags = flags;
    }

    /// <summary>io_uring_prep_poll_add: completes once (res: the ready poll bits) when <paramref name="fd"/> is ready for <paramref name="events"/>.</summary>
    public static void PrepPollAdd(Sqe* s, int fd, uint events)
    {
        s->Opcode = OpPollAdd;
        s->Fd = fd;
        s->OpFlags = events;
    }

    /// <summary>io_uring_prep_shutdown (IORING_OP_SHUTDOWN always runs in io-wq).</summary>
    public static void PrepShutdown(Sqe* s, int fd, int how)
    {
        s->Opcode = OpShutdown;
        s->Fd = fd;
        s->Len = (uint)how;
    }

    /// <summary>io_uring_prep_close.</summary>
    public static void PrepClose(Sqe* s, int fd)
    {
        s->Opcode = OpClose;
        s->Fd = fd;
    }

    /// <summary>io_uring_prep_close_direct: empties a registered file slot (file_index is the slot + 1).</summary>
    public static void PrepCloseDirect(Sqe* s, uint slot)
    {
        s->Opcode = OpClose;
        s->FileIndex = slot + 1;
    }

    /// <summary>io_uring_prep_cancel64: cancels the request carrying <paramref name="userData"/>.</summary>
    public static void PrepCancel(Sqe* s, ulong userData, uint flags)
    {
        s->Opcode = OpAsyncCancel;
        s->Fd = -1;
        s->Addr = userData;
        s->OpFlags = flags;
    }

    /// <summary>The SQE's fd is a registered file slot (IOSQE_FIXED_FILE), not a descriptor.</summary>
    public static void FixedFile(Sqe* s) => s->Flags |= SqeFixedFile;
}
