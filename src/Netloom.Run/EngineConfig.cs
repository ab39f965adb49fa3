using Netloom.Wire;

namespace Netloom.Run;

/// <summary>
/// The engine's settings, from NETLOOM_* environment variables (as Onload's EF_* are): `netloom
/// run` sets them from its flags, and a program started some other way can set them itself.
/// docs/RUN.md lists them.
/// </summary>
internal sealed record EngineConfig
{
    public required string Port { get; init; }
    public required Ipv4Address Address { get; init; }
    public int PrefixLength { get; init; } = 24;
    public Ipv4Address? Gateway { get; init; }
    public int Mtu { get; init; } = 1500;
    public MacAddress? Mac { get; init; }
    /// <summary>Microseconds a blocked call spins on the stack before it sleeps (EF_POLL_USEC).</summary>
    public int BusyPollMicroseconds { get; init; }
    public string? Pcap { get; init; }
    /// <summary>IPv6 on the stack (on by default: a link-local address, SLAAC; NETLOOM_IP6=off turns it off).</summary>
    public bool Ipv6 { get; init; }
    /// <summary>NETLOOM_IP6 as ADDRESS/PREFIX: a static address beside the link-local one.</summary>
    public Ipv6Address? Address6 { get; init; }
    public int PrefixLength6 { get; init; } = 64;
    public Ipv6Address? Gateway6 { get; init; }

    /// <summary>Reads the environment; null with a reason a user can act on when it is incomplete or wrong.</summary>
    public static EngineConfig? FromEnvironment(Func<string, string?> env, out string? error)
    {
        error = null;
        string? port = env("NETLOOM_PORT"), ip = env("NETLOOM_IP");
        if (string.IsNullOrEmpty(port) || string.IsNullOrEmpty(ip))
        {
            error = "NETLOOM_PORT and NETLOOM_IP must both be set (for example tap:nl0 and 10.0.0.2/24)";
            return null;
        }
        var parts = ip.Split('/');
        if (!Ipv4Address.TryParse(parts[0], out var address) || parts.Length > 2)
        {
            error = $"NETLOOM_IP '{ip}' is not ADDRESS/PREFIX such as 10.0.0.2/24";
            return null;
        }
        int prefix = 24;
        if (parts.Length == 2 && (!int.TryParse(parts[1], out prefix) || prefix is < 1 or > 32))
        {
            error = $"NETLOOM_IP '{ip}': the prefix must be 1 to 32";
            return null;
        }
        Ipv4Address? gateway = null;
        if (env("NETLOOM_GATEWAY") is { Length: > 0 } g)
        {
            if (!Ipv4Address.TryParse(g, out var ga)) { error = $"NETLOOM_GATEWAY '{g}' is not an IPv4 address"; return null; }
            gateway = ga;
        }
        int mtu = 1500;
        if (env("NETLOOM_MTU") is { Length: > 0 } m && (!int.TryParse(m, out mtu) || mtu is < 576 or > 65522))
        {
            error = $"NETLOOM_MTU '{m}' must be a number from 576 to 65522";
            return null;
        }
        MacAddress? mac = null;
        if (env("NETLOOM_MAC") is { Length: > 0 } macText)
        {
            if (!MacAddress.TryParse(macText, out var parsed)) { error = $"NETLOOM_MAC '{macText}' is not a MAC address"; return null; }
            mac = parsed;
        }
        int busy = 0;
        if (env("NETLOOM_BUSY_POLL") is { Length: > 0 } b && (!int.TryParse(b, out busy) || busy is < 0 or > 10_000_000))
        {
            error = $"NETLOOM_BUSY_POLL '{b}' must be microseconds from 0 to 10000000";
            return null;
        }
        if (!TryReadIpv6(env, mtu, out bool ipv6, out var address6, out int prefix6, out var gateway6, out error)) return null;
        return new EngineConfig
        {
            Port = port, Address = address, PrefixLength = prefix, Gateway = gateway, Mtu = mtu, Mac = mac,
            BusyPollMicroseconds = busy, Pcap = env("NETLOOM_PCAP") is { Length: > 0 } p ? p : null,
            Ipv6 = ipv6, Address6 = address6, PrefixLength6 = prefix6, Gateway6 = gateway6,
        };
    }

    /// <summary>
    /// NETLOOM_IP6 (unset: IPv6 on with a link-local address and SLAAC; ADDRESS/PREFIX: a static
    /// address too; off: IPv4 only) and NETLOOM_GATEWAY6. Unset, IPv6 stays off below the 1280-byte
    /// MTU it needs (RFC 8200 §5); asked for, that is an error.
    /// </summary>
    private static bool TryReadIpv6(Func<string, string?> env, int mtu, out bool ipv6, out Ipv6Address? address, out int prefix,
        out Ipv6Address? gateway, out string? error)
    {
        string? text = env("NETLOOM_IP6"), gatewayText = env("NETLOOM_GATEWAY6");
        bool off = text == "off";
        ipv6 = !off && (mtu >= 1280 || !string.IsNullOrEmpty(text) || !string.IsNullOrEmpty(gatewayText));
        address = gateway = null;
        prefix = 64;
        error = null;
        if (!string.IsNullOrEmpty(text) && !off)
        {
            var parts = text.Split('/');
            if (parts.Length != 2 || !Ipv6Address.TryParse(parts[0], out var a) || !int.TryParse(parts[1], out prefix) || prefix is < 1 or > 128)
            {
                error = $"NETLOOM_IP6 '{text}' is not ADDRESS/PREFIX such as fd00::2/64 (or off)";
                return false;
            }
            if (a.IsUnspecified || a.IsMulticast || a.IsLoopback || a.IsIpv4Mapped)
            {
                error = $"NETLOOM_IP6 '{text}': {a} cannot be an interface address";
                return false;
            }
            address = a;
        }
        if (!string.IsNullOrEmpty(gatewayText))
        {
            if (off) { error = "NETLOOM_GATEWAY6 and NETLOOM_IP6=off contradict each other"; return false; }
            if (!Ipv6Address.TryParse(gatewayText, out var g) || g.IsUnspecified || g.IsMulticast || g.IsLoopback || g.IsIpv4Mapped)
            {
                error = $"NETLOOM_GATEWAY6 '{gatewayText}' is not a unicast IPv6 address";
                return false;
            }
            gateway = g;
        }
        if (ipv6 && mtu < 1280)
        {
            error = $"NETLOOM_IP6 needs NETLOOM_MTU of at least 1280 (RFC 8200 §5), not {mtu}";
            return false;
        }
        return true;
    }
}
