using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>An ICMPv6 echo reply the interface received.</summary>
internal readonly record struct PingReply6(Ipv6Address From, ushort Identifier, ushort Sequence, int DataLength, Instant Received);

/// <summary>
/// IPv6 (RFC 8200) beside IPv4 on the same interface: addresses, receive with the extension
/// chain walked under Wire's limits, reassembly in the shared <see cref="Reassembler"/>, send with
/// source selection, next hop, path MTU and fragmentation, rate-limited ICMPv6 errors. Neighbour
/// and router discovery are in Interface.Ndp.cs; TCP over IPv6 in Interface.Tcp6.cs.
/// </summary>
internal sealed partial class Interface
{
    private const byte TimerIpv6 = 5;
    private const int MaxAddresses6 = 4, MaxRouters = 4, MaxPathMtus = 16;
    private static readonly Duration PathMtuLifetime = Duration.FromSeconds(600); // RFC 8201 §5.3: at least 5 minutes

    internal enum AddressState : byte { Free, Tentative, Preferred, Duplicate }

    internal struct Address6
    {
        public Ipv6Address Address;
        public int PrefixLength;
        public AddressState State;
        public int DadLeft;
        public long ValidUntil; // nanoseconds; long.MaxValue for static and link-local
        public bool Slaac;
    }

    private struct Router6 { public Ipv6Address Address; public long Until; }
    private struct PathMtu6 { public Ipv6Address Destination; public int Mtu; public long Until; }

    // Made only for a stack with IPv6 on, so an IPv4-only stack (the emulator's thousands) pays nothing.
    private Address6[] _v6 = [];
    private Router6[] _routers = [];
    private PathMtu6[] _pmtu = [];
    private RecentQueue<PingReply6>? _pings6;
    private int _ipv6Timer = -1;
    private int _linkMtu6;
    private byte _hopLimit6;
    private uint _fragmentId6;
    private int _rsLeft;
    private readonly int _flowKey = Random.Shared.Next();
    internal long Ipv6In, Ipv6Out;

    /// <summary>The interface's IPv6 addresses and their states (link-local first).</summary>
    internal ReadOnlySpan<Address6> Ipv6Addresses => _v6;

    /// <summary>The preferred global address (static or SLAAC), else the link-local one; null while none is usable.</summary>
    public Ipv6Address? Ipv6Address
    {
        get
        {
            foreach (ref readonly var a in _v6.AsSpan())
                if (a.State == AddressState.Preferred && !a.Address.IsLinkLocal) return a.Address;
            return _v6.Length > 0 && _v6[0].State == AddressState.Preferred ? _v6[0].Address : null;
        }
    }

    /// <summary>At construction, for a stack with IPv6 on: the tables, and the link-local address (tentative until DAD).</summary>
    private void InitIpv6()
    {
        _v6 = new Address6[MaxAddresses6];
        _routers = new Router6[MaxRouters];
        _pmtu = new PathMtu6[MaxPathMtus];
        _pings6 = new RecentQueue<PingReply6>(64);
        _linkMtu6 = _o.Mtu;
        _hopLimit6 = _o.HopLimit;
        _fragmentId6 = (uint)_random.Next();
        _v6[0] = new Address6 { Address = Wire.Ipv6Address.LinkLocalFromMac(_o.Mac), PrefixLength = 64, ValidUntil = long.MaxValue, State = AddressState.Tentative };
        InitMld();
    }

    private void StartIpv6()
    {
        _v6[0] = default;
        AddAddress6(Wire.Ipv6Address.LinkLocalFromMac(_o.Mac), 64, long.MaxValue, slaac: false);
        if (_o.Ipv6Address is { } a) AddAddress6(a, _o.Ipv6PrefixLength, long.MaxValue, slaac: false);
        _rsLeft = 3; // MAX_RTR_SOLICITATIONS (RFC 4861 §10)
        Ipv6Tick();
    }

