using System.Globalization;
namespace Netloom.Time;

/// <summary>
/// Parses the quantities that topology files and flags are written in: durations (250us, 20ms, 1.5s, 2m),
/// percentages (0.5%), rates (10mbit, 1gbit, 64kbit, 1000bit) and sizes (1500, 64KiB, 10MB).
/// Each returns false on nonsense; the caller writes the message.
/// </summary>
internal static class Quantity
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static bool TryDuration(string text, out Duration d)
    {
        d = default;
        text = text.Trim();
        (string suffix, double scale)[] units = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)];
        foreach (var (suffix, scale) in units)
        {
            if (!text.EndsWith(suffix, StringComparison.Ordinal)) continue;
            var num = text[..^suffix.Length];
            // "ms" also ends with "s", and "m" with nothing else: take the longest suffix that parses.
            if (!double.TryParse(num, NumberStyles.Float, Inv, out double v) || v < 0 || double.IsInfinity(v) || v * scale > long.MaxValue / 2) continue;
            d = new Duration((long)Math.Round(v * scale));
            return true;
        }
        return false;
    }

    public static bool TryPercent(string text, out double p)
    {
        p = 0;
        text = text.Trim();
        if (!text.EndsWith('%') || !double.TryParse(text[..^1], NumberStyles.Float, Inv, out double v) || v < 0 || v > 100) return false;
        p = v / 100;
        return true;
    }

    public static bool TryRate(string text, out long bitsPerSecond)
    {
        bitsPerSecond = 0;
        text = text.Trim().ToLowerInvariant();
        if (text.EndsWith("bps", StringComparison.Ordinal)) text = text[..^2]; // 10mbps is 10mbit
        (string suffix, double scale)[] units = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1), ("gb", 1e9), ("mb", 1e6), ("kb", 1e3), ("b", 1)];
        foreach (var (suffix, scale) in units)
        {
            if (!text.EndsWith(suffix, StringComparison.Ordinal)) continue;
            if (!double.TryParse(text[..^suffix.Length], NumberStyles.Float, Inv, out double v) || v <= 0 || v * scale > 1e13) return false;
            bitsPerSecond = (long)Math.Round(v * scale);
            return bitsPerSecond > 0;
        }
        return false;
    }

    public static bool TrySize(string text, out long bytes)
    {
        bytes = 0;
        text = text.Trim();
        (string suffix, double scale)[] units = [("KiB", 1024), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("kB", 1e3), ("B", 1), ("", 1)];
        foreach (var (suffix, scale) in units)
        {
            if (!text.EndsWith(suffix, StringComparison.Ordinal)) continue;
            if (!double.TryParse(text[..^suffix.Length], NumberStyles.Float, Inv, out double v) || v < 0 || v * scale > 1e15) continue;
            bytes = (long)Math.Round(v * scale);
            return true;
        }
        return false;
    }

    public static string FormatRate(double bitsPerSecond) => bitsPerSecond switch
    {
        >= 1e9 => $"{bitsPerSecond / 1e9:0.##} Gbit/s",
        >= 1e6 => $"{bitsPerSecond / 1e6:0.##} Mbit/s",
        >= 1e3 => $"{bitsPerSecond / 1e3:0.##} kbit/s",
        _ => $"{bitsPerSecond:0} bit/s",
    };
}
