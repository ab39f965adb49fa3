namespace Netloom.Interop;

/// <summary>
/// The errno values Netloom acts on, by their kernel names (asm-generic/errno-base.h and
/// errno.h). io_uring reports them negated in a completion's res; system calls through libc
/// leave them in errno. UringLayoutTests pins each against gcc's headers.
/// </summary>
internal static class Errno
{
    public const int EPERM = 1, EINTR = 4, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EBUSY = 16, EINVAL = 22, ENOSYS = 38,
        ETIME = 62, EOPNOTSUPP = 95, ENOBUFS = 105, ECONNRESET = 104, ECANCELED = 125;
}

/// <summary>Socket-level constants the io_uring engine writes into SQEs or socket options itself (sys/socket.h).</summary>
internal static partial class SocketCalls
{
    public const int SOL_SOCKET = 1, SO_REUSEPORT = 15;
    /// <summary>SOCK_CLOEXEC: also the accept4 flag an IORING_OP_ACCEPT carries in its op flags.</summary>
    public const int SOCK_CLOEXEC = 0x80000;
}

internal static unsafe partial class Libc
{
    /// <summary>MAP_POPULATE: fault the pages in at mmap time (the io_uring rings are touched at once anyway).</summary>
    public const int MAP_POPULATE = 0x8000;
}
