namespace Netloom.Interop;

/// <summary>
/// The errno values Netloom acts on, by their kernel names (asm-generic/errno-base.h and
/// errno.h). io_uring reports them negated in a completion's res; system calls through libc
/// leave them in errno; the `netloom run` engine answers programs with them. RunLayoutTests
/// pins every one against gcc's headers (UringLayoutTests the io_uring engine's).
/// </summary>
internal static class Errno
{
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, ENXIO = 6, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
        EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENFILE = 23, EMFILE = 24, EPIPE = 32, EDOM = 33, ENOSYS = 38,
        ETIME = 62, ENOTSOCK = 88, EDESTADDRREQ = 89, EMSGSIZE = 90, EPROTOTYPE = 91, ENOPROTOOPT = 92,
        EPROTONOSUPPORT = 93, EOPNOTSUPP = 95, EAFNOSUPPORT = 97, EADDRINUSE = 98, EADDRNOTAVAIL = 99, ENETDOWN = 100,
        ENETUNREACH = 101, ECONNABORTED = 103, ECONNRESET = 104, ENOBUFS = 105, EISCONN = 106, ENOTCONN = 107,
        ETIMEDOUT = 110, ECONNREFUSED = 111, EHOSTUNREACH = 113, EALREADY = 114, EINPROGRESS = 115, ECANCELED = 125;
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
