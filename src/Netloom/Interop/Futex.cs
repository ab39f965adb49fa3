using System.Runtime.InteropServices;

namespace Netloom.Interop;

/// <summary>
/// futex(2) on a 32-bit word, without FUTEX_PRIVATE_FLAG so it also works on a word in memory
/// shared between processes. Used to block a ring's waiter until its peer publishes.
/// </summary>
internal static unsafe partial class Futex
{
    internal const long SysFutex = 202; // x86_64; checked against <sys/syscall.h> in the layout test
    private const int FutexWait = 0, FutexWake = 1;

    [StructLayout(LayoutKind.Sequential)]
    internal struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, uint* address, int op, uint value, Timespec* timeout, nint address2, uint value3);

    /// <summary>
    /// Sleeps while *address == expected, at most <paramref name="timeoutNs"/> (negative: forever).
    /// Returns false when a signal handler ran meanwhile (EINTR); EAGAIN (the value changed),
    /// ETIMEDOUT and a wake-up all return true and mean: look again.
    /// </summary>
    public static bool Wait(uint* address, uint expected, long timeoutNs)
    {
        Timespec ts = new() { Seconds = timeoutNs / 1_000_000_000, Nanoseconds = timeoutNs % 1_000_000_000 };
        long r = Syscall(SysFutex, address, FutexWait, expected, timeoutNs < 0 ? null : &ts, 0, 0);
        return r == 0 || Marshal.GetLastPInvokeError() != Errno.EINTR;
    }

    /// <summary>Wakes up to <paramref name="count"/> waiters on the word.</summary>
    public static void Wake(uint* address, int count = int.MaxValue) =>
        Syscall(SysFutex, address, FutexWake, (uint)count, null, 0, 0);
}
