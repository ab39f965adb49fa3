namespace Netloom.Interop.Tests.Support;

/// <summary>Reads a capture with tshark into one field dictionary per frame.</summary>
internal static class Tshark
{
    /// <summary>Decode without reassembly, with raw sequence numbers, and with every checksum verified.</summary>
    public static readonly string[] Preferences =
    [
        "-o", "ip.defragment:FALSE", "-o", "tcp.relative_sequence_numbers:FALSE", "-o", "tcp.analyze_sequence_numbers:FALSE",
        "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
    ];

    public static List<Dictionary<string, string>> Fields(string file, params string[] fields) => Fields(file, null, false, fields);

    /// <summary>Only the frames matching display <paramref name="filter"/>; with <paramref name="allOccurrences"/>, a field repeated in a frame comes comma-joined.</summary>
    public static List<Dictionary<string, string>> Fields(string file, string? filter, bool allOccurrences, params string[] fields)
    {
        var args = new List<string> { "-r", file, "-n" };
        args.AddRange(Preferences);
        if (filter is not null) args.AddRange(["-Y", filter]);
        args.AddRange(["-T", "fields", "-E", "separator=\t", "-E", allOccurrences ? "occurrence=a" : "occurrence=f", "-E", "aggregator=,"]);
        foreach (var f in fields) args.AddRange(["-e", f]);
        var (code, stdout, stderr) = Sh.Run(TimeSpan.FromSeconds(120), "tshark", [.. args]);
        if (code != 0) throw new InvalidOperationException($"tshark exited {code}: {stderr}");
        var rows = new List<Dictionary<string, string>>();
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var cells = line.Split('\t');
            var row = new Dictionary<string, string>();
            for (int i = 0; i < fields.Length; i++) row[fields[i]] = i < cells.Length ? cells[i] : "";
            rows.Add(row);
        }
        return rows;
    }
}
