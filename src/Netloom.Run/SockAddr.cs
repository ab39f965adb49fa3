using System.Buffers.Binary;
using Netloom.Run.Native;
using Netloom.Wire;

namespace Netloom.Run;

/// <summary>struct sockaddr_in, read and written with the kernel's checks.</summary>
internal static unsafe class SockAddr
{
    public const int InLength = 16;

    /// <summary>0, or -EINVAL / -EAFNOSUPPORT as the kernel answers a bad address.</summary>
    public static long Read(byte* p, uint length, out Ipv4Address address, out ushort port)
    {
        address = default;
        port = 0;
        if (p is null || length < 2) return -Errno.EINVAL;
        ushort family = *(ushort*)p;
        if (family != Abi.AF_INET) return -Errno.EAFNOSUPPORT;
        if (length < InLength) return -Errno.EINVAL;
        port = BinaryPrimitives.ReadUInt16BigEndian(new ReadOnlySpan<byte>(p + 2, 2));
        address = Ipv4Address.Read(new ReadOnlySpan<byte>(p + 4, 4));
        return 0;
    }

    /// <summary>Writes as much as *length allows and sets *length to the full size, as the kernel does.</summary>
    public static void Write(byte* p, uint* length, Ipv4Address address, ushort port)
    {
        if (p is null || length is null) return;
        Span<byte> full = stackalloc byte[InLength];
        full.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(full, Abi.AF_INET);
        BinaryPrimitives.WriteUInt16BigEndian(full[2..], port);
        address.Write(full[4..]);
        int n = (int)Math.Min(*length, (uint)InLength);
        full[..n].CopyTo(new Span<byte>(p, n));
        *length = InLength;
    }
}
