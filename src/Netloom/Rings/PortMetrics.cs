using Netloom.Diagnostics;

namespace Netloom.Rings;

/// <summary>
/// A port's instruments on the "Netloom" meter: its TX and RX rings' counters, read when a
/// listener collects. Tagged <c>netloom.port</c> (the port's name, its spec).
/// </summary>
internal static class PortMetrics
{
    public const string PortTag = "netloom.port";
    internal static readonly MetricSources<IPort> Sources = new();

    static PortMetrics()
    {
        var s = Sources;
        s.Counter("netloom.port.rx.packets", "{packet}", "Packets received on the port's RX ring", static p => p.Rx.Counters.Packets);
        s.Counter("netloom.port.rx.bytes", "By", "Bytes received on the port's RX ring", static p => p.Rx.Counters.Bytes);
        s.Counter("netloom.port.rx.drops", "{packet}", "Packets lost before the RX ring (the backend or the kernel had no room)", static p => p.Rx.Counters.Drops);
        s.Counter("netloom.port.rx.invalid", "{slot}", "RX slots rejected for an impossible length or buffer index", static p => p.Rx.Counters.Invalid);
        s.Counter("netloom.port.rx.syncs", "{sync}", "RX syncs", static p => p.Rx.Counters.Syncs);
        s.Counter("netloom.port.tx.packets", "{packet}", "Packets sent from the port's TX ring", static p => p.Tx.Counters.Packets);
        s.Counter("netloom.port.tx.bytes", "By", "Bytes sent from the port's TX ring", static p => p.Tx.Counters.Bytes);
        s.Counter("netloom.port.tx.drops", "{packet}", "Packets the backend could not send", static p => p.Tx.Counters.Drops);
        s.Counter("netloom.port.tx.invalid", "{slot}", "TX slots rejected for an impossible length or buffer index", static p => p.Tx.Counters.Invalid);
        s.Counter("netloom.port.tx.syncs", "{sync}", "TX syncs", static p => p.Tx.Counters.Syncs);
    }

    /// <summary>Publishes <paramref name="port"/>'s ring counters until the result is disposed (or the port is collected).</summary>
    public static IDisposable Register(IPort port) =>
        Sources.Add(port, new KeyValuePair<string, object?>(PortTag, port.Name));
}
