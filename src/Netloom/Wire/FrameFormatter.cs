using System.Text;
using System.Text.Json;

namespace Netloom.Wire;

/// <summary>Human and machine renderings of a <see cref="DecodedFrame"/>, as `netloom pcap decode` prints them.</summary>
internal static class FrameFormatter
{
    /// <summary>Source, destination, protocol and a one-line description, as Wireshark's packet list shows.</summary>
    public static (string Source, string Destination, string Protocol, string Info) Describe(in DecodedFrame d)
    {
        if (!d.Has(FrameLayers.Ethernet)) return ("", "", "?", d.Error.ToString());
        string src = d.Ethernet.Source.ToString(), dst = d.Ethernet.Destination.ToString();
        string proto = $"0x{d.Ethernet.EtherType:x4}", info = "";
        if (d.Has(FrameLayers.Arp))
        {
            proto = "ARP";
            info = d.Arp.Operation switch
            {
                (ushort)ArpOperation.Request => $"Who has {d.Arp.TargetIp}? Tell {d.Arp.SenderIp}",
                (ushort)ArpOperation.Reply => $"{d.Arp.SenderIp} is at {d.Arp.SenderMac}",
                var op => $"operation {op}",
            };
        }
        if (d.Has(FrameLayers.Ipv6))
        {
            src = d.Ipv6.Source.ToString();
            dst = d.Ipv6.Destination.ToString();
            proto = "IPv6";
            info = $"next={d.Ipv6Extensions.UpperLayer} hlim={d.Ipv6.HopLimit}";
            if (d.Ipv6Extensions.IsFragment)
                info = $"Fragment id=0x{d.Ipv6Extensions.Fragment.Identification:x8} off={d.Ipv6Extensions.Fragment.FragmentOffset * 8}{(d.Ipv6Extensions.Fragment.MoreFragments ? " MF" : "")}";
        }
        if (d.Has(FrameLayers.Icmpv6))
        {
            proto = "ICMPv6";
            ref readonly var n = ref d.Ndp;
            bool ndp = d.Has(FrameLayers.Ndp);
            info = (Icmpv6Type)d.Icmpv6.Type switch
            {
                Icmpv6Type.EchoRequest => $"Echo request id=0x{d.Icmpv6.Identifier:x4} seq={d.Icmpv6.SequenceNumber}",
                Icmpv6Type.EchoReply => $"Echo reply id=0x{d.Icmpv6.Identifier:x4} seq={d.Icmpv6.SequenceNumber}",
                Icmpv6Type.DestinationUnreachable => $"Destination unreachable (code {d.Icmpv6.Code})",
                Icmpv6Type.PacketTooBig => $"Packet too big mtu={d.Icmpv6.Mtu}",
                Icmpv6Type.TimeExceeded => $"Time exceeded (code {d.Icmpv6.Code})",
                Icmpv6Type.ParameterProblem => $"Parameter problem (code {d.Icmpv6.Code}) pointer={d.Icmpv6.RestOfHeader}",
                Icmpv6Type.NeighborSolicitation when ndp => $"Neighbor solicitation for {n.Target}" + (n.SourceLinkLayer is { } m ? $" from {m}" : ""),
                Icmpv6Type.NeighborAdvertisement when ndp => $"Neighbor advertisement {n.Target}" + (n.TargetLinkLayer is { } m ? $" is at {m}" : ""),
                Icmpv6Type.RouterSolicitation => "Router solicitation",
                Icmpv6Type.RouterAdvertisement when ndp => $"Router advertisement lifetime={n.RouterLifetime}" + (n.PrefixCount > 0 ? $" prefix={n.PrefixInfo(0).Prefix}/{n.PrefixInfo(0).PrefixLength}" : ""),
                Icmpv6Type.Redirect when ndp => $"Redirect {n.Destination} via {n.Target}",
                Icmpv6Type.Mldv2Report => "MLDv2 report",
                _ => $"type {d.Icmpv6.Type} code {d.Icmpv6.Code}",
            };
        }
        if (d.Has(FrameLayers.Ipv4))
        {
            src = d.Ipv4.Source.ToString();
            dst = d.Ipv4.Destination.ToString();
            proto = "IPv4";
            info = $"proto={d.Ipv4.Protocol}";
            if (d.Ipv4.MoreFragments || d.Ipv4.FragmentOffset != 0)
                info = $"Fragment id=0x{d.Ipv4.Identification:x4} off={d.Ipv4.FragmentOffset * 8}{(d.Ipv4.MoreFragments ? " MF" : "")}";
        }
        if (d.Has(FrameLayers.Icmp))
        {
            proto = "ICMP";
            info = (IcmpType)d.Icmp.Type switch
            {
                IcmpType.EchoRequest => $"Echo request id=0x{d.Icmp.Identifier:x4} seq={d.Icmp.SequenceNumber}",
                IcmpType.EchoReply => $"Echo reply id=0x{d.Icmp.Identifier:x4} seq={d.Icmp.SequenceNumber}",
                IcmpType.DestinationUnreachable => $"Destination unreachable (code {d.Icmp.Code})",
                IcmpType.TimeExceeded => $"Time exceeded (code {d.Icmp.Code})",
                _ => $"type {d.Icmp.Type} code {d.Icmp.Code}",
            } + (d.Ipv4.MoreFragments ? " [first fragment]" : "");
        }
        else if (d.Has(FrameLayers.Udp))
        {
            proto = "UDP";
            info = $"{d.Udp.SourcePort} → {d.Udp.DestinationPort} len={d.Udp.PayloadLength}";
        }
        else if (d.Has(FrameLayers.Tcp))
        {
            proto = "TCP";
            ref readonly var t = ref d.Tcp;
            Span<char> f = stackalloc char[9];
            var sb = new StringBuilder();
            sb.Append($"{t.SourcePort} → {t.DestinationPort} [{new string(f[..TcpRepr.FormatFlags(t.Flags, f)])}] seq={t.SequenceNumber}");
            if ((t.Flags & TcpFlags.Ack) != 0) sb.Append($" ack={t.AcknowledgmentNumber}");
            sb.Append($" win={t.Window} len={t.PayloadLength}");
            if (t.MaxSegmentSize is ushort mss) sb.Append($" mss={mss}");
            if (t.WindowScale is byte ws) sb.Append($" ws={ws}");
            if (t.SackPermitted) sb.Append(" sack_perm");
            if (t.Timestamp is TcpTimestamp ts) sb.Append($" tsval={ts.Value} tsecr={ts.Echo}");
            info = sb.ToString();
        }
        if (!d.Error.IsNone) info = (info.Length > 0 ? info + " " : "") + $"[malformed: {d.Error}]";
        return (src, dst, proto, info);
    }

