using System.Runtime.InteropServices;

namespace Netloom.Rings;

/// <summary>Native memory for one ring: its header and its slots, zeroed, cache-line aligned.</summary>
internal sealed unsafe class RingMemory : IDisposable
{
    public static nuint BytesFor(int slots) => (nuint)(sizeof(RingHeader) + slots * sizeof(Slot));

    private void* _block;

    public RingMemory(int slots)
    {
        nuint bytes = BytesFor(slots);
        _block = NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(_block, bytes);
        Header = (RingHeader*)_block;
        Slots = (Slot*)((byte*)_block + sizeof(RingHeader));
        Header->NumSlots = (uint)slots;
    }

    public RingHeader* Header { get; }
    public Slot* Slots { get; }

    public void Dispose()
    {
        if (_block is null) return;
        NativeMemory.AlignedFree(_block);
        _block = null;
    }
}
