using System.Buffers.Binary;
using Netloom.Wire;

namespace Netloom.Emulation;

/// <summary>
/// One rule of a router's access list: accept or drop forwarded IPv4 packets that match a source
/// prefix, a destination prefix, a protocol and (TCP, UDP) a destination port. A part not given
/// matches anything. Written as <c>drop tcp from 10.0.1.0/24 to 10.0.3.0/24 port 80</c>.
/// </summary>
internal readonly record struct AccessRule(bool Accept, Ipv4Address? Source, int SourceLength, Ipv4Address? Destination, int DestinationLength, byte? Protocol, ushort? Port)
{
    private static bool In(Ipv4Address? net, int length, Ipv4Address a)
    {
        if (net is not { } n) return true;
        uint mask = length == 0 ? 0 : uint.MaxValue << (32 - length);
        return (a.Value & mask) == (n.Value & mask);
    }

    public bool Matches(in Ipv4Packet ip)
    {
        if (Protocol is { } p && ip.Protocol != p) return false;
        if (!In(Source, SourceLength, ip.Source) || !In(Destination, DestinationLength, ip.Destination)) return false;
        if (Port is { } port)
        {
            // Only a first fragment carries the ports; a later one matches no port rule.
            var payload = ip.Payload;
            if (ip.FragmentOffset != 0 || payload.Length < 4 || ip.Protocol is not ((byte)IpProtocol.Tcp or (byte)IpProtocol.Udp)) return false;
            if (BinaryPrimitives.ReadUInt16BigEndian(payload[2..]) != port) return false;
        }
        return true;
    }

    /// <summary>Parses <c>(accept|drop) [any|tcp|udp|icmp|PROTOCOL-NUMBER] [from PREFIX] [to PREFIX] [port N]</c>.</summary>
    public static bool TryParse(string text, out AccessRule rule, out string? error)
    {
        rule = default;
        error = null;
        var words = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0 || words[0] is not ("accept" or "drop")) { error = "an access rule starts with accept or drop"; return false; }
        bool accept = words[0] == "accept";
        byte? proto = null;
        Ipv4Address? src = null, dst = null;
        int srcLen = 0, dstLen = 0;
        ushort? port = null;
        int i = 1;
        if (i < words.Length && words[i] is not ("from" or "to" or "port"))
        {
            switch (words[i])
            {
                case "any": break;
                case "tcp": proto = (byte)IpProtocol.Tcp; break;
                case "udp": proto = (byte)IpProtocol.Udp; break;
                case "icmp": proto = (byte)IpProtocol.Icmp; break;
                default:
                    if (!byte.TryParse(words[i], out byte n)) { error = $"unknown protocol '{words[i]}'; use any, tcp, udp, icmp or a number"; return false; }
                    proto = n;
                    break;
            }
            i++;
        }
        for (; i < words.Length; i += 2)
        {
            if (i + 1 >= words.Length) { error = $"'{words[i]}' needs a value"; return false; }
            string key = words[i], value = words[i + 1];
            switch (key)
            {
                case "from" or "to":
                    if (!TryPrefix(value, out var a, out int len)) { error = $"{key} needs a prefix such as 10.0.1.0/24, not '{value}'"; return false; }
                    if (key == "from") (src, srcLen) = (a, len); else (dst, dstLen) = (a, len);
                    break;
                case "port":
                    if (!ushort.TryParse(value, out ushort p) || p == 0) { error = $"port must be 1 to 65535, not '{value}'"; return false; }
                    if (proto is not ((byte)IpProtocol.Tcp or (byte)IpProtocol.Udp)) { error = "a port needs tcp or udp before it"; return false; }
                    port = p;
                    break;
                default: error = $"unexpected '{key}'; expected from, to or port"; return false;
            }
        }
        rule = new AccessRule(accept, src, srcLen, dst, dstLen, proto, port);
        return true;
    }

    private static bool TryPrefix(string text, out Ipv4Address address, out int length)
    {
        length = 32;
        var parts = text.Split('/');
        if (!Ipv4Address.TryParse(parts[0], out address)) return false;
        return parts.Length == 1 || parts.Length == 2 && int.TryParse(parts[1], out length) && length is >= 0 and <= 32;
    }
}

public sealed partial class RouterNode
{
    private AccessRule[] _acl = [];

    /// <summary>Appends a rule to the access list forwarded packets go through (first match decides; no match accepts).</summary>
    internal void AddAccessRule(AccessRule rule) => _acl = [.. _acl, rule];

    /// <summary>Whether the access list lets a forwarded packet through.</summary>
    private bool Permitted(in Ipv4Packet ip)
    {
        foreach (var r in _acl)
            if (r.Matches(ip)) return r.Accept;
        return true;
    }
}
