using System.Runtime.InteropServices;

namespace Netloom.Interop;

/// <summary>
/// The libc calls the ports use. Each returns what libc returns; the error is
/// <see cref="Marshal.GetLastPInvokeError"/> (SetLastError is on for every call).
/// </summary>
internal static unsafe partial class Libc
{
    public const int O_RDWR = 2, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000;
    public const short POLLIN = 1, POLLOUT = 4, POLLERR = 8, POLLHUP = 16;
    public const int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
    public const int MADV_HUGEPAGE = 14;
    public const int CLONE_NEWNET = 0x40000000;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buffer, nuint count);

    public const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;

    /// <summary>eventfd(2): a counter another thread can bump to wake a loop.</summary>
    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, void* argument);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, void* address, uint length);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, void* value, uint length);

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    public static partial int GetSockOpt(int fd, int level, int name, void* value, uint* length);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(void* address, nuint length);

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(void* address, nuint length, int advice);

    [LibraryImport("libc", EntryPoint = "sendmmsg", SetLastError = true)]
    public static partial int SendMMsg(int fd, MMsgHdr* messages, uint count, int flags);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    public static partial int SetNs(int fd, int type);

    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>The libc message for an errno value, such as "Operation not permitted".</summary>
    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}

internal static unsafe partial class Affinity
{
    [LibraryImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static partial int SchedSetAffinity(int pid, nuint size, ulong* mask);

    /// <summary>Pins the calling thread (pid 0 means "this thread") to one CPU; false if the kernel refused.</summary>
    public static bool PinCurrentThread(int cpu)
    {
        if (cpu < 0 || cpu >= 64) return false;
        ulong mask = 1UL << cpu;
        return SchedSetAffinity(0, sizeof(ulong), &mask) == 0;
    }

    /// <summary>Lets the calling thread run anywhere again (the kernel keeps only CPUs that exist).</summary>
    public static bool Unpin()
    {
        ulong mask = ulong.MaxValue;
        return SchedSetAffinity(0, sizeof(ulong), &mask) == 0;
    }
}

internal static partial class SocketCalls
{
    public const int SHUT_RDWR = 2, MSG_NOSIGNAL = 0x4000, MSG_DONTWAIT = 0x40;

    /// <summary>sendmsg(2): a gathered send from several buffers in one call.</summary>
    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    public static unsafe partial nint SendMsg(int fd, Libc.MsgHdr* message, int flags);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "shutdown", SetLastError = true)]
    public static partial int Shutdown(int fd, int how);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "getsockname", SetLastError = true)]
    private static unsafe partial int GetSockName(int fd, byte* address, uint* length);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "getpeername", SetLastError = true)]
    private static unsafe partial int GetPeerName(int fd, byte* address, uint* length);

    /// <summary>A socket's own address, or null when the kernel will not say (closed, not an IP socket).</summary>
    public static System.Net.IPEndPoint? LocalEndPoint(int fd) => EndPoint(fd, peer: false);

    /// <summary>A connected socket's peer, or null when the kernel will not say.</summary>
    public static System.Net.IPEndPoint? RemoteEndPoint(int fd) => EndPoint(fd, peer: true);

    private static unsafe System.Net.IPEndPoint? EndPoint(int fd, bool peer)
    {
        const int Storage = 128; // sizeof(struct sockaddr_storage)
        byte* buffer = stackalloc byte[Storage];
        uint length = Storage;
        if ((peer ? GetPeerName(fd, buffer, &length) : GetSockName(fd, buffer, &length)) != 0 || length < 2 || length > Storage) return null;
        var family = (System.Net.Sockets.AddressFamily)(buffer[0] | buffer[1] << 8);
        if (family is not (System.Net.Sockets.AddressFamily.InterNetwork or System.Net.Sockets.AddressFamily.InterNetworkV6)) return null;
        // On Linux, SocketAddress holds the native sockaddr bytes as they are.
        var address = new System.Net.SocketAddress(family, (int)length);
        new ReadOnlySpan<byte>(buffer, (int)length).CopyTo(address.Buffer.Span);
        return (System.Net.IPEndPoint)new System.Net.IPEndPoint(System.Net.IPAddress.Any, 0).Create(address);
    }
}
