using System.Runtime.InteropServices;

namespace Netloom.Interop;

/// <summary>
/// io_uring's system calls, structs and constants (linux/io_uring.h). liburing's helpers are
/// inline C, so Netloom speaks to the kernel directly. Every layout is checked against gcc.
/// </summary>
internal static unsafe partial class IoUring
{
    public const long SysSetup = 425, SysEnter = 426, SysRegister = 427;

    public const ulong OffSqRing = 0, OffCqRing = 0x8000000, OffSqes = 0x10000000;

    public const uint SetupSqPoll = 0x2, SetupCqSize = 0x8, SetupSubmitAll = 0x80, SetupCoopTaskrun = 0x100, SetupTaskrunFlag = 0x200, SetupSingleIssuer = 0x1000, SetupDeferTaskrun = 0x2000;
    public const uint EnterGetEvents = 1, EnterSqWakeup = 2, EnterExtArg = 8;
    public const uint FeatSingleMmap = 0x1, FeatNoDrop = 0x2;
    /// <summary>IORING_FEAT_RECVSEND_BUNDLE and IORING_RECVSEND_BUNDLE (6.10): newer than this machine's headers, so checked by behaviour (UringRingTests' bundle test) rather than by gcc.</summary>
    public const uint FeatRecvSendBundle = 0x4000;
    /// <summary>IORING_FEAT_MIN_TIMEOUT (6.12): io_uring_getevents_arg.min_wait_usec is honoured (newer than this machine's headers).</summary>
    public const uint FeatMinTimeout = 0x8000;
    public const uint SqNeedWakeup = 1, SqTaskrun = 4;
    public const uint RegisterFiles = 2, RegisterEventFd = 4, RegisterProbe = 8, RegisterPbufRing = 22, UnregisterPbufRing = 23;

    public const byte OpNop = 0, OpPollAdd = 6, OpTimeout = 11, OpAccept = 13, OpAsyncCancel = 14, OpClose = 19, OpRead = 22, OpSend = 26, OpRecv = 27, OpShutdown = 34, OpSendZc = 47;
    /// <summary>sqe.file_index for accept: let the kernel pick a free registered-file slot (5.19+).</summary>
    public const uint FileIndexAlloc = 0xFFFFFFFF;
    public const byte SqeFixedFile = 1, SqeIoLink = 4, SqeBufferSelect = 32;
    public const ushort AcceptMultishot = 1, RecvMultishot = 2, RecvSendBundle = 16 /* see FeatRecvSendBundle */;
    public const uint CqeFBuffer = 1, CqeFMore = 2, CqeFNotif = 8;
    public const int CqeBufferShift = 16;
    public const ushort ProbeOpSupported = 1;

    [StructLayout(LayoutKind.Sequential)]
    public struct SqRingOffsets
    {
        public uint Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1;
        public ulong UserAddr;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct CqRingOffsets
    {
        public uint Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1;
        public ulong UserAddr;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Params
    {
        public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd;
        public fixed uint Resv[3];
        public SqRingOffsets SqOff;
        public CqRingOffsets CqOff;
    }

    /// <summary>struct io_uring_sqe: 64 bytes, unions laid out by offset.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    public struct Sqe
    {
        [FieldOffset(0)] public byte Opcode;
        [FieldOffset(1)] public byte Flags;
        [FieldOffset(2)] public ushort IoPrio;      // also the accept/recv multishot flags
        [FieldOffset(4)] public int Fd;
        [FieldOffset(8)] public ulong Off;          // also addr2
        [FieldOffset(16)] public ulong Addr;        // also splice_off_in
        [FieldOffset(24)] public uint Len;
        [FieldOffset(28)] public uint OpFlags;      // msg_flags, timeout_flags, accept_flags, cancel_flags...
        [FieldOffset(32)] public ulong UserData;
        [FieldOffset(40)] public ushort BufIndex;   // also buf_group
        [FieldOffset(42)] public ushort Personality;
        [FieldOffset(44)] public uint FileIndex;
        [FieldOffset(48)] public ulong Addr3;
        [FieldOffset(56)] public ulong Pad2;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Cqe
    {
        public ulong UserData;
        public int Res;
        public uint Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ProbeOp
    {
        public byte Op, Resv;
        public ushort Flags;
        public uint Resv2;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ProbeHeader
    {
        public byte LastOp, OpsLen;
        public ushort Resv;
        public fixed uint Resv2[3];
    }

    /// <summary>struct io_uring_buf: one provided buffer.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Buf
    {
        public ulong Addr;
        public uint Len;
        public ushort Bid;
        public ushort Resv;  // in entry 0 this is the ring's tail
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct BufReg
    {
        public ulong RingAddr;
        public uint RingEntries;
        public ushort Bgid, Flags;
        public fixed ulong Resv[3];
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct KernelTimespec
    {
        public long Seconds, Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall2(long number, uint entries, Params* p);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall6(long number, int fd, uint toSubmit, uint minComplete, uint flags, void* arg, nuint argSize);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall4(long number, int fd, uint opcode, void* arg, uint count);

    public static int Setup(uint entries, Params* p) => (int)Syscall2(SysSetup, entries, p);

    public static int Enter(int fd, uint toSubmit, uint minComplete, uint flags) => (int)Syscall6(SysEnter, fd, toSubmit, minComplete, flags, null, 0);

    /// <summary>io_uring_enter with IORING_ENTER_EXT_ARG: a timeout and a signal mask for the wait (struct io_uring_getevents_arg).</summary>
    public static int EnterExt(int fd, uint toSubmit, uint minComplete, uint flags, GeteventsArg* arg) =>
        (int)Syscall6(SysEnter, fd, toSubmit, minComplete, flags | EnterExtArg, arg, (nuint)sizeof(GeteventsArg));

    /// <summary>struct io_uring_getevents_arg.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct GeteventsArg
    {
        public ulong Sigmask;
        public uint SigmaskSize, MinWaitUsec;
        public ulong Timespec;
    }

    public static int Register(int fd, uint opcode, void* arg, uint count) => (int)Syscall4(SysRegister, fd, opcode, arg, count);
}
