using Netloom.Wire;

namespace Netloom.Stack;

internal sealed partial class Interface
{
    private void ProcessArp(ReadOnlySpan<byte> payload)
    {
        if (!ArpPacket.TryParse(payload, out var arp, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        Counters.ArpIn++;
        var senderIp = arp.SenderIp;
        var senderMac = arp.SenderMac;
        bool forUs = IsOurs(arp.TargetIp);
        // RFC 826 merge: update a sender we know; add it if the packet is for us.
        if (!senderIp.IsUnspecified && senderMac.IsUnicast && senderIp != _o.Address)
        {
            int e = _neighbors.Find(senderIp);
            if (e < 0 && forUs) e = _neighbors.FindOrAdd(senderIp, _now, out _);
            if (e >= 0) Resolved(e, senderMac);
        }
        if (forUs && arp.Operation == (ushort)ArpOperation.Request)
            SendArp(ArpOperation.Reply, senderMac, senderIp, senderMac);
    }

    /// <summary>A neighbour's address is known: send what waited for it and keep it for its lifetime.</summary>
    private void Resolved(int entry, MacAddress mac)
    {
        ref var e = ref _neighbors[entry];
        e.State = NeighborCache.State.Reachable;
        e.Mac = mac;
        e.Updated = _now.Nanoseconds;
        e.Attempts = 0;
        _timers.Schedule(e.Timer, _now + _o.NeighborLifetime);
        while (_neighbors.TryDequeue(entry, out var packet)) EmitFrame(packet, mac);
    }

    private void SendArp(ArpOperation op, MacAddress to, Ipv4Address targetIp, MacAddress targetMac)
    {
        var frame = Transmit(14 + ArpRepr.BufferLength);
        if (frame.IsEmpty) return;
        var arp = op == ArpOperation.Request
            ? ArpRepr.Request(_o.Mac, _o.Address, targetIp)
            : ArpRepr.Reply(_o.Mac, _o.Address, targetMac, targetIp);
        int len = FrameBuilder.Arp(frame, new EthernetRepr(_o.Mac, to, EtherType.Arp), arp);
        Commit(len);
        Counters.ArpOut++;
    }

    private void NeighborTimer(int entry)
    {
        ref var e = ref _neighbors[entry];
        if (!e.Address.IsIpv4) { NdpNeighborTimer(entry); return; }
        if (e.State == NeighborCache.State.Reachable)
        {
            _neighbors.Free(entry); // lifetime over: the next packet asks again
            return;
        }
        if (e.State != NeighborCache.State.Incomplete) return;
        if (++e.Attempts >= _o.ArpAttempts)
        {
            int lost = _neighbors.DropPending(entry);
            for (int i = 0; i < lost; i++) Counters.Drop(StackDrop.ArpTimeout);
            _neighbors.Free(entry);
            return;
        }
        SendArp(ArpOperation.Request, MacAddress.Broadcast, e.Address.Ipv4, MacAddress.Zero);
        _timers.Schedule(e.Timer, _now + _o.ArpRetry);
    }

    /// <summary>Sends an IPv4 packet to the next hop, resolving its address first if needed.</summary>
    private void Deliver(ReadOnlySpan<byte> packet, Ipv4Address nextHop)
    {
        if (nextHop.IsBroadcast || IsBroadcastFor(nextHop)) { EmitFrame(packet, MacAddress.Broadcast); return; }
        if (_neighbors.TryLookup(nextHop, out var mac)) { EmitFrame(packet, mac); return; }
        int entry = _neighbors.FindOrAdd(nextHop, _now, out bool created);
        if (!_neighbors.Enqueue(entry, packet)) Counters.Drop(StackDrop.PendingFull);
        if (created)
        {
            SendArp(ArpOperation.Request, MacAddress.Broadcast, nextHop, MacAddress.Zero);
            _timers.Schedule(_neighbors[entry].Timer, _now + _o.ArpRetry);
        }
    }

    private void EmitFrame(ReadOnlySpan<byte> packet, MacAddress to)
    {
        var frame = Transmit(14 + packet.Length);
        if (frame.IsEmpty) return;
        bool v6 = packet.Length > 0 && packet[0] >> 4 == 6; // a queued packet says its own version
        new EthernetRepr(_o.Mac, to, v6 ? EtherType.Ipv6 : EtherType.Ipv4).Emit(frame);
        packet.CopyTo(frame[14..]);
        Commit(14 + packet.Length);
        if (v6) Ipv6Out++; else Counters.Ipv4Out++;
    }
}
