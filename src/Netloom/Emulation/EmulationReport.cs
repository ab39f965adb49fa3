using System.Text.Json;

namespace Netloom.Emulation;

/// <summary>One direction of a link, as reported.</summary>
public sealed record LinkReport(string Link, string From, string To, long Sent, long Delivered, long DeliveredBytes,
    IReadOnlyDictionary<string, long> Drops, long Duplicated, long Corrupted, long Reordered)
{
    public long TotalDrops => Drops.Values.Sum();
}

/// <summary>
/// What a run measured: every app's figures and every link direction's counters. It holds only
/// virtual-time quantities, so two runs with the same seed give the same report, byte for byte.
/// </summary>
public sealed record EmulationReport(string? Name, int Seed, double VirtualSeconds, long Events, long PacketHops,
    IReadOnlyList<AppReport> Apps, IReadOnlyList<LinkReport> Links)
{
    public static EmulationReport From(Network net, string? name = null)
    {
        var links = new List<LinkReport>();
        foreach (var l in net.Links)
            foreach (var d in new[] { l.AtoB, l.BtoA })
            {
                var c = d.Counters;
                var drops = new SortedDictionary<string, long>(StringComparer.Ordinal);
                foreach (var r in Enum.GetValues<LinkDrop>())
                    if (c.Drops(r) > 0) drops[r.ToString().ToLowerInvariant()] = c.Drops(r);
                links.Add(new LinkReport(l.Name, d.From.Node.Name, d.To.Node.Name, c.Sent, c.Delivered, c.DeliveredBytes, drops, c.Duplicated, c.Corrupted, c.Reordered));
            }
        var apps = net.Apps.Select(a => a.Report(net.Now)).ToList();
        return new EmulationReport(name, net.Seed, net.Elapsed.TotalSeconds, net.EventsProcessed, net.PacketHops, apps, links);
    }

    public void WriteJson(Stream stream)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        if (Name is not null) w.WriteString("name", Name);
        w.WriteNumber("seed", Seed);
        w.WriteNumber("virtual_seconds", VirtualSeconds);
        w.WriteNumber("events", Events);
        w.WriteNumber("packet_hops", PacketHops);
        w.WriteStartArray("apps");
        foreach (var a in Apps) WriteApp(w, a);
        w.WriteEndArray();
        w.WriteStartArray("links");
        foreach (var l in Links)
        {
            w.WriteStartObject();
            w.WriteString("link", l.Link);
            w.WriteString("from", l.From);
            w.WriteString("to", l.To);
            w.WriteNumber("sent", l.Sent);
            w.WriteNumber("delivered", l.Delivered);
            w.WriteNumber("delivered_bytes", l.DeliveredBytes);
            w.WriteStartObject("drops");
            foreach (var (k, v) in l.Drops) w.WriteNumber(k, v);
            w.WriteEndObject();
            w.WriteNumber("duplicated", l.Duplicated);
            w.WriteNumber("corrupted", l.Corrupted);
            w.WriteNumber("reordered", l.Reordered);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteApp(Utf8JsonWriter w, AppReport a)
    {
        w.WriteStartObject();
        w.WriteString("name", a.Name);
        w.WriteString("kind", a.Kind);
        w.WriteString("host", a.Host);
        if (a.Target is not null) w.WriteString("target", a.Target);
        void N(string k, long? v) { if (v is { } x) w.WriteNumber(k, x); }
        void D(string k, double? v) { if (v is { } x) w.WriteNumber(k, Math.Round(x, 6)); }
        N("bytes", a.Bytes);
        D("throughput_bps", a.ThroughputBitsPerSecond);
        N("sent", a.Sent);
        N("received", a.Received);
        D("loss", a.Loss);
        N("duplicates", a.Duplicates);
        N("reordered", a.Reordered);
        N("retransmissions", a.Retransmissions);
        N("timeouts", a.Timeouts);
        N("connections", a.Connections);
        if (a.Latency is { } l)
        {
            w.WriteStartObject(a.Kind == "udp" ? "one_way_us" : "rtt_us");
            w.WriteNumber("count", l.Count);
            D("min", l.MinUs);
            D("mean", l.MeanUs);
            D("p50", l.P50Us);
            D("p90", l.P90Us);
            D("p99", l.P99Us);
            D("max", l.MaxUs);
            D("stddev", l.StdDevUs);
            w.WriteEndObject();
        }
        w.WriteBoolean("completed", a.Completed);
        if (a.Error is not null) w.WriteString("error", a.Error);
        w.WriteEndObject();
    }
}
