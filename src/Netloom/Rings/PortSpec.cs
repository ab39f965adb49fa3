using System.Text.RegularExpressions;

namespace Netloom.Rings;

public enum PortKind : byte { Pipe, Shm, Tap, AfPacket, Xdp }

/// <summary>
/// A port named as a string, accepted everywhere a port is named:
/// <c>pipe:NAME{N</c> and <c>pipe:NAME}N</c> (the two ends of in-process pipe N),
/// <c>shm:NAME</c>, <c>tap:IFNAME</c>, <c>afpacket:IFNAME</c>, <c>xdp:IFNAME[:QUEUE]</c> (an AF_XDP
/// socket on queue QUEUE, default 0, kept in <see cref="PipeId"/>).
/// </summary>
public sealed partial record PortSpec(PortKind Kind, string Name, int PipeId = 0, bool PipeMaster = false)
{
    public const string Forms = "pipe:NAME{N, pipe:NAME}N, shm:NAME, tap:IFNAME, afpacket:IFNAME or xdp:IFNAME[:QUEUE]";

    [GeneratedRegex(@"^xdp:([^:]*)(?::([0-9]{1,4}))?$")]
    private static partial Regex XdpPattern();

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
        if (text.StartsWith("xdp:", StringComparison.Ordinal))
        {
            var m = XdpPattern().Match(text);
            if (!m.Success) { error = $"'{text}': an xdp port is xdp:IFNAME or xdp:IFNAME:QUEUE, QUEUE a number from 0 to 9999"; return false; }
            if (!IsInterfaceName(m.Groups[1].Value)) { error = $"'{text}': an interface name is 1 to 15 characters without '/', ':' or spaces"; return false; }
            spec = new PortSpec(PortKind.Xdp, m.Groups[1].Value, m.Groups[2].Success ? int.Parse(m.Groups[2].Value) : 0);
            return true;
        }
        foreach (var (prefix, kind) in new[] { ("tap:", PortKind.Tap), ("afpacket:", PortKind.AfPacket) })
        {
            if (!text.StartsWith(prefix, StringComparison.Ordinal)) continue;
            string ifname = text[prefix.Length..];
            if (!IsInterfaceName(ifname))
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

    private static bool IsInterfaceName(string name) =>
        name.Length is > 0 and <= 15 && !name.Contains('/') && !name.Contains(':') && !name.Any(char.IsWhiteSpace) && name is not ("." or "..");

    public static PortSpec Parse(string text) =>
        TryParse(text, out var spec, out var error) ? spec! : throw new FormatException(error);

    public override string ToString() => Kind switch
    {
        PortKind.Pipe => $"pipe:{Name}{(PipeMaster ? '{' : '}')}{PipeId}",
        PortKind.Shm => $"shm:{Name}",
        PortKind.Tap => $"tap:{Name}",
        PortKind.Xdp => PipeId == 0 ? $"xdp:{Name}" : $"xdp:{Name}:{PipeId}",
        _ => $"afpacket:{Name}",
    };
}
