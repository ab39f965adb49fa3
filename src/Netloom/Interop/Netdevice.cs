using System.Runtime.InteropServices;
using System.Text;

namespace Netloom.Interop;

/// <summary>struct ifreq and the interface ioctls (netdevice(7)), and TUNSETIFF (tuntap).</summary>
internal static unsafe class Netdevice
{
    public const nuint TUNSETIFF = 0x400454ca, TUNSETPERSIST = 0x400454cb;
    public const nuint SIOCGIFFLAGS = 0x8913, SIOCSIFFLAGS = 0x8914, SIOCSIFADDR = 0x8916, SIOCSIFNETMASK = 0x891c, SIOCGIFINDEX = 0x8933;
    public const short IFF_UP = 0x1;
    public const short IFF_TAP = 0x0002, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000;
    public const int NameSize = 16;

    /// <summary>struct ifreq: a 16-byte name, then a union whose first members are flags and ifindex.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 40)]
    public struct IfReq
    {
        [FieldOffset(0)] public fixed byte Name[NameSize];
        [FieldOffset(16)] public short Flags;
        [FieldOffset(16)] public int Index;
    }

    public static IfReq Request(string name)
    {
        var r = new IfReq();
        var bytes = Encoding.ASCII.GetBytes(name);
        if (bytes.Length >= NameSize) throw new ArgumentException($"interface name '{name}' is longer than {NameSize - 1} bytes");
        for (int i = 0; i < bytes.Length; i++) r.Name[i] = bytes[i];
        return r;
    }

    /// <summary>Sets IFF_UP on an interface of the calling thread's network namespace.</summary>
    public static void BringUp(string name)
    {
        int s = Libc.Socket(2 /* AF_INET */, 2 /* SOCK_DGRAM */ | 0x80000, 0);
        if (s < 0) throw Error($"socket for {name}", Libc.Errno);
        try
        {
            var r = Request(name);
            if (Libc.Ioctl(s, SIOCGIFFLAGS, &r) < 0) throw Error($"SIOCGIFFLAGS {name}", Libc.Errno);
            r.Flags |= IFF_UP;
            if (Libc.Ioctl(s, SIOCSIFFLAGS, &r) < 0) throw Error($"bringing {name} up", Libc.Errno);
        }
        finally { Libc.Close(s); }
    }

    /// <summary>
    /// Creates a persistent TAP (it outlives the descriptor that made it, so another process can
    /// open it by name), gives the kernel's side an IPv4 address and brings it up.
    /// </summary>
    public static void CreatePersistentTap(string name, uint address, int prefixLength)
    {
        SetPersist(name, true);
        try
        {
            int s = Libc.Socket(2, 2 | 0x80000, 0);
            if (s < 0) throw Error($"socket for {name}", Libc.Errno);
            try
            {
                var r = Request(name);
                WriteSockAddrIn(ref r, address);
                if (Libc.Ioctl(s, SIOCSIFADDR, &r) < 0) throw Error($"setting the address of {name}", Libc.Errno);
                r = Request(name);
                WriteSockAddrIn(ref r, prefixLength == 0 ? 0 : uint.MaxValue << (32 - prefixLength));
                if (Libc.Ioctl(s, SIOCSIFNETMASK, &r) < 0) throw Error($"setting the netmask of {name}", Libc.Errno);
            }
            finally { Libc.Close(s); }
            BringUp(name);
        }
        catch
        {
            SetPersist(name, false);
            throw;
        }
    }

    /// <summary>Removes a TAP made by <see cref="CreatePersistentTap"/> (it goes once no process holds it).</summary>
    public static void DeletePersistentTap(string name) => SetPersist(name, false);

    private static void SetPersist(string name, bool persist)
    {
        int fd = Libc.Open("/dev/net/tun", Libc.O_RDWR | Libc.O_CLOEXEC);
        if (fd < 0) throw Error("opening /dev/net/tun", Libc.Errno);
        try
        {
            var req = Request(name);
            req.Flags = IFF_TAP | IFF_NO_PI;
            if (Libc.Ioctl(fd, TUNSETIFF, &req) < 0) throw Error($"{name}: TUNSETIFF", Libc.Errno);
            if (Libc.Ioctl(fd, TUNSETPERSIST, (void*)(nint)(persist ? 1 : 0)) < 0) throw Error($"{name}: TUNSETPERSIST", Libc.Errno);
        }
        finally { Libc.Close(fd); }
    }

    /// <summary>struct sockaddr_in in the ifreq's union (AF_INET, port 0, the address in network order).</summary>
    private static void WriteSockAddrIn(ref IfReq r, uint address)
    {
        fixed (IfReq* p = &r)
        {
            byte* u = (byte*)p + NameSize;
            u[0] = 2; u[1] = 0; u[2] = 0; u[3] = 0;
            u[4] = (byte)(address >> 24); u[5] = (byte)(address >> 16); u[6] = (byte)(address >> 8); u[7] = (byte)address;
        }
    }

    /// <summary>The interface index, or an exception saying the interface does not exist.</summary>
    public static int Index(string name)
    {
        int s = Libc.Socket(2, 2 | 0x80000, 0);
        if (s < 0) throw Error($"socket for {name}", Libc.Errno);
        try
        {
            var r = Request(name);
            if (Libc.Ioctl(s, SIOCGIFINDEX, &r) < 0) throw Error($"interface {name}", Libc.Errno);
            return r.Index;
        }
        finally { Libc.Close(s); }
    }

    public static IOException Error(string what, int errno) => errno switch
    {
        Errno.EPERM or Errno.EACCES => new IOException($"{what}: {Libc.Describe(errno)} (needs root or CAP_NET_ADMIN/CAP_NET_RAW)"),
        Errno.ENODEV => new IOException($"{what}: no such device"),
        _ => new IOException($"{what}: {Libc.Describe(errno)} (errno {errno})"),
    };
}
