using System.Buffers;
using System.Runtime.InteropServices;
using Netloom.Run.Native;
using Netloom.Stack;

namespace Netloom.Run;

/// <summary>
/// MSG_ZEROCOPY for unmodified programs, as msg_zerocopy.rst and socket(7) describe it: a
/// socket with SO_ZEROCOPY set lends the stack the memory of each send that carries the flag;
/// each such send call that queues data gets the next number of a 32-bit counter per socket,
/// from 0; completions come back on the socket's error queue, read with
/// recvmsg(MSG_ERRQUEUE) as one control message (SOL_IP, IP_RECVERR) holding a
/// sock_extended_err with ee_errno 0, ee_origin SO_EE_ORIGIN_ZEROCOPY, the range of send numbers
/// in ee_info (first) and ee_data (last), and ee_code SO_EE_CODE_ZEROCOPY_COPIED when the bytes
/// were copied; a waiting completion makes the socket report POLLERR.
/// </summary>
internal static unsafe class ErrorQueue
{
    /// <summary>sock_extended_err followed by the offender address (struct sockaddr_in), as ip_recv_error writes them.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct ExtendedError
    {
        public uint Errno;
        public byte Origin, Type, Code, Pad;
        public uint Info, Data;
        public fixed byte Offender[16];
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CMsgHdr
    {
        public nuint Length;
        public int Level, Type;
    }

    /// <summary>The space of one control message carrying <see cref="ExtendedError"/> (CMSG_SPACE).</summary>
    internal static int Space => Align(sizeof(CMsgHdr)) + Align(sizeof(ExtendedError));
    private static int Align(int n) => (n + sizeof(nuint) - 1) & ~(sizeof(nuint) - 1);

    /// <summary>
    /// recvmsg(MSG_ERRQUEUE) with one completion taken: no data (0 is returned), the control
    /// message, and MSG_ERRQUEUE in msg_flags; MSG_CTRUNC when the control buffer is short (the
    /// completion is consumed all the same, as the kernel's put_cmsg does).
    /// </summary>
    public static long Deliver(MsgHdr* msg, in ZeroCopyCompletion c)
    {
        if (msg->Name is not null) msg->NameLength = 0;
        msg->Flags = Abi.MSG_ERRQUEUE;
        var ee = new ExtendedError
        {
            Origin = Abi.SO_EE_ORIGIN_ZEROCOPY,
            Code = c.Copied ? Abi.SO_EE_CODE_ZEROCOPY_COPIED : (byte)0,
            Info = c.First,
            Data = c.Last,
        };
        int header = Align(sizeof(CMsgHdr)), full = header + sizeof(ExtendedError);
        if (msg->Control is null || (long)msg->ControlLength < header)
        {
            msg->ControlLength = 0;
            msg->Flags |= Abi.MSG_CTRUNC;
            return 0;
        }
        int room = (int)Math.Min((long)msg->ControlLength, full);
        var cm = (CMsgHdr*)msg->Control;
        cm->Length = (nuint)room;
        cm->Level = Abi.SOL_IP;
        cm->Type = Abi.IP_RECVERR;
        new ReadOnlySpan<byte>(&ee, sizeof(ExtendedError))[..(room - header)].CopyTo(new Span<byte>((byte*)msg->Control + header, room - header));
        if (room < full) msg->Flags |= Abi.MSG_CTRUNC;
        msg->ControlLength = (nuint)Math.Min((long)msg->ControlLength, Align(room));
        return 0;
    }
}

/// <summary>A program's memory as <see cref="Memory{T}"/>, for the stack to reference until the send completes (the program promised not to change it).</summary>
internal sealed unsafe class LentMemory(byte* pointer, int length) : MemoryManager<byte>
{
    public override Span<byte> GetSpan() => new(pointer, length);
    public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);
    public override void Unpin() { }
    protected override void Dispose(bool disposing) { }
}
