using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>An echo reply the interface received.</summary>
internal readonly record struct PingReply(Ipv4Address From, ushort Identifier, ushort Sequence, int DataLength, Instant Received);

internal sealed partial class Interface
{
    private readonly RecentQueue<PingReply> _pings = new(64);

    private void ProcessIcmp(ReadOnlySpan<byte> header, Ipv4Address source, ReadOnlySpan<byte> message, bool broadcast)
    {
        if (!IcmpMessage.TryParse(message, out var icmp, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        if (!icmp.ChecksumValid) { Counters.Drop(StackDrop.BadChecksum); return; }
        Counters.IcmpIn++;
        switch ((IcmpType)icmp.Type)
        {
            case IcmpType.EchoRequest when !broadcast:
                // The reply is the request with its type changed (RFC 792).
                var reply = Transport(message.Length).AsSpan(0, message.Length);
                message.CopyTo(reply);
                new IcmpWriter(reply) { Type = (byte)IcmpType.EchoReply, Code = 0 }.FillChecksum();
                if (SendIpv4(source, IpProtocol.Icmp, reply)) Counters.IcmpOut++;
                break;
            case IcmpType.EchoReply:
                _pings.Add(new PingReply(source, icmp.Identifier, icmp.SequenceNumber, icmp.Data.Length, _now));
                break;
            case IcmpType.DestinationUnreachable or IcmpType.TimeExceeded:
                DeliverIcmpError(icmp, source);
                break;
        }
    }

    /// <summary>Hands an ICMP error to the UDP socket whose datagram it quotes.</summary>
    private void DeliverIcmpError(in IcmpMessage icmp, Ipv4Address from)
    {
        if (!icmp.TryGetQuoted(out var quoted, out _) || quoted.Source != _o.Address) return;
        if (quoted.Protocol == (byte)IpProtocol.Tcp) { TcpIcmpError(icmp, quoted.Payload, quoted.Destination); return; }
        if (quoted.Protocol == (byte)IpProtocol.Udp) UdpIcmpError(icmp.Type, icmp.Code, IpAddr.FromIpv4(from), IpAddr.FromIpv4(quoted.Destination), quoted.Payload);
    }

    /// <summary>Sends an echo request (ping) with <paramref name="data"/> as its payload.</summary>
    public bool SendPing(Ipv4Address to, ushort identifier, ushort sequence, ReadOnlySpan<byte> data)
    {
        if (data.Length > 65535 - 28) throw new ArgumentException("ping data too large for one datagram", nameof(data));
        var t = Transport(IcmpRepr.HeaderLength + data.Length);
        data.CopyTo(t.AsSpan(IcmpRepr.HeaderLength));
        var icmp = IcmpRepr.Echo(true, identifier, sequence, data.Length);
        icmp.Emit(t);
        if (!SendIpv4(to, IpProtocol.Icmp, t.AsSpan(0, icmp.BufferLength))) return false;
        Counters.IcmpOut++;
        return true;
    }

    /// <summary>The oldest echo reply not yet taken (the last 64 are kept).</summary>
    public bool TryTakePingReply(out PingReply reply) => _pings.TryTake(out reply);
}
