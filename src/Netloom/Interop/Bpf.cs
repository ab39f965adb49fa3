using System.Runtime.InteropServices;

namespace Netloom.Interop;

/// <summary>
/// The bpf(2) system call, with only the commands and the parts of <c>union bpf_attr</c> that
/// an AF_XDP port needs (linux/bpf.h): create an XSKMAP, put a socket in it, load an XDP
/// program, and attach it to an interface through a BPF link. KernelLayoutTests pins the
/// numbers and offsets against the C compiler.
/// </summary>
internal static unsafe partial class Bpf
{
    internal const long SysBpf = 321; // x86_64
    public const int BPF_MAP_CREATE = 0, BPF_MAP_LOOKUP_ELEM = 1, BPF_MAP_UPDATE_ELEM = 2, BPF_MAP_DELETE_ELEM = 3, BPF_MAP_GET_NEXT_KEY = 4,
        BPF_PROG_LOAD = 5, BPF_PROG_TEST_RUN = 10, BPF_LINK_CREATE = 28, BPF_LINK_UPDATE = 29;
    public const uint BPF_MAP_TYPE_HASH = 1, BPF_MAP_TYPE_ARRAY = 2, BPF_MAP_TYPE_PERCPU_ARRAY = 6, BPF_MAP_TYPE_XSKMAP = 17, BPF_MAP_TYPE_DEVMAP_HASH = 25;
    public const uint BPF_PROG_TYPE_XDP = 6, BPF_XDP = 37;

    /// <summary>
    /// A TC classifier program and its tcx attach point (Linux 6.6+; newer than this machine's C
    /// headers, so not in KernelLayoutTests: enum bpf_attach_type counts BPF_NETFILTER 45, then
    /// BPF_TCX_INGRESS 46).
    /// </summary>
    public const uint BPF_PROG_TYPE_SCHED_CLS = 3, BPF_TCX_INGRESS = 46;

    /// <summary>BPF_PROG_TEST_RUN flag (Linux 5.18+): XDP_TX and XDP_REDIRECT really send the frames (the kernel's XDP traffic generator).</summary>
    public const uint BPF_F_TEST_XDP_LIVE_FRAMES = 1u << 1;

    /// <summary>Attach flags (linux/if_link.h): generic (skb) mode, native (driver) mode.</summary>
    public const uint XDP_FLAGS_SKB_MODE = 2, XDP_FLAGS_DRV_MODE = 4;

    /// <summary>The map-create part of bpf_attr.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MapCreateAttr
    {
        public uint MapType;
        public uint KeySize;
        public uint ValueSize;
        public uint MaxEntries;
        public uint MapFlags;
    }

    /// <summary>The map-element part of bpf_attr (BPF_MAP_UPDATE_ELEM).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MapElemAttr
    {
        public uint MapFd;
        private readonly uint _pad;
        public ulong Key;
        public ulong Value;
        public ulong Flags;
    }

    /// <summary>The BPF_PROG_LOAD part of bpf_attr, up to expected_attach_type.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ProgLoadAttr
    {
        public uint ProgType;
        public uint InsnCount;
        public ulong Insns;
        public ulong License;
        public uint LogLevel;
        public uint LogSize;
        public ulong LogBuf;
        public uint KernVersion;
        public uint ProgFlags;
        public fixed byte ProgName[16];
        public uint ProgIfIndex;
        public uint ExpectedAttachType;
    }

    /// <summary>The BPF_LINK_CREATE part of bpf_attr (no target-specific tail).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct LinkCreateAttr
    {
        public uint ProgFd;
        public uint TargetIfIndex;
        public uint AttachType;
        public uint Flags;
    }

    /// <summary>The BPF_LINK_UPDATE part of bpf_attr: put another program on a link, atomically.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct LinkUpdateAttr
    {
        public uint LinkFd;
        public uint NewProgFd;
        public uint Flags;
        public uint OldProgFd;
    }

    /// <summary>The BPF_PROG_TEST_RUN part of bpf_attr (the test struct), up to batch_size.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct TestRunAttr
    {
        public uint ProgFd;
        public uint Retval;
        public uint DataSizeIn;
        public uint DataSizeOut;
        public ulong DataIn;
        public ulong DataOut;
        public uint Repeat;
        public uint Duration;
        public uint CtxSizeIn;
        public uint CtxSizeOut;
        public ulong CtxIn;
        public ulong CtxOut;
        public uint Flags;
        public uint Cpu;
        public uint BatchSize;
        private readonly uint _pad;
    }

    /// <summary>struct xdp_md, the context of an XDP program (what BPF_PROG_TEST_RUN takes as ctx_in).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct XdpMd
    {
        public uint Data;
        public uint DataEnd;
        public uint DataMeta;
        public uint IngressIfIndex;
        public uint RxQueueIndex;
        public uint EgressIfIndex;
    }

    /// <summary>struct bpf_insn: opcode, dst and src registers (4 bits each), offset, immediate.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 8)]
    public struct Insn
    {
        public byte Code;
        public byte Regs;
        public short Offset;
        public int Imm;

        public Insn(byte code, int dst, int src, short offset, int imm)
        {
            Code = code;
            Regs = (byte)(dst & 0xf | (src & 0xf) << 4);
            Offset = offset;
            Imm = imm;
        }
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, int cmd, void* attr, uint size);

    /// <summary>bpf(cmd, attr, sizeof attr); the result (an fd or 0) or -1 with errno set.</summary>
    public static int Call<T>(int cmd, ref T attr) where T : unmanaged
    {
        fixed (T* p = &attr) return (int)Syscall(SysBpf, cmd, p, (uint)sizeof(T));
    }
}
