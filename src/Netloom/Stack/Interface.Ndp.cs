using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// Neighbour Discovery (RFC 4861) and address autoconfiguration (RFC 4862) for a host: NS/NA
/// with the neighbour cache's five states and unreachability detection, DAD, router
/// solicitation, router advertisements (default routers, SLAAC prefixes, the link MTU, the hop
/// limit). The cache is the one ARP uses (<see cref="NeighborCache"/>), keyed by <see cref="IpAddr"/>.
/// </summary>
internal sealed partial class Interface
{
    private const int MaxMulticastSolicit = 3, MaxUnicastSolicit = 3; // RFC 4861 §10
    private static readonly Duration DelayFirstProbeTime = Duration.FromSeconds(5);

    private void ProcessNdp(in Ipv6Packet ip, ReadOnlySpan<byte> message)
    {
        // RFC 4861 §6.1 and §7.1: a hop limit of 255 proves the sender is on the link; code 0.
        if (ip.HopLimit != 255) { Counters.Drop(StackDrop.NdpInvalid); return; }
        if (!NdpRepr.TryParse(message, out var n, out _) || n.Code != 0) { Counters.Drop(StackDrop.NdpInvalid); return; }
        var src = ip.Source;
        var dst = ip.Destination;
        Counters.NdpIn++;
        switch ((Icmpv6Type)n.Type)
        {
            case Icmpv6Type.NeighborSolicitation:
                if (n.Target.IsMulticast || (src.IsUnspecified && (!dst.IsMulticast || n.SourceLinkLayer is not null))) { Counters.Drop(StackDrop.NdpInvalid); return; }
                int i = FindAddress6(n.Target);
                if (i < 0) return;
                if (_v6[i].State != AddressState.Preferred)
                {
                    // RFC 4862 §5.4.3: another node's DAD probe for our tentative address.
                    if (src.IsUnspecified && _v6[i].State == AddressState.Tentative) DuplicateDetected(i);
                    return;
                }
                if (src.IsUnspecified) { SendNeighborAdvertisement(n.Target, Wire.Ipv6Address.AllNodes, solicited: false); return; }
                if (n.SourceLinkLayer is { } mac) LearnNeighbor(src, mac);
                SendNeighborAdvertisement(n.Target, src, solicited: true);
                return;
            case Icmpv6Type.NeighborAdvertisement:
                if (n.Target.IsMulticast || (dst.IsMulticast && (n.NeighborFlags & NdpRepr.SolicitedFlag) != 0)) { Counters.Drop(StackDrop.NdpInvalid); return; }
                int own = FindAddress6(n.Target);
                if (own >= 0)
                {
                    if (_v6[own].State == AddressState.Tentative) DuplicateDetected(own);
                    return;
                }
                UpdateFromAdvertisement(n);
                return;
            case Icmpv6Type.RouterAdvertisement:
                if (!src.IsLinkLocal) { Counters.Drop(StackDrop.NdpInvalid); return; } // RFC 4861 §6.1.2
                ProcessRouterAdvertisement(src, n);
                return;
            case Icmpv6Type.Redirect:
                ProcessRedirect(src, n); // Interface.Redirect.cs
                return;
            default:
                return; // a host ignores RS (§6.2.6)
        }
    }

    private void DuplicateDetected(int index)
    {
        // RFC 4862 §5.4.5: the address is not used. A duplicate link-local address stops IPv6 on the interface.
        _v6[index].State = AddressState.Duplicate;
        Counters.DadConflicts++;
    }

