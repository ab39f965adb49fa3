using Netloom.Interop;
using static Netloom.Interop.Bpf;

namespace Netloom.Rings;

/// <summary>
/// A few eBPF instructions at a time, with named jump targets, for the XDP programs this
/// project emits in C# (<see cref="XdpProgram"/>, <see cref="XdpFastPath"/>, <see cref="XdpGenerator"/>).
/// Opcodes are the kernel's (Documentation/bpf/standardization/instruction-set.rst); the
/// verifier checks every program at load, and its log is in the error when it refuses one.
/// </summary>
internal sealed class XdpAssembler
{
    public const int R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R9 = 9, Fp = 10;

    private readonly List<Insn> _code = [];
    private readonly Dictionary<string, int> _labels = [];
    private readonly List<(int At, string Label)> _jumps = [];

    public int Count => _code.Count;

    private void Emit(byte code, int dst, int src, short off, int imm) => _code.Add(new Insn(code, dst, src, off, imm));

    public void Mov(int dst, int src) => Emit(0xbf, dst, src, 0, 0);          // BPF_ALU64 | BPF_MOV | BPF_X
    public void MovImm(int dst, int imm) => Emit(0xb7, dst, 0, 0, imm);       // BPF_ALU64 | BPF_MOV | BPF_K
    public void AddImm(int dst, int imm) => Emit(0x07, dst, 0, 0, imm);       // BPF_ALU64 | BPF_ADD | BPF_K
    public void Add(int dst, int src) => Emit(0x0f, dst, src, 0, 0);          // BPF_ALU64 | BPF_ADD | BPF_X
    public void Sub(int dst, int src) => Emit(0x1f, dst, src, 0, 0);          // BPF_ALU64 | BPF_SUB | BPF_X
    public void LoadU8(int dst, int src, short off) => Emit(0x71, dst, src, off, 0);   // BPF_LDX | BPF_MEM | BPF_B
    public void LoadU16(int dst, int src, short off) => Emit(0x69, dst, src, off, 0);  // ... BPF_H
    public void LoadU32(int dst, int src, short off) => Emit(0x61, dst, src, off, 0);  // ... BPF_W
    public void LoadU64(int dst, int src, short off) => Emit(0x79, dst, src, off, 0);  // ... BPF_DW
    public void StoreU16(int dst, short off, int src) => Emit(0x6b, dst, src, off, 0); // BPF_STX | BPF_MEM | BPF_H
    public void StoreU32(int dst, short off, int src) => Emit(0x63, dst, src, off, 0); // ... BPF_W
    public void StoreU64(int dst, short off, int src) => Emit(0x7b, dst, src, off, 0); // ... BPF_DW
    public void StoreImmU16(int dst, short off, int imm) => Emit(0x6a, dst, 0, off, imm); // BPF_ST | BPF_MEM | BPF_H
    public void StoreImmU32(int dst, short off, int imm) => Emit(0x62, dst, 0, off, imm); // ... BPF_W

    /// <summary>dst = the map behind <paramref name="mapFd"/> (BPF_LD | BPF_DW | BPF_IMM with BPF_PSEUDO_MAP_FD: two slots).</summary>
    public void LoadMap(int dst, int mapFd)
    {
        Emit(0x18, dst, XdpProgram.BpfPseudoMapFd, 0, mapFd);
        Emit(0x00, 0, 0, 0, 0);
    }

    public void Call(int helper) => Emit(0x85, 0, 0, 0, helper);
    public void Exit() => Emit(0x95, 0, 0, 0, 0);

    public void Label(string name) => _labels.Add(name, _code.Count);

    private void Jump(byte code, int dst, int src, int imm, string label)
    {
        _jumps.Add((_code.Count, label));
        Emit(code, dst, src, 0, imm);
    }

    public void JumpIfGreater(int dst, int src, string label) => Jump(0x2d, dst, src, 0, label);     // BPF_JGT | BPF_X
    public void JumpIfEqual(int dst, int src, string label) => Jump(0x1d, dst, src, 0, label);       // BPF_JEQ | BPF_X
    public void JumpIfNotEqual(int dst, int src, string label) => Jump(0x5d, dst, src, 0, label);    // BPF_JNE | BPF_X
    public void JumpIfEqualImm(int dst, int imm, string label) => Jump(0x15, dst, 0, imm, label);    // BPF_JEQ | BPF_K
    public void JumpIfNotEqualImm(int dst, int imm, string label) => Jump(0x55, dst, 0, imm, label); // BPF_JNE | BPF_K
    public void JumpIfAnyBit(int dst, int imm, string label) => Jump(0x45, dst, 0, imm, label);      // BPF_JSET | BPF_K

    /// <summary>The program, with every jump resolved.</summary>
    public Insn[] Build()
    {
        var code = _code.ToArray();
        foreach (var (at, label) in _jumps)
        {
            if (!_labels.TryGetValue(label, out int target)) throw new InvalidOperationException($"BPF label {label} is never placed");
            ref var i = ref code[at];
            i = new Insn(i.Code, i.Regs & 0xf, i.Regs >> 4, checked((short)(target - at - 1)), i.Imm);
        }
        return code;
    }
}