    private int AddAddress6(Ipv6Address address, int prefixLength, long validUntil, bool slaac)
    {
        int free = -1;
        for (int i = 0; i < _v6.Length; i++)
        {
            if (_v6[i].State != AddressState.Free && _v6[i].Address == address) return i;
            if (free < 0 && _v6[i].State == AddressState.Free) free = i;
        }
        if (free < 0) return -1;
        _v6[free] = new Address6
        {
            Address = address, PrefixLength = prefixLength, ValidUntil = validUntil, Slaac = slaac,
            State = _o.DadTransmits > 0 ? AddressState.Tentative : AddressState.Preferred, DadLeft = _o.DadTransmits,
        };
        return free;
    }

    /// <summary>The periodic IPv6 work: DAD probes, router solicitations, lifetimes of routers, prefixes and path MTUs.</summary>
    private void Ipv6Tick()
    {
        SyncMldGroups(); // addresses came or went: their solicited-node groups follow, reported before DAD probes (Interface.Mld.cs)
        long now = _now.Nanoseconds;
        bool tentative = false;
        for (int i = 0; i < _v6.Length; i++)
        {
            ref var a = ref _v6[i];
            if (a.State == AddressState.Preferred && a.ValidUntil <= now) a.State = AddressState.Free; // a SLAAC lifetime ran out
            if (a.State != AddressState.Tentative) continue;
            if (a.DadLeft > 0)
            {
                // RFC 4862 §5.4.2: from the unspecified address, to the solicited-node group, no SLLA.
                SendNdp(NdpRepr.NeighborSolicitation(a.Address, null), Wire.Ipv6Address.Unspecified, a.Address.SolicitedNode);
                a.DadLeft--;
                tentative = true;
            }
            else a.State = AddressState.Preferred; // no answer within RetransTimer: unique
        }
        for (int i = 0; i < _routers.Length; i++) if (_routers[i].Until != 0 && _routers[i].Until <= now) _routers[i] = default;
        for (int i = 0; i < _pmtu.Length; i++) if (_pmtu[i].Until != 0 && _pmtu[i].Until <= now) _pmtu[i] = default;
        ExpireRedirects(now);
        Duration next = tentative ? _o.NdpRetransmit : Duration.FromSeconds(1);
        if (!tentative && _rsLeft > 0 && _v6[0].State == AddressState.Preferred && !HasRouter())
        {
            var rs = NdpRepr.RouterSolicitation(_o.Mac);
            SendNdp(rs, _v6[0].Address, Wire.Ipv6Address.AllRouters);
            _rsLeft--;
            next = Duration.FromSeconds(4); // RTR_SOLICITATION_INTERVAL
        }
        _timers.Schedule(_ipv6Timer, _now + next);
    }

    private bool HasRouter()
    {
        foreach (ref readonly var r in _routers.AsSpan()) if (r.Until > _now.Nanoseconds) return true;
        return false;
    }

    /// <summary>Whether packets to <paramref name="destination"/> have a next hop: on-link, or through a router.</summary>
    internal bool HasRoute6(Ipv6Address destination) => NextHop6(destination, out _);

    /// <summary>Whether <paramref name="a"/> is one of this interface's addresses (tentative ones included).</summary>
    internal bool HasAddress6(Ipv6Address a) => FindAddress6(a) >= 0;

    /// <summary>Index of our address <paramref name="a"/> in any state, or -1.</summary>
    private int FindAddress6(Ipv6Address a)
    {
        for (int i = 0; i < _v6.Length; i++) if (_v6[i].State != AddressState.Free && _v6[i].Address == a) return i;
        return -1;
    }

    private bool IsOurs6(Ipv6Address a)
    {
        int i = FindAddress6(a);
        return i >= 0 && _v6[i].State == AddressState.Preferred;
    }

    /// <summary>All-nodes, or the solicited-node group of one of our addresses (RFC 4291 §2.8).</summary>
    private bool IsOurGroup(Ipv6Address group)
    {
        if (group == Wire.Ipv6Address.AllNodes) return true;
        foreach (ref readonly var a in _v6.AsSpan()) if (a.State != AddressState.Free && a.Address.SolicitedNode == group) return true;
        return false;
    }

    /// <summary>The Ethernet filter for IPv6 multicast: the MACs of the groups above (RFC 2464 §7).</summary>
    private bool IsOurMulticastMac(MacAddress mac)
    {
        if (!_o.Ipv6) return false;
        ulong m = mac.ToUInt64();
        if (m == 0x3333_0000_0001UL) return true;
        if (m >> 24 != 0x33_33FFUL) return false;
        foreach (ref readonly var a in _v6.AsSpan()) if (a.State != AddressState.Free && (a.Address.Low & 0xFF_FFFF) == (m & 0xFF_FFFF)) return true;
        return false;
    }

