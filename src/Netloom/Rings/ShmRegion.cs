using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace Netloom.Rings;

/// <summary>
/// The memory two processes share for one shm port: a header page, two directions of
/// {ring header, slots}, then buffers. Every offset follows from (ring size, buffer size), so
/// neither side trusts an offset read from the other. Buffer 0 is unused; direction 0
/// (server to client) owns buffers 1..N, direction 1 (client to server) owns N+1..2N, and
/// slot i of a direction uses buffer base + i, unless its producer lent one of its direction's
/// loan buffers instead (after the 2N slot buffers: direction 0's L loan buffers, then direction
/// 1's; L is 0 unless the server asked for some, and then the greeting announces it).
/// </summary>
internal sealed unsafe class ShmRegion : IDisposable
{
    public const ulong Magic = 0x314D48534D4F4F4C; // "LOOMSHM1"
    private const int HeaderPage = 4096;

    [StructLayout(LayoutKind.Sequential)]
    private struct RegionHeader
    {
        public ulong Magic;
        public uint RingSize;
        public uint BufferSize;
        public uint LoanBuffers;
    }

    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;

    public string Path { get; }
    public int RingSize { get; }
    public int BufferSize { get; }
    /// <summary>Loan buffers per direction (buffers a producer's application fills and sends by index).</summary>
    public int LoanBuffers { get; }
    public long Length { get; }
    public PacketPool Pool { get; }

    public static long SizeFor(int ringSize, int bufferSize, int loanBuffers = 0) =>
        BuffersOffset(ringSize) + (2L * ringSize + 2L * loanBuffers + 1) * bufferSize;

    private static long DirectionOffset(int ringSize, int dir) =>
        HeaderPage + dir * (long)(sizeof(RingHeader) + ringSize * sizeof(Slot) + 63 & ~63);

    private static long BuffersOffset(int ringSize) => DirectionOffset(ringSize, 2) + 4095 & ~4095L;

    private ShmRegion(string path, MemoryMappedFile file, int ringSize, int bufferSize, int loanBuffers, long length)
    {
        Path = path;
        _file = file;
        RingSize = ringSize;
        BufferSize = bufferSize;
        LoanBuffers = loanBuffers;
        Length = length;
        _view = file.CreateViewAccessor(0, length, MemoryMappedFileAccess.ReadWrite);
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref _base);
        _base += _view.PointerOffset;
        Pool = new PacketPool(_base + BuffersOffset(ringSize), 2 * ringSize + 2 * loanBuffers + 1, bufferSize);
    }

    /// <summary>Creates a fresh region, replacing a stale file of the same name.</summary>
    public static ShmRegion Create(string path, int ringSize, int bufferSize, int loanBuffers = 0)
    {
        long length = SizeFor(ringSize, bufferSize, loanBuffers);
        File.Delete(path);
        var fs = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite);
        fs.SetLength(length);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var mmf = MemoryMappedFile.CreateFromFile(fs, null, length, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
        var r = new ShmRegion(path, mmf, ringSize, bufferSize, loanBuffers, length);
        var h = (RegionHeader*)r._base;
        h->RingSize = (uint)ringSize;
        h->BufferSize = (uint)bufferSize;
        h->LoanBuffers = (uint)loanBuffers;
        h->Magic = Magic;
        for (int d = 0; d < 2; d++) r.Ring(d)->NumSlots = (uint)ringSize;
        return r;
    }

    /// <summary>Maps a region the peer created, checking its size against the geometry it announced.</summary>
    public static ShmRegion Open(string path, int ringSize, int bufferSize, int loanBuffers = 0)
    {
        long length = SizeFor(ringSize, bufferSize, loanBuffers);
        var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        if (fs.Length < length)
        {
            fs.Dispose();
            throw new InvalidDataException($"{path} holds {fs.Length} bytes, less than the {length} its geometry needs");
        }
        var mmf = MemoryMappedFile.CreateFromFile(fs, null, length, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
        var r = new ShmRegion(path, mmf, ringSize, bufferSize, loanBuffers, length);
        if (((RegionHeader*)r._base)->Magic != Magic)
        {
            r.Dispose();
            throw new InvalidDataException($"{path} is not a netloom shm region (bad magic)");
        }
        return r;
    }

    public RingHeader* Ring(int dir) => (RingHeader*)(_base + DirectionOffset(RingSize, dir));
    public Slot* Slots(int dir) => (Slot*)(_base + DirectionOffset(RingSize, dir) + sizeof(RingHeader));
    /// <summary>First buffer index of a direction's buffers.</summary>
    public uint BufferBase(int dir) => 1 + (uint)(dir * RingSize);
    /// <summary>First loan buffer index of a direction (its <see cref="LoanBuffers"/> follow).</summary>
    public uint LoanBase(int dir) => 1 + (uint)(2 * RingSize + dir * LoanBuffers);

    /// <summary>Zeroes both directions' indexes and slots: a new pair of peers starts clean.</summary>
    public void Reset()
    {
        for (int d = 0; d < 2; d++)
        {
            var h = Ring(d);
            h->Head = h->Cur = h->Tail = h->UserWaiting = h->BackendWaiting = 0;
            NativeMemory.Clear(Slots(d), (nuint)(RingSize * sizeof(Slot)));
        }
    }

    public void Dispose()
    {
        if (_base is null) return;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _base = null;
        _view.Dispose();
        _file.Dispose();
    }
}