    private void ProcessRouterAdvertisement(Ipv6Address router, in NdpRepr n)
    {
        long now = _now.Nanoseconds;
        if (n.CurHopLimit != 0) _hopLimit6 = n.CurHopLimit;
        if (n.Mtu is uint mtu && mtu >= Ipv6Field.MinimumMtu) _linkMtu6 = (int)Math.Min(mtu, (uint)_o.Mtu);
        if (n.SourceLinkLayer is { } mac) LearnNeighbor(router, mac);
        // Default router list (§6.3.4): a lifetime of 0 removes it.
        int slot = -1;
        for (int i = 0; i < _routers.Length; i++)
        {
            if (_routers[i].Until != 0 && _routers[i].Address == router) { slot = i; break; }
            if (slot < 0 && _routers[i].Until <= now) slot = i;
        }
        if (slot >= 0)
        {
            _routers[slot] = n.RouterLifetime == 0 ? default
                : new Router6 { Address = router, Until = now + Duration.FromSeconds(n.RouterLifetime).Nanoseconds };
        }
        for (int p = 0; p < n.PrefixCount; p++)
        {
            var info = n.PrefixInfo(p);
            // RFC 4862 §5.5.3: autonomous, not link-local, preferred <= valid; a 64-bit identifier needs a /64.
            if (!info.Autonomous || info.Prefix.IsLinkLocal || info.PreferredLifetime > info.ValidLifetime || info.PrefixLength != 64) continue;
            var address = Wire.Ipv6Address.FromPrefixAndMac(info.Prefix.Prefix(64), _o.Mac);
            long until = info.ValidLifetime == uint.MaxValue ? long.MaxValue : now + Duration.FromSeconds(info.ValidLifetime).Nanoseconds;
            int existing = FindAddress6(address);
            if (existing >= 0) { if (_v6[existing].Slaac) _v6[existing].ValidUntil = until; continue; }
            if (info.ValidLifetime == 0) continue;
            if (AddAddress6(address, 64, until, slaac: true) >= 0)
            {
                Counters.SlaacAddresses++;
                _timers.Schedule(_ipv6Timer, _now); // start DAD now
            }
        }
    }

    /// <summary>RFC 4861 §7.2.3: a link-layer address from an NS, RS or RA creates or refreshes an entry as Stale.</summary>
    private void LearnNeighbor(Ipv6Address address, MacAddress mac)
    {
        if (!mac.IsUnicast) return;
        int e = _neighbors.FindOrAdd(IpAddr.FromIpv6(address), _now, out bool created);
        ref var n = ref _neighbors[e];
        if (!created && n.State != NeighborCache.State.Incomplete && n.Mac == mac) return;
        bool wasIncomplete = !created && n.State == NeighborCache.State.Incomplete;
        n.Mac = mac;
        n.State = NeighborCache.State.Stale;
        n.Updated = _now.Nanoseconds;
        _timers.Cancel(n.Timer);
        if (wasIncomplete || created) FlushPending(e, mac);
    }

    /// <summary>RFC 4861 §7.2.5: what a Neighbor Advertisement does to the entry of its target.</summary>
    private void UpdateFromAdvertisement(in NdpRepr na)
    {
        int e = _neighbors.Find(IpAddr.FromIpv6(na.Target));
        if (e < 0) return; // no entry: silently discarded
        ref var n = ref _neighbors[e];
        bool solicited = (na.NeighborFlags & NdpRepr.SolicitedFlag) != 0, overrides = (na.NeighborFlags & NdpRepr.OverrideFlag) != 0;
        n.IsRouter = (na.NeighborFlags & NdpRepr.RouterFlag) != 0;
        n.Updated = _now.Nanoseconds;
        if (n.State == NeighborCache.State.Incomplete)
        {
            if (na.TargetLinkLayer is not { } mac) return;
            n.Mac = mac;
            SetReachableOrStale(e, solicited);
            FlushPending(e, mac);
            return;
        }
        bool same = na.TargetLinkLayer is null || na.TargetLinkLayer == n.Mac;
        if (!overrides && !same)
        {
            if (n.State == NeighborCache.State.Reachable) { n.State = NeighborCache.State.Stale; _timers.Cancel(n.Timer); }
            return;
        }
        if (na.TargetLinkLayer is { } newMac) n.Mac = newMac;
        if (solicited) SetReachableOrStale(e, true);
        else if (!same) SetReachableOrStale(e, false);
    }

    private void SetReachableOrStale(int entry, bool reachable)
    {
        ref var n = ref _neighbors[entry];
        n.Attempts = 0;
        if (reachable)
        {
            n.State = NeighborCache.State.Reachable;
            _timers.Schedule(n.Timer, _now + _o.NdpReachableTime);
        }
        else
        {
            n.State = NeighborCache.State.Stale;
            _timers.Cancel(n.Timer);
        }
    }

