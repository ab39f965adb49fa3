using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// One interface's addressing and the stack's fixed limits. Everything the stack stores is
/// sized from these at construction; nothing grows afterwards.
/// </summary>
public sealed record StackOptions
{
    public required MacAddress Mac { get; init; }
    public required Ipv4Address Address { get; init; }
    public int PrefixLength { get; init; } = 24;
    public Ipv4Address? Gateway { get; init; }
    public int Mtu { get; init; } = 1500;

    /// <summary>
    /// Speak IPv6 too: a link-local address from the MAC, neighbour discovery, router discovery
    /// and SLAAC from router advertisements (RFC 4861, RFC 4862), TCP and UDP over IPv6.
    /// </summary>
    public bool Ipv6 { get; init; }
    /// <summary>A static IPv6 address (with <see cref="Ipv6PrefixLength"/>); without one, SLAAC gives one when a router advertises a prefix.</summary>
    public Ipv6Address? Ipv6Address { get; init; }
    public int Ipv6PrefixLength { get; init; } = 64;
    /// <summary>A static default router; routers that advertise themselves are used as well.</summary>
    public Ipv6Address? Ipv6Gateway { get; init; }
    /// <summary>Hop limit of IPv6 packets sent, until a router advertises another (RFC 4861 §6.3.4).</summary>
    public byte HopLimit { get; init; } = 64;
    /// <summary>Duplicate address detection probes per address (RFC 4862 DupAddrDetectTransmits); 0 turns DAD off.</summary>
    public int DadTransmits { get; init; } = 1;
    /// <summary>RFC 4861 §10 RetransTimer: between neighbour solicitations.</summary>
    public Duration NdpRetransmit { get; init; } = Duration.FromSeconds(1);
    /// <summary>RFC 4861 §10 REACHABLE_TIME: how long a confirmed neighbour stays Reachable.</summary>
    public Duration NdpReachableTime { get; init; } = Duration.FromSeconds(30);

    /// <summary>Neighbour (ARP) cache entries; the stalest is replaced when full.</summary>
    public int NeighborCapacity { get; init; } = 256;
    /// <summary>Packets that may wait for one neighbour's address to resolve.</summary>
    public int PendingPerNeighbor { get; init; } = 4;
    /// <summary>Packets that may wait for address resolution in all.</summary>
    public int PendingTotal { get; init; } = 64;
    public Duration ArpRetry { get; init; } = Duration.FromSeconds(1);
    public int ArpAttempts { get; init; } = 3;
    /// <summary>How long a resolved address is used before it is asked for again.</summary>
    public Duration NeighborLifetime { get; init; } = Duration.FromSeconds(60);

    /// <summary>Bytes of fragments held for reassembly in all, and per source address.</summary>
    public int ReassemblyBytes { get; init; } = 1 << 20;
    public int ReassemblyBytesPerSource { get; init; } = 256 << 10;
    /// <summary>Datagrams being reassembled at once.</summary>
    public int ReassemblySlots { get; init; } = 64;
    public Duration ReassemblyTimeout { get; init; } = Duration.FromSeconds(30);

    /// <summary>ICMP errors the stack may send per second (token bucket, RFC 1812 §4.3.2.8).</summary>
    public int IcmpErrorsPerSecond { get; init; } = 100;
    public byte Ttl { get; init; } = 64;
    public int UdpSockets { get; init; } = 64;

    /// <summary>TCP connections at once (established or closing, TIME_WAIT included); each holds its two buffers.</summary>
    public int TcpConnections { get; init; } = 1024;
    public int TcpListeners { get; init; } = 32;
    /// <summary>How long a closed connection stays in TIME_WAIT (2·MSL, RFC 9293 §3.6.1).</summary>
    public Duration TimeWait { get; init; } = Duration.FromSeconds(60);
    /// <summary>Answer SYNs with cookies (RFC 4987 §3.6) when a listener's SYN queue is full.</summary>
    public bool SynCookies { get; init; } = true;
    /// <summary>Challenge ACKs per second, across the stack (RFC 5961 §7).</summary>
    public int ChallengeAcksPerSecond { get; init; } = 1000;
    /// <summary>Settings of connections made without their own.</summary>
    public TcpSocketOptions Tcp { get; init; } = new();

    /// <summary>The largest MTU: an IPv4 packet in a 64 KiB ring buffer (memory ports, like Linux's loopback).</summary>
    public const int MaxMtu = 65522;

    public void Validate()
    {
        if (PrefixLength is < 0 or > 32) throw new ArgumentOutOfRangeException(nameof(PrefixLength), PrefixLength, "prefix length must be 0 to 32");
        if (Mtu is < 576 or > MaxMtu) throw new ArgumentOutOfRangeException(nameof(Mtu), Mtu, $"MTU must be 576 to {MaxMtu}");
        if (!Mac.IsUnicast) throw new ArgumentException($"interface MAC {Mac} must be unicast");
        if (Address.IsUnspecified || Address.IsMulticast || Address.IsBroadcast) throw new ArgumentException($"{Address} cannot be an interface address");
        if (TcpConnections is < 1 or > 1 << 20) throw new ArgumentOutOfRangeException(nameof(TcpConnections), TcpConnections, "TCP connections must be 1 to 1048576");
        if (TcpListeners is < 1 or > 65535) throw new ArgumentOutOfRangeException(nameof(TcpListeners), TcpListeners, "TCP listeners must be 1 to 65535");
        Tcp.Validate();
        if (Ipv6PrefixLength is < 1 or > 128) throw new ArgumentOutOfRangeException(nameof(Ipv6PrefixLength), Ipv6PrefixLength, "IPv6 prefix length must be 1 to 128");
        if (Ipv6Address is { } v6 && (v6.IsUnspecified || v6.IsMulticast || v6.IsLoopback || v6.IsIpv4Mapped)) throw new ArgumentException($"{v6} cannot be an interface address");
        if ((Ipv6Address is not null || Ipv6Gateway is not null) && !Ipv6) throw new ArgumentException("an IPv6 address or gateway needs Ipv6 = true");
        if (Ipv6 && Mtu < 1280) throw new ArgumentOutOfRangeException(nameof(Mtu), Mtu, "IPv6 needs an MTU of at least 1280 (RFC 8200 §5)");
        if (Gateway is { } g && !g.SameSubnet(Address, PrefixLength)) throw new ArgumentException($"gateway {g} is not on {Address}/{PrefixLength}");
    }
}
