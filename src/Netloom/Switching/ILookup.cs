using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Switching;

/// <summary>
/// How the switch picks an output port for a destination MAC (VALE's pluggable lookup).
/// A lookup is used by the forwarding thread only.
/// </summary>
public interface ILookup
{
    /// <summary>Notes that <paramref name="source"/> was seen on <paramref name="port"/>.</summary>
    void Learn(MacAddress source, int port, Instant now);

    /// <summary>The output port for <paramref name="destination"/>, or <see cref="Flood"/>.</summary>
    int Lookup(MacAddress destination, Instant now);

    /// <summary>Forgets everything about a port (it was removed).</summary>
    void ForgetPort(int port);

    public const int Flood = -1;
}

/// <summary>
/// The form of a lookup the switch calls per frame: addresses as 48-bit numbers (wire order in
/// the low bits) and time in nanoseconds, so nothing is converted on the way. A lookup that has
/// this form (the built-in <see cref="LearningTable"/>) is called through it; any other
/// <see cref="ILookup"/> is wrapped once in <see cref="MacLookupAdapter"/>.
/// </summary>
internal interface IMacLookup
{
    void Learn(ulong source, int port, long nanoseconds);
    int Lookup(ulong destination, long nanoseconds);
}

/// <summary>Gives any <see cref="ILookup"/> the switch's per-frame form.</summary>
internal sealed class MacLookupAdapter(ILookup lookup) : IMacLookup
{
    public void Learn(ulong source, int port, long nanoseconds) => lookup.Learn(MacAddress.FromUInt64(source), port, new Instant(nanoseconds));
    public int Lookup(ulong destination, long nanoseconds) => lookup.Lookup(MacAddress.FromUInt64(destination), new Instant(nanoseconds));
}

/// <summary>A fixed MAC-to-port table; unknown destinations are flooded.</summary>
public sealed class StaticTable : ILookup
{
    private readonly Dictionary<MacAddress, int> _table = [];

    public void Add(MacAddress mac, int port) => _table[mac] = port;
    public void Learn(MacAddress source, int port, Instant now) { }
    public int Lookup(MacAddress destination, Instant now) =>
        destination.IsMulticast ? ILookup.Flood : _table.GetValueOrDefault(destination, ILookup.Flood);
    public void ForgetPort(int port)
    {
        foreach (var k in _table.Where(kv => kv.Value == port).Select(kv => kv.Key).ToList()) _table.Remove(k);
    }
}