    private void ProcessIpv6(ReadOnlySpan<byte> payload)
    {
        if (!_o.Ipv6) { Counters.Drop(StackDrop.UnknownProtocol); return; }
        if (!Ipv6Packet.TryParse(payload, out var ip, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        Ipv6In++;
        var src = ip.Source;
        var dst = ip.Destination;
        if (src.IsMulticast) { Counters.Drop(StackDrop.Malformed); return; } // RFC 4291 §2.7
        bool multicast = dst.IsMulticast;
        int own = multicast ? -1 : FindAddress6(dst);
        if (multicast ? !IsOurGroup(dst) : own < 0) { Counters.Drop(StackDrop.NotForUs); return; }
        // RFC 4862 §5.4: a tentative address receives only neighbour discovery.
        bool tentative = own >= 0 && _v6[own].State != AddressState.Preferred;
        if (!ip.TryReadExtensions(out var x, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        if (x.UnknownOptionAction != Ipv6OptionAction.Skip)
        {
            Counters.Drop(StackDrop.UnknownProtocol);
            // RFC 8200 §4.2: actions 10 and 11 (the latter not to multicast) answer with a Parameter Problem code 2.
            if (x.UnknownOptionAction == Ipv6OptionAction.DiscardAndReport || (x.UnknownOptionAction == Ipv6OptionAction.DiscardAndReportUnicast && !multicast))
                SendIcmpv6Error(Icmpv6Repr.ParameterProblem(Icmpv6ParameterProblemCode.UnrecognizedOption, (uint)(Ipv6Field.HeaderLength + x.UnknownOptionOffset), 0), ip.Bytes, src, dst, multicast);
            return;
        }
        if (x.HasRouting && x.SegmentsLeft > 0)
        {
            // A host is never a waypoint: RFC 8200 §4.4 (and RFC 5095 for type 0). Pointer at Segments Left.
            Counters.Drop(StackDrop.NoRoute);
            return;
        }
        if (x.IsFragment) { Reassemble6(ip, x, multicast, tentative); return; }
        Dispatch6(ip, x.UpperLayer, ip.Payload[x.UpperLayerOffset..], multicast, tentative, x.HeaderCount);
    }

    private void Reassemble6(in Ipv6Packet ip, in Ipv6Extensions x, bool multicast, bool tentative)
    {
        Counters.FragmentsIn++;
        var data = ip.Payload[x.FragmentableOffset..];
        var r = _reassembly.Add(ip.Source, ip.Destination, x.Fragment, x.FragmentHeaderOffset, data, _now, out int slot, out bool created, out bool evicted);
        if (evicted) Counters.Drop(StackDrop.ReassemblyFull);
        switch (r)
        {
            case Reassembler.Result.Incomplete:
                if (created) _timers.Schedule(_reassembly.TimerOf(slot), _now + _o.ReassemblyTimeout);
                return;
            case Reassembler.Result.Duplicate:
                return;
            case Reassembler.Result.NoMemory:
                Counters.Drop(StackDrop.ReassemblyFull);
                if (created) FreeReassembly(slot);
                return;
            case Reassembler.Result.Overlap:
                // RFC 5722: overlapping fragments drop the whole packet, silently. Bad lengths land here too.
                Counters.Drop(StackDrop.ReassemblyOverlap);
                if (slot >= 0) FreeReassembly(slot);
                return;
            default:
                Counters.Reassembled++;
                _rxPartial = false; // fragments are never sent partial
                var whole = _reassembly.Payload(slot);
                // The fragmentable part may start with more extension headers (destination options).
                if (Ipv6Extensions.TryParse(_reassembly.ProtocolOf(slot), whole, out var inner, out _) && !inner.HasFragment)
                    Dispatch6(ip, inner.UpperLayer, whole[inner.UpperLayerOffset..], multicast, tentative, -1);
                else Counters.Drop(StackDrop.Malformed);
                FreeReassembly(slot);
                return;
        }
    }

    /// <summary>Hands an upper-layer message to its protocol. <paramref name="headers"/> is -1 after reassembly (nothing to quote).</summary>
    private void Dispatch6(in Ipv6Packet ip, byte protocol, ReadOnlySpan<byte> message, bool multicast, bool tentative, int headers)
    {
        if (protocol == (byte)IpProtocol.Icmpv6) { ProcessIcmpv6(ip, message, multicast, tentative); return; }
        if (tentative) { Counters.Drop(StackDrop.NotForUs); return; }
        switch ((IpProtocol)protocol)
        {
            case IpProtocol.Tcp: ProcessTcp6(ip.Source, ip.Destination, message, multicast); break;
            case IpProtocol.Udp: ProcessUdp6(ip, message, multicast, headers); break;
            case IpProtocol.Ipv6NoNextHeader: break;
            default:
                Counters.Drop(StackDrop.UnknownProtocol);
                // RFC 8200 §4: Parameter Problem code 1, pointing at the Next Header field that named it.
                if (headers == 0) SendIcmpv6Error(Icmpv6Repr.ParameterProblem(Icmpv6ParameterProblemCode.UnrecognizedNextHeader, Ipv6Field.NextHeader, 0), ip.Bytes, ip.Source, ip.Destination, multicast);
                break;
        }
    }

    private void ProcessIcmpv6(in Ipv6Packet ip, ReadOnlySpan<byte> message, bool multicast, bool tentative)
    {
        var src = ip.Source;
        var dst = ip.Destination;
        if (!Icmpv6Message.TryParse(message, out var m, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        if (!m.ChecksumValid(src, dst)) { Counters.Drop(StackDrop.BadChecksum); return; }
        Counters.IcmpIn++;
        if (NdpRepr.IsNdp(m.Type)) { ProcessNdp(ip, message); return; }
        if (tentative) { Counters.Drop(StackDrop.NotForUs); return; }
        switch ((Icmpv6Type)m.Type)
        {
            case Icmpv6Type.EchoRequest:
                if (src.IsUnspecified) return;
                var reply = Transport(message.Length).AsSpan(0, message.Length);
                message.CopyTo(reply);
                var from = multicast ? SelectSource(src) : dst;
                new Icmpv6Writer(reply) { Type = (byte)Icmpv6Type.EchoReply, Code = 0 }.FillChecksum(from, src);
                if (SendIpv6(from, src, IpProtocol.Icmpv6, reply)) Counters.IcmpOut++;
                break;
            case Icmpv6Type.MulticastListenerQuery:
                ProcessMldQuery(ip, message);
                break;
            case Icmpv6Type.EchoReply:
                _pings6?.Add(new PingReply6(src, m.Identifier, m.SequenceNumber, m.Data.Length, _now));
                break;
            case Icmpv6Type.PacketTooBig:
                if (m.TryGetQuoted(out var q, out _) && FindAddress6(q.Source) >= 0) UpdatePathMtu(q.Destination, m.Mtu);
                break;
            case Icmpv6Type.DestinationUnreachable or Icmpv6Type.TimeExceeded or Icmpv6Type.ParameterProblem:
                if (m.TryGetQuoted(out var quoted, out _) && FindAddress6(quoted.Source) >= 0
                    && Ipv6Extensions.TryParse(quoted.NextHeader, quoted.Payload, out var qx, out _))
                {
                    var t = quoted.Payload[qx.UpperLayerOffset..];
                    // RFC 4443 §3.1 with RFC 1122 §4.2.3.9's rule: port unreachable is hard, the rest soft.
                    if (qx.UpperLayer == (byte)IpProtocol.Tcp && t.Length >= 4 && m.Type == (byte)Icmpv6Type.DestinationUnreachable)
                        _tcp.Unreachable(IpAddr.FromIpv6(quoted.Destination), ReadU16(t[2..]), ReadU16(t), m.Code == (byte)Icmpv6UnreachableCode.Port);
                    else if (qx.UpperLayer == (byte)IpProtocol.Udp)
                        UdpIcmpError(m.Type, m.Code, IpAddr.FromIpv6(src), IpAddr.FromIpv6(quoted.Destination), t);
                }
                break;
        }
    }

    /// <summary>RFC 8201 §4: a Packet Too Big lowers the path MTU, never below 1280, never above the link's.</summary>
    private void UpdatePathMtu(Ipv6Address destination, uint mtu)
    {
        int value = (int)Math.Clamp(mtu, (uint)Ipv6Field.MinimumMtu, (uint)_linkMtu6);
        int slot = -1;
        long oldest = long.MaxValue;
        for (int i = 0; i < _pmtu.Length; i++)
        {
            if (_pmtu[i].Until != 0 && _pmtu[i].Destination == destination) { slot = i; break; }
            if (_pmtu[i].Until < oldest) { oldest = _pmtu[i].Until; slot = i; }
        }
        ref var p = ref _pmtu[slot];
        if (p.Until != 0 && p.Destination == destination && p.Mtu <= value) { p.Until = (_now + PathMtuLifetime).Nanoseconds; return; }
        bool lowered = PathMtu(destination) > value;
        p = new PathMtu6 { Destination = destination, Mtu = value, Until = (_now + PathMtuLifetime).Nanoseconds };
        Counters.PathMtuUpdates++;
        if (lowered) _tcp.PathMtuLowered(IpAddr.FromIpv6(destination));
    }

    internal int PathMtu(Ipv6Address destination)
    {
        foreach (ref readonly var p in _pmtu.AsSpan()) if (p.Until != 0 && p.Destination == destination) return p.Mtu;
        return _linkMtu6;
    }

    /// <summary>RFC 6724 in small: link-local for link-local and link-scope destinations, else a preferred global address.</summary>
    internal Ipv6Address SelectSource(Ipv6Address destination)
    {
        if (!destination.IsLinkLocal && !destination.IsLinkScopeMulticast)
            foreach (ref readonly var a in _v6.AsSpan())
                if (a.State == AddressState.Preferred && !a.Address.IsLinkLocal) return a.Address;
        return _v6[0].Address;
    }

    /// <summary>The next hop: the destination itself when on-link (RFC 4861 §5.2), else the target of a redirect for it, else a default router.</summary>
    private bool NextHop6(Ipv6Address destination, out Ipv6Address hop)
    {
        hop = destination;
        if (destination.IsMulticast || destination.IsLinkLocal) return true;
        if (_redirectCount > 0 && RedirectedHop(destination, out hop)) return true; // RFC 4861 §8.3 (Interface.Redirect.cs)
        foreach (ref readonly var a in _v6.AsSpan())
            if (a.State == AddressState.Preferred && !a.Address.IsLinkLocal && destination.SameSubnet(a.Address, a.PrefixLength)) return true;
        foreach (ref readonly var r in _routers.AsSpan())
            if (r.Until > _now.Nanoseconds) { hop = r.Address; return true; }
        if (_o.Ipv6Gateway is { } g) { hop = g; return true; }
        return false;
    }

    /// <summary>RFC 6437: a flow label from a keyed hash of the flow's addresses, protocol and ports; never 0.</summary>
    private uint FlowLabel(Ipv6Address source, Ipv6Address destination, byte protocol, uint ports)
    {
        uint h = (uint)HashCode.Combine(_flowKey, source.Value, destination.Value, protocol, ports) & 0xF_FFFF;
        return h == 0 ? 1 : h;
    }

    /// <summary>
    /// Sends an upper-layer message in one IPv6 packet, or in fragments (RFC 8200 §4.5) when it
    /// exceeds the path MTU: fragment payloads are multiples of 8 bytes except the last.
    /// </summary>
    internal bool SendIpv6(Ipv6Address source, Ipv6Address destination, IpProtocol protocol, ReadOnlySpan<byte> message, byte hopLimit = 0, uint ports = 0)
    {
        if (!NextHop6(destination, out var hop)) { Counters.Drop(StackDrop.NoRoute); return false; }
        if (message.Length > ushort.MaxValue - Ipv6FragmentRepr.HeaderLength) { Counters.Drop(StackDrop.TooBig); return false; }
        var repr = new Ipv6Repr(source, destination, (byte)protocol, message.Length, hopLimit != 0 ? hopLimit : _hopLimit6)
        {
            FlowLabel = FlowLabel(source, destination, (byte)protocol, ports),
        };
        int mtu = PathMtu(destination);
        const int hl = Ipv6Field.HeaderLength;
        if (hl + message.Length <= mtu)
        {
            message.CopyTo(_packet.AsSpan(hl));
            repr.Emit(_packet);
            Deliver6(_packet.AsSpan(0, hl + message.Length), hop);
            return true;
        }
        var frag = new Ipv6FragmentRepr { NextHeader = (byte)protocol, Identification = _fragmentId6++ };
        repr.NextHeader = (byte)IpProtocol.Ipv6Fragment;
        int maxData = (mtu - hl - Ipv6FragmentRepr.HeaderLength) & ~7;
        for (int offset = 0; offset < message.Length; offset += maxData)
        {
            int len = Math.Min(maxData, message.Length - offset);
            frag.FragmentOffset = (ushort)(offset / 8);
            frag.MoreFragments = offset + len < message.Length;
            repr.PayloadLength = Ipv6FragmentRepr.HeaderLength + len;
            message.Slice(offset, len).CopyTo(_packet.AsSpan(hl + Ipv6FragmentRepr.HeaderLength));
            frag.Emit(_packet.AsSpan(hl));
            repr.Emit(_packet);
            Deliver6(_packet.AsSpan(0, hl + repr.PayloadLength), hop);
            Counters.FragmentsOut++;
        }
        return true;
    }

    /// <summary>
    /// An ICMPv6 error about <paramref name="offending"/> (RFC 4443 §2.4): as much of it as fits
    /// 1280 bytes, under the rate limit; never about an ICMPv6 error, never to a multicast or
    /// unspecified source, and about a multicast destination only for Packet Too Big.
    /// </summary>
    private void SendIcmpv6Error(Icmpv6Repr error, ReadOnlySpan<byte> offending, Ipv6Address to, Ipv6Address offendingDestination, bool multicast)
    {
        if (to.IsMulticast || to.IsUnspecified || (multicast && error.Type != (byte)Icmpv6Type.PacketTooBig)) return;
        if (Ipv6Packet.TryParse(offending, out var p, out _) && p.TryReadExtensions(out var x, out _) && x.UpperLayer == (byte)IpProtocol.Icmpv6)
        {
            var up = p.Payload[x.UpperLayerOffset..];
            if (up.Length == 0 || up[0] < 128) return;
        }
        if (!TakeIcmpToken()) return;
        int quote = Math.Min(offending.Length, Icmpv6Field.MaxErrorLength - Icmpv6Repr.HeaderLength);
        var t = Transport(Icmpv6Repr.HeaderLength + quote);
        offending[..quote].CopyTo(t.AsSpan(Icmpv6Repr.HeaderLength));
        error.DataLength = quote;
        var from = IsOurs6(offendingDestination) ? offendingDestination : SelectSource(to);
        error.Emit(t, from, to);
        if (SendIpv6(from, to, IpProtocol.Icmpv6, t.AsSpan(0, error.BufferLength))) Counters.IcmpOut++;
    }

    /// <summary>Sends an ICMPv6 echo request with <paramref name="data"/> as its payload.</summary>
    public bool SendPing6(Ipv6Address to, ushort identifier, ushort sequence, ReadOnlySpan<byte> data)
    {
        if (data.Length > ushort.MaxValue - 16) throw new ArgumentException("ping data too large for one packet", nameof(data));
        if (_v6.Length == 0) throw new InvalidOperationException("IPv6 is off on this stack, or it has not started (StackOptions.Ipv6, then Poll)");
        var from = SelectSource(to);
        var t = Transport(Icmpv6Repr.HeaderLength + data.Length);
        data.CopyTo(t.AsSpan(Icmpv6Repr.HeaderLength));
        var icmp = Icmpv6Repr.Echo(true, identifier, sequence, data.Length);
        icmp.Emit(t, from, to);
        if (!SendIpv6(from, to, IpProtocol.Icmpv6, t.AsSpan(0, icmp.BufferLength))) return false;
        Counters.IcmpOut++;
        return true;
    }

    public bool TryTakePingReply6(out PingReply6 reply)
    {
        reply = default;
        return _pings6 is not null && _pings6.TryTake(out reply);
    }
}
