using Netloom.Diagnostics;

namespace Netloom.Switching;

/// <summary>
/// The switch's instruments on the "Netloom" meter: each port's forwarding counters, read when a
/// listener collects. Tagged <c>netloom.switch</c> (a number per switch in the process) and
/// <c>netloom.switch.port</c> (the port's name in the switch); drops also <c>netloom.drop.reason</c>.
/// </summary>
internal static class SwitchMetrics
{
    public const string SwitchTag = "netloom.switch", PortTag = "netloom.switch.port", ReasonTag = "netloom.drop.reason";
    internal static readonly MetricSources<SwitchPortCounters> Sources = new();
    private static int _switches;

    static SwitchMetrics()
    {
        var s = Sources;
        s.Counter("netloom.switch.port.rx.packets", "{packet}", "Frames the switch took in from the port", static c => c.RxPackets);
        s.Counter("netloom.switch.port.rx.bytes", "By", "Bytes the switch took in from the port", static c => c.RxBytes);
        s.Counter("netloom.switch.port.forwarded", "{packet}", "Frames the switch sent out of the port (unicast and flooded)", static c => c.TxPackets);
        s.Counter("netloom.switch.port.forwarded.bytes", "By", "Bytes the switch sent out of the port", static c => c.TxBytes);
        s.Counter("netloom.switch.port.flooded", "{packet}", "Frames sent out of the port because their destination was unknown, broadcast or multicast", static c => c.Flooded);
        s.Counter("netloom.switch.port.zero_copy", "{packet}", "Frames sent out of the port by swapping buffer indexes", static c => c.ZeroCopy);
        s.CounterByReason("netloom.switch.port.drops", "{packet}", "Frames the switch dropped, by reason",
            ReasonTag, NetloomMeter.SnakeNames<DropReason>(), static (c, r) => c.Drops((DropReason)r));
    }

    /// <summary>A number for a new switch, for the <c>netloom.switch</c> tag.</summary>
    public static int NextSwitch() => Interlocked.Increment(ref _switches);

    /// <summary>Publishes one switch port's counters until the result is disposed.</summary>
    public static IDisposable Register(int sw, string port, SwitchPortCounters counters) =>
        Sources.Add(counters, new KeyValuePair<string, object?>(SwitchTag, sw), new KeyValuePair<string, object?>(PortTag, port));
}