    private void FlushPending(int entry, MacAddress mac)
    {
        while (_neighbors.TryDequeue(entry, out var packet)) EmitFrame(packet, mac);
    }

    /// <summary>Neighbour unreachability detection (RFC 4861 §7.3.3): the timer of an IPv6 entry.</summary>
    private void NdpNeighborTimer(int entry)
    {
        ref var n = ref _neighbors[entry];
        var target = n.Address.Ipv6;
        switch (n.State)
        {
            case NeighborCache.State.Incomplete:
                if (++n.Attempts >= MaxMulticastSolicit)
                {
                    int lost = _neighbors.DropPending(entry);
                    for (int i = 0; i < lost; i++) Counters.Drop(StackDrop.ArpTimeout);
                    _neighbors.Free(entry);
                    return;
                }
                SendNeighborSolicitation(target, unicast: false);
                _timers.Schedule(n.Timer, _now + _o.NdpRetransmit);
                return;
            case NeighborCache.State.Reachable:
                n.State = NeighborCache.State.Stale; // REACHABLE_TIME passed without confirmation
                return;
            case NeighborCache.State.Delay:
                n.State = NeighborCache.State.Probe;
                n.Attempts = 0;
                SendNeighborSolicitation(target, unicast: true);
                _timers.Schedule(n.Timer, _now + _o.NdpRetransmit);
                return;
            case NeighborCache.State.Probe:
                if (++n.Attempts >= MaxUnicastSolicit) { _neighbors.Free(entry); Counters.NeighborsUnreachable++; return; }
                SendNeighborSolicitation(target, unicast: true);
                _timers.Schedule(n.Timer, _now + _o.NdpRetransmit);
                return;
        }
    }

    /// <summary>Sends an IPv6 packet to its next hop, resolving the hop's address first if needed (RFC 4861 §7.2.2, §7.3.3).</summary>
    private void Deliver6(ReadOnlySpan<byte> packet, Ipv6Address hop)
    {
        if (hop.IsMulticast) { EmitFrame(packet, hop.MulticastMac); return; }
        var key = IpAddr.FromIpv6(hop);
        if (_neighbors.TryLookupUsable(key, out int e))
        {
            ref var n = ref _neighbors[e];
            if (n.State == NeighborCache.State.Stale)
            {
                n.State = NeighborCache.State.Delay;
                _timers.Schedule(n.Timer, _now + DelayFirstProbeTime);
            }
            EmitFrame(packet, n.Mac);
            return;
        }
        int entry = _neighbors.FindOrAdd(key, _now, out bool created);
        if (!_neighbors.Enqueue(entry, packet)) Counters.Drop(StackDrop.PendingFull);
        if (created)
        {
            _neighbors[entry].Attempts = 0;
            SendNeighborSolicitation(hop, unicast: false);
            _timers.Schedule(_neighbors[entry].Timer, _now + _o.NdpRetransmit);
        }
    }

    private void SendNeighborSolicitation(Ipv6Address target, bool unicast)
    {
        var ns = NdpRepr.NeighborSolicitation(target, _o.Mac);
        SendNdp(ns, SelectSource(target), unicast ? target : target.SolicitedNode);
    }

    private void SendNeighborAdvertisement(Ipv6Address target, Ipv6Address to, bool solicited)
    {
        byte flags = (byte)(NdpRepr.OverrideFlag | (solicited ? NdpRepr.SolicitedFlag : 0));
        SendNdp(NdpRepr.NeighborAdvertisement(target, flags, _o.Mac), target, to);
    }

    private void SendNdp(in NdpRepr message, Ipv6Address source, Ipv6Address destination)
    {
        int len = message.BufferLength;
        var t = Transport(len);
        message.Emit(t, source, destination);
        if (SendIpv6(source, destination, IpProtocol.Icmpv6, t.AsSpan(0, len), hopLimit: 255)) Counters.NdpOut++;
    }
}
