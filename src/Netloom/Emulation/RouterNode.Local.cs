using Netloom.Wire;

namespace Netloom.Emulation;

public sealed partial class RouterNode
{
    private void ReceiveArp(NodePort port, ReadOnlySpan<byte> payload, long now)
    {
        if (!ArpPacket.TryParse(payload, out var arp, out _)) { Counters.Malformed++; return; }
        Counters.ArpIn++;
        var own = _addresses[port.Index];
        // Learn (or refresh) the sender, as RFC 826's merge step does, then release what waited for it.
        if (own is { } o && o.Contains(arp.SenderIp) && arp.SenderIp != o.Address)
        {
            var key = (port.Index, arp.SenderIp);
            _neighbors[key] = arp.SenderMac;
            if (_pending.Remove(key, out var pending))
                while (pending.Frames.TryDequeue(out var f)) SendTo(port.Index, arp.SenderIp, f, now);
        }
        if (arp.Operation != (ushort)ArpOperation.Request || own is not { } me || arp.TargetIp != me.Address) return;
        var reply = Network.Pool.Rent();
        if (reply is null) return;
        reply.Length = FrameBuilder.Arp(reply.Data, new EthernetRepr(port.Mac, arp.SenderMac, EtherType.Arp),
            ArpRepr.Reply(port.Mac, me.Address, arp.SenderMac, arp.SenderIp));
        Counters.ArpOut++;
        Send(port, reply, now);
    }

    /// <summary>A packet for one of the router's own addresses: echo requests are answered, other protocols get Protocol Unreachable.</summary>
    private void ReceiveLocal(NodePort port, in Ipv4Packet ip, long now)
    {
        if (ip.IsFragment) return; // no reassembly on the router: its own traffic is ping-sized
        if (ip.Protocol == (byte)IpProtocol.Icmp)
        {
            if (!IcmpMessage.TryParse(ip.Payload, out var icmp, out _) || !icmp.ChecksumValid) { Counters.Malformed++; return; }
            if (icmp.Type != (byte)IcmpType.EchoRequest || ip.Destination.IsBroadcast) return;
            var echo = IcmpRepr.Echo(false, icmp.Identifier, icmp.SequenceNumber, icmp.Data.Length);
            SendIcmp(ip.Destination, ip.Source, echo, icmp.Data, now);
            return;
        }
        if (!ip.Destination.IsBroadcast)
            SendIcmpError(port, ip, IcmpRepr.Unreachable(UnreachableCode.Protocol, Quote(ip)), now);
    }

    /// <summary>
    /// An ICMP error about <paramref name="ip"/> to its source (RFC 1812 §4.3.2): never about an
    /// ICMP error, a fragment other than the first, or a broadcast or multicast packet.
    /// </summary>
    private void SendIcmpError(NodePort? inPort, in Ipv4Packet ip, IcmpRepr error, long now)
    {
        if (ip.FragmentOffset != 0 || ip.Destination.IsBroadcast || ip.Destination.IsMulticast || ip.Source.IsUnspecified || ip.Source.IsBroadcast) return;
        if (ip.Protocol == (byte)IpProtocol.Icmp && ip.Payload.Length > 0)
        {
            byte t = ip.Payload[0];
            if (t != (byte)IcmpType.EchoRequest && t != (byte)IcmpType.EchoReply) return;
        }
        if (!TryRoute(ip.Source, out var back)) return;
        // The error comes from the address of the port it leaves by (or the port the packet came in on).
        var from = _addresses[back.Port]?.Address ?? (inPort is not null ? _addresses[inPort.Index]?.Address : null);
        if (from is not { } source) return;
        int quoted = error.DataLength;
        SendIcmp(source, ip.Source, error, QuotedStart(ip, quoted), now);
    }

    /// <summary>The start of the offending packet, as the error quotes it (its header and 8 bytes of payload).</summary>
    private ReadOnlySpan<byte> QuotedStart(in Ipv4Packet ip, int quoted)
    {
        var dst = _scratch.AsSpan(0, quoted);
        ip.Header.CopyTo(dst);
        ip.Payload[..Math.Min(ip.Payload.Length, quoted - ip.Header.Length)].CopyTo(dst[ip.Header.Length..]);
        return dst;
    }

    private void SendIcmp(Ipv4Address source, Ipv4Address destination, IcmpRepr icmp, ReadOnlySpan<byte> data, long now)
    {
        if (!TryRoute(destination, out var route)) return;
        var f = Network.Pool.Rent();
        if (f is null) return;
        var p = Ports[route.Port];
        var ipRepr = new Ipv4Repr(source, destination, IpProtocol.Icmp, 0) { Identification = _ipId++ };
        f.Length = FrameBuilder.Icmp(f.Data, new EthernetRepr(p.Mac, MacAddress.Zero, EtherType.Ipv4), ipRepr, icmp, data);
        SendTo(route.Port, route.Via ?? destination, f, now);
    }
}
