namespace Netloom.Rings;

/// <summary>Pins a polling thread to one core, as netmap and DPDK benchmarks do.</summary>
internal static class CpuAffinity
{
    /// <summary>Pins the calling thread to <paramref name="cpu"/>; false when that CPU does not exist or the kernel refused.</summary>
    public static bool PinCurrentThread(int cpu) => cpu < Environment.ProcessorCount && Interop.Affinity.PinCurrentThread(cpu);

    /// <summary>Undoes <see cref="PinCurrentThread"/>. Child processes inherit the pinning of the thread that starts them.</summary>
    public static bool Unpin() => Interop.Affinity.Unpin();
}
