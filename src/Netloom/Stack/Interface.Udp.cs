using Netloom.Wire;

namespace Netloom.Stack;

internal sealed partial class Interface
{
    private readonly UdpBinding?[] _udp;
    public const ushort EphemeralFirst = 49152;

    /// <summary>
    /// Opens a UDP socket on <paramref name="port"/>, or on a random ephemeral port when 0
    /// (RFC 6056 §3.3.1: a random start, then the next free one).
    /// </summary>
    public UdpBinding OpenUdp(ushort port = 0, int receiveBytes = 256 << 10, int receiveCount = 256)
    {
        int free = Array.IndexOf(_udp, null);
        if (free < 0) throw new InvalidOperationException($"all {_udp.Length} UDP sockets are in use; raise StackOptions.UdpSockets");
        if (port == 0)
        {
            int range = 65536 - EphemeralFirst, start = _random.Next(range);
            for (int i = 0; i < range && port == 0; i++)
            {
                ushort candidate = (ushort)(EphemeralFirst + (start + i) % range);
                if (FindUdp(candidate) is null) port = candidate;
            }
            if (port == 0) throw new InvalidOperationException("no ephemeral UDP port is free");
        }
        else if (FindUdp(port) is not null) throw new InvalidOperationException($"UDP port {port} is in use");
        var s = new UdpBinding(this, port, receiveBytes, receiveCount);
        _udp[free] = s;
        return s;
    }

    internal void CloseUdp(UdpBinding s)
    {
        int i = Array.IndexOf(_udp, s);
        if (i >= 0) _udp[i] = null;
        s.IsOpen = false;
    }

    private UdpBinding? FindUdp(ushort port)
    {
        foreach (var s in _udp) if (s is not null && s.LocalPort == port) return s;
        return null;
    }

    internal bool SendUdp(ushort sourcePort, Ipv4Address to, ushort port, ReadOnlySpan<byte> payload)
    {
        if (payload.Length > 65535 - 28) { Counters.Drop(StackDrop.TooBig); return false; }
        var t = Transport(UdpRepr.HeaderLength + payload.Length);
        payload.CopyTo(t.AsSpan(UdpRepr.HeaderLength));
        var udp = new UdpRepr(sourcePort, port, payload.Length);
        // Partial only when the datagram leaves now in one unicast frame (no fragments, no wait for ARP).
        bool partial = PartialOut && Ipv4Field.MinHeaderLength + udp.BufferLength <= _o.Mtu
            && NextHop(to) is { } hop && !IsBroadcastFor(hop) && _neighbors.TryLookup(hop, out _);
        if (partial) udp.EmitPartial(t, _o.Address, to);
        else udp.Emit(t, _o.Address, to);
        _markNext = partial;
        bool sent = SendIpv4(to, IpProtocol.Udp, t.AsSpan(0, udp.BufferLength));
        _markNext = false;
        if (!sent) return false;
        Counters.UdpOut++;
        return true;
    }

    /// <summary>
    /// Hands an ICMP or ICMPv6 error to the UDP socket whose datagram it quotes: the quoted UDP
    /// header's source port names the socket, its destination port and the quoted packet's
    /// destination say which peer the datagram went to. One path for both IP versions.
    /// </summary>
    private void UdpIcmpError(byte type, byte code, IpAddr from, IpAddr quotedDestination, ReadOnlySpan<byte> quotedUdp)
    {
        if (quotedUdp.Length < 4) return;
        FindUdp(ReadU16(quotedUdp))?.DeliverError(new IcmpError(type, code, from, quotedDestination, ReadU16(quotedUdp[2..])));
    }

    private void ProcessUdp(ReadOnlySpan<byte> header, Ipv4Address source, ReadOnlySpan<byte> datagram, bool broadcast)
    {
        if (!UdpDatagram.TryParse(datagram, out var udp, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        if (!TrustedIn() && !udp.ChecksumValid(source, broadcast ? Ipv4Address.Read(header[16..]) : _o.Address)) { Counters.Drop(StackDrop.BadChecksum); return; }
        Counters.UdpIn++;
        var socket = FindUdp(udp.DestinationPort);
        if (socket is null || !socket.Accepts(source, udp.SourcePort))
        {
            Counters.Drop(StackDrop.ClosedPort);
            if (!broadcast) SendIcmpError(IcmpType.DestinationUnreachable, (byte)UnreachableCode.Port, 0, header, datagram, source);
            return;
        }
        if (!socket.Deliver(udp.Payload, source, udp.SourcePort)) Counters.Drop(StackDrop.SocketQueueFull);
    }
}
