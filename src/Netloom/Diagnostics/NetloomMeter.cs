using System.Diagnostics.Metrics;
using System.Text;

namespace Netloom.Diagnostics;

/// <summary>
/// The library's one <see cref="Meter"/>, named "Netloom", so <c>dotnet-counters monitor --counters Netloom</c>
/// and OpenTelemetry's <c>AddMeter("Netloom")</c> see every instrument. All instruments are
/// observable: they read counters the hot path already keeps, only when a listener collects, so
/// forwarding and the stack pay nothing for them. Each layer declares its own instruments
/// (StackMetrics, PortMetrics, SwitchMetrics, OffloadMetrics); this namespace knows none of them.
/// </summary>
internal static class NetloomMeter
{
    public const string Name = "Netloom";
    public static readonly Meter Meter = new(Name, typeof(NetloomMeter).Assembly.GetName().Version?.ToString(3));

    /// <summary>OpenTelemetry-style attribute values for an enum's members: TxRingFull becomes "tx_ring_full".</summary>
    public static string[] SnakeNames<TEnum>() where TEnum : struct, Enum
    {
        var values = Enum.GetValues<TEnum>();
        var names = new string[values.Length];
        foreach (var v in values)
        {
            string s = v.ToString();
            var b = new StringBuilder(s.Length + 4);
            for (int i = 0; i < s.Length; i++)
            {
                if (char.IsUpper(s[i]) && i > 0 && (!char.IsUpper(s[i - 1]) || (i + 1 < s.Length && char.IsLower(s[i + 1])))) b.Append('_');
                b.Append(char.ToLowerInvariant(s[i]));
            }
            names[Convert.ToInt32(v)] = b.ToString();
        }
        return names;
    }
}

/// <summary>
/// The live objects one family of instruments reads (stacks, ports, switch ports), each with its
/// tags. An entry holds its object weakly and is removed when its owner is disposed, so the meter
/// never keeps a stack or a port alive; entries whose object was collected without a dispose are
/// dropped at the next collection.
/// </summary>
internal sealed class MetricSources<T> where T : class
{
    private readonly Lock _lock = new();
    private readonly List<Registration> _live = [];

    /// <summary>Adds <paramref name="source"/> with its tags; disposing the result removes it.</summary>
    public IDisposable Add(T source, params KeyValuePair<string, object?>[] tags)
    {
        var r = new Registration(this, source, tags);
        lock (_lock) _live.Add(r);
        return r;
    }

    /// <summary>Registered objects still alive (for tests).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                Prune();
                return _live.Count;
            }
        }
    }

    /// <summary>A monotonic count, one measurement per registered object.</summary>
    public void Counter(string name, string unit, string description, Func<T, long> read) =>
        NetloomMeter.Meter.CreateObservableCounter(name, () => Observe(read), unit, description);

    /// <summary>A count that goes up and down (connections open now), one measurement per registered object.</summary>
    public void UpDownCounter(string name, string unit, string description, Func<T, long> read) =>
        NetloomMeter.Meter.CreateObservableUpDownCounter(name, () => Observe(read), unit, description);

    /// <summary>A monotonic count per reason: one measurement per object and reason, the reason in <paramref name="reasonTag"/>.</summary>
    public void CounterByReason(string name, string unit, string description, string reasonTag, string[] reasons, Func<T, int, long> read) =>
        NetloomMeter.Meter.CreateObservableCounter(name, () => ObserveByReason(reasonTag, reasons, read), unit, description);

    private List<Measurement<long>> Observe(Func<T, long> read)
    {
        var list = new List<Measurement<long>>();
        lock (_lock)
        {
            Prune();
            foreach (var r in _live)
                if (r.Source.TryGetTarget(out var s)) list.Add(new Measurement<long>(read(s), r.Tags));
        }
        return list;
    }

    private List<Measurement<long>> ObserveByReason(string reasonTag, string[] reasons, Func<T, int, long> read)
    {
        var list = new List<Measurement<long>>();
        lock (_lock)
        {
            Prune();
            foreach (var r in _live)
            {
                if (!r.Source.TryGetTarget(out var s)) continue;
                for (int i = 0; i < reasons.Length; i++)
                {
                    var tags = new KeyValuePair<string, object?>[r.Tags.Length + 1];
                    r.Tags.CopyTo(tags, 0);
                    tags[^1] = new(reasonTag, reasons[i]);
                    list.Add(new Measurement<long>(read(s, i), tags));
                }
            }
        }
        return list;
    }

    private void Prune() => _live.RemoveAll(static r => !r.Source.TryGetTarget(out _));

    private void Remove(Registration r)
    {
        lock (_lock) _live.Remove(r);
    }

    private sealed class Registration(MetricSources<T> owner, T source, KeyValuePair<string, object?>[] tags) : IDisposable
    {
        public readonly WeakReference<T> Source = new(source);
        public readonly KeyValuePair<string, object?>[] Tags = tags;
        public void Dispose() => owner.Remove(this);
    }
}
