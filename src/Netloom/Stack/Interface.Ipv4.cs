using Netloom.Wire;

namespace Netloom.Stack;

internal sealed partial class Interface
{
    private void ProcessIpv4(ReadOnlySpan<byte> payload)
    {
        if (!Ipv4Packet.TryParse(payload, out var ip, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        if (!ip.ChecksumValid) { Counters.Drop(StackDrop.BadChecksum); return; }
        Counters.Ipv4In++;
        var dst = ip.Destination;
        bool broadcast = !IsOurs(dst);
        if (broadcast && !IsBroadcastFor(dst)) { Counters.Drop(StackDrop.NotForUs); return; }
        if (!ip.IsFragment)
        {
            Dispatch(ip.Protocol, ip.Header, ip.Source, ip.Payload, broadcast);
            return;
        }

        Counters.FragmentsIn++;
        var r = _reassembly.Add(ip, _now, out int slot, out bool created, out bool evicted);
        if (evicted) Counters.Drop(StackDrop.ReassemblyFull);
        switch (r)
        {
            case Reassembler.Result.Incomplete:
                if (created) _timers.Schedule(_reassembly.TimerOf(slot), _now + _o.ReassemblyTimeout);
                return;
            case Reassembler.Result.Duplicate:
                return; // the same fragment twice: keep the first
            case Reassembler.Result.NoMemory:
                Counters.Drop(StackDrop.ReassemblyFull);
                if (created) FreeReassembly(slot);
                return;
            case Reassembler.Result.Overlap:
                Counters.Drop(StackDrop.ReassemblyOverlap);
                if (slot >= 0) FreeReassembly(slot);
                return;
            default:
                Counters.Reassembled++;
                _rxPartial = false; // fragments are never sent partial
                Dispatch(ip.Protocol, _reassembly.FirstHeader(slot), ip.Source, _reassembly.Payload(slot), broadcast);
                FreeReassembly(slot);
                return;
        }
    }

    private void FreeReassembly(int slot)
    {
        _timers.Cancel(_reassembly.TimerOf(slot));
        _reassembly.Free(slot);
    }

    private void ReassemblyTimer(int slot)
    {
        Counters.Drop(StackDrop.ReassemblyTimeout);
        _reassembly.Free(slot);
    }

    private void Dispatch(byte protocol, ReadOnlySpan<byte> header, Ipv4Address source, ReadOnlySpan<byte> payload, bool broadcast)
    {
        switch ((IpProtocol)protocol)
        {
            case IpProtocol.Icmp: ProcessIcmp(header, source, payload, broadcast); break;
            case IpProtocol.Udp: ProcessUdp(header, source, payload, broadcast); break;
            case IpProtocol.Tcp: ProcessTcp(source, payload, broadcast); break;
            default:
                Counters.Drop(StackDrop.UnknownProtocol);
                if (!broadcast) SendIcmpError(IcmpType.DestinationUnreachable, (byte)UnreachableCode.Protocol, 0, header, payload, source);
                break;
        }
    }

    /// <summary>The next hop for a destination, or null when there is no route.</summary>
    private Ipv4Address? NextHop(Ipv4Address destination) =>
        destination.IsBroadcast || destination.SameSubnet(_o.Address, _o.PrefixLength) ? destination : _o.Gateway;

    /// <summary>
    /// Sends a transport message in one IPv4 packet, or in fragments when it exceeds the MTU
    /// (RFC 791 §3.2: fragment payloads are multiples of 8 bytes except the last).
    /// </summary>
    internal bool SendIpv4(Ipv4Address destination, IpProtocol protocol, ReadOnlySpan<byte> transport)
    {
        if (NextHop(destination) is not { } hop) { Counters.Drop(StackDrop.NoRoute); return false; }
        if (transport.Length > 65535 - 20) { Counters.Drop(StackDrop.TooBig); return false; }
        ushort id = _ipId++;
        var repr = new Ipv4Repr(_o.Address, destination, protocol, 0, _o.Ttl) { Identification = id };
        int maxPayload = (_o.Mtu - repr.HeaderLength) & ~7;
        if (transport.Length + repr.HeaderLength <= _o.Mtu)
        {
            repr.PayloadLength = transport.Length;
            transport.CopyTo(_packet.AsSpan(repr.HeaderLength));
            repr.Emit(_packet);
            Deliver(_packet.AsSpan(0, repr.TotalLength), hop);
            return true;
        }
        for (int offset = 0; offset < transport.Length; offset += maxPayload)
        {
            int len = Math.Min(maxPayload, transport.Length - offset);
            repr.PayloadLength = len;
            repr.FragmentOffset = (ushort)(offset / 8);
            repr.MoreFragments = offset + len < transport.Length;
            transport.Slice(offset, len).CopyTo(_packet.AsSpan(repr.HeaderLength));
            repr.Emit(_packet);
            Deliver(_packet.AsSpan(0, repr.TotalLength), hop);
            Counters.FragmentsOut++;
        }
        return true;
    }

    /// <summary>
    /// Sends an ICMP error about a datagram, quoting its header and first 8 bytes (RFC 792), within
    /// the rate limit. Never about an ICMP error, a broadcast, or a later fragment (RFC 1122 §3.2.2).
    /// </summary>
    private void SendIcmpError(IcmpType type, byte code, uint rest, ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload, Ipv4Address to)
    {
        if (to.IsBroadcast || to.IsMulticast || to.IsUnspecified || IsBroadcastFor(to)) return;
        if (header.Length >= 20 && header[9] == (byte)IpProtocol.Icmp && payload.Length > 0
            && payload[0] is not ((byte)IcmpType.EchoRequest or (byte)IcmpType.EchoReply)) return;
        if (!TakeIcmpToken()) return;
        int quote = header.Length + Math.Min(8, payload.Length);
        var t = Transport(8 + quote);
        header.CopyTo(t.AsSpan(8));
        payload[..Math.Min(8, payload.Length)].CopyTo(t.AsSpan(8 + header.Length));
        var icmp = new IcmpRepr { Type = (byte)type, Code = code, RestOfHeader = rest, DataLength = quote };
        icmp.Emit(t);
        if (SendIpv4(to, IpProtocol.Icmp, t.AsSpan(0, icmp.BufferLength))) Counters.IcmpOut++;
    }
}
