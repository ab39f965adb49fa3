// Deliberate violations for ArchitectureTests to find, so its checks cannot pass vacuously. They
// live in this test assembly under library namespaces; the library itself is checked separately.

namespace Netloom.Wire
{
    /// <summary>Wire may use nothing above it; these bodies use Stack and Sockets, the signatures do not.</summary>
    internal static class LayerProbe
    {
        public static int Reach() => typeof(Netloom.Stack.StackOptions).Name.Length;

        public static Func<object> Lambda() => static () => typeof(Netloom.Sockets.SocketStack);
    }
}

namespace Netloom.Emulation
{
    /// <summary>The emulator's core may not name an app: this body does.</summary>
    internal static class LayerProbe
    {
        public static bool IsPing(object app) => app is Netloom.Emulation.Apps.PingApp;
    }
}

namespace Netloom.Stack
{
    /// <summary>The stack never reads a clock, nor holds one: these bodies do both.</summary>
    internal static class ClockProbe
    {
        public static long Now() => DateTime.UtcNow.Ticks;

        public static long Monotonic() => new Netloom.Time.MonotonicClock().Now.Nanoseconds;
    }
}
