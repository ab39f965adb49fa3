namespace Netloom.Tests.Support;

internal static class Allocations
{
    /// <summary>
    /// Asserts that <paramref name="body"/>(<paramref name="iterations"/>) allocates nothing per
    /// operation: after two warm-up runs of the same delegate, the thread's allocated bytes must
    /// stay under one byte per operation. Any allocation made per packet costs at least 24 bytes
    /// each time, so it always fails this; what it tolerates is a single runtime-internal
    /// allocation of about 8 KB, seen on this thread now and then only after other tests ran in
    /// the same process (no GC, no tiering involved), never when the test runs alone.
    /// </summary>
    public static void AssertFlat(Action<int> body, int iterations)
    {
        body(Math.Max(1, iterations / 10));
        body(Math.Max(1, iterations / 10));
        int gcs = GC.CollectionCount(0);
        long before = GC.GetAllocatedBytesForCurrentThread();
        body(iterations);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < iterations,
            $"{allocated} bytes allocated over {iterations} operations ({(double)allocated / iterations:F2} per operation; {GC.CollectionCount(0) - gcs} gen0 GCs)");
    }
}
