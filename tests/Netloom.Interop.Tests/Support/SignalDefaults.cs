using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Netloom.Interop.Tests.Support;

/// <summary>
/// A shell that starts a job in the background without job control (`./test.sh &`, nohup) starts
/// it with SIGINT ignored, and every process it starts inherits that: the tests' children (a
/// netloom host, tshark, a program under netloom run) would then ignore the SIGINT that stops
/// them gracefully. The tests' process puts SIGINT back to its default once, at load, so children
/// see Ctrl-C as they would in a terminal, however the tests were started.
/// </summary>
internal static class SignalDefaults
{
    private const int SigInt = 2;
    private static readonly nint SigDfl = 0, SigIgn = 1;

    [DllImport("libc", EntryPoint = "signal")]
    private static extern nint Signal(int signal, nint handler);

    [DllImport("libc", EntryPoint = "sigaction")]
    private static extern unsafe int SigAction(int signal, void* act, void* old);

    [ModuleInitializer]
    internal static unsafe void RestoreSigInt()
    {
        if (!OperatingSystem.IsLinux()) return;
        // Only looked at (a handler the runtime installed keeps its flags): struct sigaction
        // starts with the handler, and 256 bytes hold the whole struct.
        byte* old = stackalloc byte[256];
        if (SigAction(SigInt, null, old) == 0 && *(nint*)old == SigIgn) Signal(SigInt, SigDfl);
    }
}
