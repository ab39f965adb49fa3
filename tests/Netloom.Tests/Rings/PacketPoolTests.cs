using Netloom.Rings;
using Netloom.Tests.Support;
using Netloom.Time;

namespace Netloom.Tests.Rings;

public class PacketPoolTests
{
    [Fact]
    public void Batch_allocation_hands_out_each_buffer_once_and_never_index_zero()
    {
        using var pool = new PacketPool(101, 2048);
        var got = new uint[150];
        Assert.Equal(100, pool.Allocate(got)); // 100 usable: index 0 is reserved
        Assert.Equal(100, got.Take(100).Distinct().Count());
        Assert.DoesNotContain(0u, got.Take(100));
        Assert.Equal(0, pool.FreeCount);
        Assert.Equal(0, pool.Release(got.AsSpan(0, 40)));
        Assert.Equal(40, pool.FreeCount);
    }

    [Fact]
    public void Releasing_invalid_indexes_is_refused_and_counted()
    {
        using var pool = new PacketPool(10, 2048);
        Assert.Equal(3, pool.Release([0, 10, 99]));
        Assert.Equal(9, pool.FreeCount);
        Assert.Equal(1, pool.Release([5])); // the free list is full: a double release cannot overflow it
    }

    [Fact]
    public void Buffers_are_disjoint_and_the_size_asked_for()
    {
        using var pool = new PacketPool(8, 65536);
        pool.Buffer(1).Fill(1);
        pool.Buffer(2).Fill(2);
        Assert.Equal(65536, pool.Buffer(1).Length);
        Assert.All(pool.Buffer(1).ToArray(), b => Assert.Equal(1, b));
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Buffer(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Buffer(8));
    }

    [Fact]
    public void Large_buffers_sit_a_cache_line_apart_beyond_their_size_and_stay_disjoint()
    {
        using var pool = new PacketPool(64, 2048);
        Assert.Equal(2048 + 64, pool.Stride);
        for (uint i = 1; i < 64; i++) pool.Buffer(i).Fill((byte)i);
        for (uint i = 1; i < 64; i++) Assert.All(pool.Buffer(i).ToArray(), b => Assert.Equal((byte)i, b));
        using var small = new PacketPool(64, 256);
        Assert.Equal(256, small.Stride); // padding small buffers would cost a quarter of the memory
    }

    [Fact]
    public unsafe void A_pool_of_2_MiB_or_more_is_mapped_on_a_huge_page_boundary_with_huge_pages_advised()
    {
        using var pool = new PacketPool(4097, 2048); // 8.4 MB
        nuint start = (nuint)pool.Base;
        Assert.Equal(0u, start % (2u << 20));
        pool.Buffer(4096).Fill(7); // the last buffer is inside the mapping
        // /proc/self/smaps lists the mapping; "hg" in its VmFlags is MADV_HUGEPAGE.
        var lines = File.ReadAllLines("/proc/self/smaps");
        int at = Array.FindIndex(lines, l => l.StartsWith($"{start:x}-"));
        Assert.True(at >= 0, "the pool's mapping is in /proc/self/smaps");
        string flags = lines.Skip(at + 1).First(l => l.StartsWith("VmFlags:"));
        Assert.Contains(" hg", flags);
    }

    [Theory]
    [InlineData(1, 2048)]
    [InlineData(16, 100)]
    [InlineData(16, 131072)]
    [InlineData(16, 32)]
    public void Impossible_geometry_is_rejected(int count, int size) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new PacketPool(count, size));
}

public class ShmSteadyStateTests
{
    [Fact]
    public void Moving_packets_over_shm_allocates_nothing()
    {
        string name = $"alloc{Guid.NewGuid():N}"[..20];
        using var a = Ports.Open($"shm:{name}");
        using var b = Ports.Open($"shm:{name}");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!((ShmPort)a).Connected && sw.ElapsedMilliseconds < 5000) Thread.Sleep(5);
        void Run(int packets) => RingTraffic.Move(a, b, packets);
        Allocations.AssertFlat(Run, 100_000);
        Assert.True(b.Rx.Counters.Packets >= 100_000);
    }
}
