using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// TCP and UDP over IPv6: the same <see cref="TcpTable"/> and sockets as IPv4 (they see only
/// <see cref="IpAddr"/>), with IPv6's pseudo-header, path MTU and flow labels (RFC 6437: one
/// label per connection, from a keyed hash of its addresses and ports).
/// </summary>
internal sealed partial class Interface
{
    private void ProcessTcp6(Ipv6Address source, Ipv6Address destination, ReadOnlySpan<byte> segment, bool multicast)
    {
        if (multicast || source.IsUnspecified) { Counters.Drop(StackDrop.NotForUs); return; } // TCP is unicast only
        if (!TcpSegment.TryParse(segment, out var tcp, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        if (!TrustedIn() && !tcp.ChecksumValid(source, destination)) { Counters.Drop(StackDrop.BadChecksum); return; }
        var seg = new TcpSegmentIn(IpAddr.FromIpv6(source), IpAddr.FromIpv6(destination), TcpRepr.FromSegment(tcp), tcp.Payload);
        _tcp.Process(ref seg);
    }

    /// <summary>Opens a connection to an IPv6 address (see the IPv4 <see cref="Connect(Ipv4Address, ushort, TcpSocketOptions?, ushort)"/>).</summary>
    public TcpSocket Connect(Ipv6Address remote, ushort port, TcpSocketOptions? options = null, ushort localPort = 0)
    {
        if (port == 0) throw new ArgumentException("connect needs a destination port", nameof(port));
        if (remote.IsIpv4Mapped) return Connect(new Ipv4Address((uint)remote.Low), port, options, localPort);
        if (!_o.Ipv6) throw new ArgumentException($"cannot connect to {remote}: IPv6 is off on this stack (set StackOptions.Ipv6, or netloom host without --no-ip6)", nameof(remote));
        if (remote.IsUnspecified || remote.IsMulticast) throw new ArgumentException($"cannot connect to {remote}", nameof(remote));
        if (!NextHop6(remote, out _)) throw new InvalidOperationException($"no route to {remote}: it is off this link and no router is known");
        var source = SelectSource(remote);
        return _tcp.Connect(new TcpEndpoint(IpAddr.FromIpv6(source), localPort), new TcpEndpoint(IpAddr.FromIpv6(remote), port), options ?? _o.Tcp);
    }

    private int MaxSegmentSize6(IpAddr remote) => PathMtu(remote.Ipv6) - Ipv6Field.HeaderLength - TcpField.MinHeaderLength;

    /// <summary>
    /// IPv6's <see cref="ITcpOutput.TrySend"/>: straight into the device's frame when the next hop
    /// is resolved and the segment fits the path MTU, else through <see cref="SendIpv6"/> (which
    /// resolves, queues or fragments).
    /// </summary>
    private bool TrySend6(in TcpSegmentOut s)
    {
        var to = s.Destination.Ipv6;
        var from = s.Source.Ipv6;
        int hl = s.Header.HeaderLength, length = hl + s.Header.PayloadLength;
        if (!NextHop6(to, out var hop)) { Counters.Drop(StackDrop.NoRoute); return true; }
        uint ports = (uint)s.Header.SourcePort << 16 | s.Header.DestinationPort;
        if (Ipv6Field.HeaderLength + length <= PathMtu(to) && _neighbors.TryLookupUsable(IpAddr.FromIpv6(hop), out int e))
        {
            const int ipAt = EthernetField.HeaderLength, tcpAt = ipAt + Ipv6Field.HeaderLength;
            int total = tcpAt + length;
            var frame = _device.TryAllocateTransmit(total);
            if (frame.IsEmpty) { Counters.TcpTransmitBlocked++; return false; }
            ref var n = ref _neighbors[e];
            if (n.State == NeighborCache.State.Stale)
            {
                n.State = NeighborCache.State.Delay;
                _timers.Schedule(n.Timer, _now + DelayFirstProbeTime);
            }
            Counters.TcpOut++;
            new EthernetRepr(_o.Mac, n.Mac, EtherType.Ipv6).Emit(frame);
            new Ipv6Repr(from, to, (byte)IpProtocol.Tcp, length, _hopLimit6) { FlowLabel = FlowLabel(from, to, (byte)IpProtocol.Tcp, ports) }.Emit(frame[ipAt..]);
            var segment = frame.Slice(tcpAt, length);
            s.CopyPayload(segment[hl..]);
            _markNext = PartialOut;
            if (_markNext) s.Header.EmitPartial(segment, from, to);
            else s.Header.Emit(segment, from, to);
            Commit(total);
            Ipv6Out++;
            return true;
        }
        Counters.TcpOut++;
        var t = Transport(length).AsSpan(0, length);
        s.CopyPayload(t[hl..]);
        s.Header.Emit(t, from, to);
        SendIpv6(from, to, IpProtocol.Tcp, t, ports: ports);
        return true;
    }

    private void ProcessUdp6(in Ipv6Packet ip, ReadOnlySpan<byte> datagram, bool multicast, int headers)
    {
        if (!UdpDatagram.TryParse(datagram, out var udp, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        if (!TrustedIn() && !udp.ChecksumValid(ip.Source, ip.Destination)) { Counters.Drop(StackDrop.BadChecksum); return; } // zero is invalid over IPv6
        Counters.UdpIn++;
        var socket = FindUdp(udp.DestinationPort);
        if (socket is null || !socket.Accepts(IpAddr.FromIpv6(ip.Source), udp.SourcePort))
        {
            Counters.Drop(StackDrop.ClosedPort);
            if (headers >= 0) SendIcmpv6Error(Icmpv6Repr.Unreachable(Icmpv6UnreachableCode.Port, 0), ip.Bytes, ip.Source, ip.Destination, multicast);
            return;
        }
        if (!socket.Deliver(udp.Payload, IpAddr.FromIpv6(ip.Source), udp.SourcePort)) Counters.Drop(StackDrop.SocketQueueFull);
    }

    internal bool SendUdp6(ushort sourcePort, Ipv6Address to, ushort port, ReadOnlySpan<byte> payload)
    {
        if (!_o.Ipv6) throw new ArgumentException($"cannot send to {to}: IPv6 is off on this stack (StackOptions.Ipv6)", nameof(to));
        if (payload.Length > ushort.MaxValue - 16) { Counters.Drop(StackDrop.TooBig); return false; }
        var from = SelectSource(to);
        var t = Transport(UdpRepr.HeaderLength + payload.Length);
        payload.CopyTo(t.AsSpan(UdpRepr.HeaderLength));
        var udp = new UdpRepr(sourcePort, port, payload.Length);
        // Partial only when the datagram leaves now in one frame (no fragments, no wait for neighbour discovery).
        bool partial = PartialOut && Ipv6Field.HeaderLength + udp.BufferLength <= PathMtu(to)
            && NextHop6(to, out var hop) && _neighbors.TryLookupUsable(IpAddr.FromIpv6(hop), out _);
        if (partial) udp.EmitPartial(t, from, to);
        else udp.Emit(t, from, to);
        _markNext = partial;
        bool sent = SendIpv6(from, to, IpProtocol.Udp, t.AsSpan(0, udp.BufferLength), ports: (uint)sourcePort << 16 | port);
        _markNext = false;
        if (!sent) return false;
        Counters.UdpOut++;
        return true;
    }
}
