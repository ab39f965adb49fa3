using System.Text.RegularExpressions;

namespace Netloom.Rings;

public enum PortKind : byte { Pipe, Shm, Tap, AfPacket }

/// <summary>
/// A port named as a string, accepted everywhere a port is named:
/// <c>pipe:NAME{N</c> and <c>pipe:NAME}N</c> (the two ends of in-process pipe N),
/// <c>shm:NAME</c>, <c>tap:IFNAME</c>, <c>afpacket:IFNAME</c>.
/// </summary>
public sealed partial record PortSpec(PortKind Kind, string Name, int PipeId = 0, bool PipeMaster = false)
{
    public const string Forms = "pipe:NAME{N, pipe:NAME}N, shm:NAME, tap:IFNAME or afpacket:IFNAME";

    [GeneratedRegex(@"^pipe:([A-Za-z0-9_.-]{1,64})([{}])([0-9]{1,4})$")]
    private static partial Regex PipePattern();

    [GeneratedRegex(@"^[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex ShmName();

    public static bool TryParse(string? text, out PortSpec? spec, out string? error)
    {
        spec = null;
        error = null;
        if (string.IsNullOrWhiteSpace(text)) { error = $"empty port spec; expected {Forms}"; return false; }
        if (text.StartsWith("pipe:", StringComparison.Ordinal))
        {
            var m = PipePattern().Match(text);
            if (!m.Success) { error = $"'{text}': a pipe end is pipe:NAME{{N or pipe:NAME}}N, NAME of letters, digits, '_', '.', '-'"; return false; }
            spec = new PortSpec(PortKind.Pipe, m.Groups[1].Value, int.Parse(m.Groups[3].Value), m.Groups[2].Value == "{");
            return true;
        }
        if (text.StartsWith("shm:", StringComparison.Ordinal))
        {
            string name = text[4..];
            if (!ShmName().IsMatch(name)) { error = $"'{text}': a shm name is 1 to 64 letters, digits, '_', '.', '-'"; return false; }
            spec = new PortSpec(PortKind.Shm, name);
            return true;
        }
        foreach (var (prefix, kind) in new[] { ("tap:", PortKind.Tap), ("afpacket:", PortKind.AfPacket) })
        {
            if (!text.StartsWith(prefix, StringComparison.Ordinal)) continue;
            string ifname = text[prefix.Length..];
            if (ifname.Length is 0 or > 15 || ifname.Contains('/') || ifname.Any(char.IsWhiteSpace) || ifname is "." or "..")
            {
                error = $"'{text}': an interface name is 1 to 15 characters without '/' or spaces";
                return false;
            }
            spec = new PortSpec(kind, ifname);
            return true;
        }
        error = $"'{text}' is not a port spec; expected {Forms}";
        return false;
    }

    public static PortSpec Parse(string text) =>
        TryParse(text, out var spec, out var error) ? spec! : throw new FormatException(error);

    public override string ToString() => Kind switch
    {
        PortKind.Pipe => $"pipe:{Name}{(PipeMaster ? '{' : '}')}{PipeId}",
        PortKind.Shm => $"shm:{Name}",
        PortKind.Tap => $"tap:{Name}",
        _ => $"afpacket:{Name}",
    };
}