    /// <summary>Writes one frame as a JSON object with the field names `netloom pcap decode --json` documents.</summary>
    public static void WriteJson(Utf8JsonWriter w, int frameNumber, in DecodedFrame d)
    {
        w.WriteStartObject();
        w.WriteNumber("frame", frameNumber);
        w.WriteNumber("length", d.Length);
        if (d.Has(FrameLayers.Ethernet))
        {
            w.WriteStartObject("ethernet");
            w.WriteString("src", d.Ethernet.Source.ToString());
            w.WriteString("dst", d.Ethernet.Destination.ToString());
            w.WriteNumber("ethertype", d.Ethernet.EtherType);
            if (d.Ethernet.VlanId is ushort vlan) w.WriteNumber("vlan", vlan);
            w.WriteEndObject();
        }
        if (d.Has(FrameLayers.Arp))
        {
            w.WriteStartObject("arp");
            w.WriteNumber("operation", d.Arp.Operation);
            w.WriteString("sender_mac", d.Arp.SenderMac.ToString());
            w.WriteString("sender_ip", d.Arp.SenderIp.ToString());
            w.WriteString("target_mac", d.Arp.TargetMac.ToString());
            w.WriteString("target_ip", d.Arp.TargetIp.ToString());
            w.WriteEndObject();
        }
        if (d.Has(FrameLayers.Ipv4))
        {
            ref readonly var ip = ref d.Ipv4;
            w.WriteStartObject("ipv4");
            w.WriteString("src", ip.Source.ToString());
            w.WriteString("dst", ip.Destination.ToString());
            w.WriteNumber("protocol", ip.Protocol);
            w.WriteNumber("ttl", ip.Ttl);
            w.WriteNumber("id", ip.Identification);
            w.WriteNumber("fragment_offset", ip.FragmentOffset);
            w.WriteBoolean("more_fragments", ip.MoreFragments);
            w.WriteBoolean("dont_fragment", ip.DontFragment);
            w.WriteNumber("header_length", ip.HeaderLength);
            w.WriteNumber("total_length", ip.TotalLength);
            w.WriteBoolean("checksum_ok", d.Ipv4ChecksumOk);
            w.WriteEndObject();
        }
        if (d.Has(FrameLayers.Ipv6))
        {
            ref readonly var ip = ref d.Ipv6;
            ref readonly var x = ref d.Ipv6Extensions;
            w.WriteStartObject("ipv6");
            w.WriteString("src", ip.Source.ToString());
            w.WriteString("dst", ip.Destination.ToString());
            w.WriteNumber("next_header", x.UpperLayer);
            w.WriteNumber("hop_limit", ip.HopLimit);
            w.WriteNumber("payload_length", ip.PayloadLength);
            w.WriteNumber("flow_label", ip.FlowLabel);
            w.WriteNumber("fragment_offset", x.HasFragment ? x.Fragment.FragmentOffset : 0);
            w.WriteBoolean("more_fragments", x.HasFragment && x.Fragment.MoreFragments);
            w.WriteEndObject();
        }
        if (d.Has(FrameLayers.Icmpv6))
        {
            w.WriteStartObject("icmpv6");
            w.WriteNumber("type", d.Icmpv6.Type);
            w.WriteNumber("code", d.Icmpv6.Code);
            if (d.TransportChecksumKnown) w.WriteBoolean("checksum_ok", d.TransportChecksumOk);
            w.WriteEndObject();
        }
        if (d.Has(FrameLayers.Icmp))
        {
            w.WriteStartObject("icmp");
            w.WriteNumber("type", d.Icmp.Type);
            w.WriteNumber("code", d.Icmp.Code);
            if (d.TransportChecksumKnown) w.WriteBoolean("checksum_ok", d.TransportChecksumOk);
            w.WriteEndObject();
        }
        if (d.Has(FrameLayers.Udp))
        {
            w.WriteStartObject("udp");
            w.WriteNumber("src_port", d.Udp.SourcePort);
            w.WriteNumber("dst_port", d.Udp.DestinationPort);
            w.WriteNumber("length", d.Udp.BufferLength);
            if (d.TransportChecksumKnown) w.WriteBoolean("checksum_ok", d.TransportChecksumOk);
            w.WriteEndObject();
        }
        if (d.Has(FrameLayers.Tcp)) WriteTcpJson(w, d);
        if (!d.Error.IsNone) w.WriteString("error", d.Error.ToString());
        w.WriteEndObject();
    }

    private static void WriteTcpJson(Utf8JsonWriter w, in DecodedFrame d)
    {
        ref readonly var t = ref d.Tcp;
        w.WriteStartObject("tcp");
        w.WriteNumber("src_port", t.SourcePort);
        w.WriteNumber("dst_port", t.DestinationPort);
        w.WriteNumber("seq", t.SequenceNumber);
        w.WriteNumber("ack", t.AcknowledgmentNumber);
        Span<char> f = stackalloc char[9];
        w.WriteString("flags", f[..TcpRepr.FormatFlags(t.Flags, f)]);
        w.WriteNumber("window", t.Window);
        w.WriteNumber("header_length", t.HeaderLength);
        w.WriteNumber("payload_length", t.PayloadLength);
        if (d.TransportChecksumKnown) w.WriteBoolean("checksum_ok", d.TransportChecksumOk);
        w.WriteStartObject("options");
        if (t.MaxSegmentSize is ushort mss) w.WriteNumber("mss", mss);
        if (t.WindowScale is byte ws) w.WriteNumber("window_scale", ws);
        if (t.SackPermitted) w.WriteBoolean("sack_permitted", true);
        if (t.Sack.Count > 0)
        {
            w.WriteStartArray("sack");
            for (int i = 0; i < t.Sack.Count; i++)
            {
                w.WriteStartArray();
                w.WriteNumberValue(t.Sack[i].Left);
                w.WriteNumberValue(t.Sack[i].Right);
                w.WriteEndArray();
            }
            w.WriteEndArray();
        }
        if (t.Timestamp is TcpTimestamp ts)
        {
            w.WriteStartObject("timestamp");
            w.WriteNumber("value", ts.Value);
            w.WriteNumber("echo", ts.Echo);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
