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

    public void Validate()
    {
        if (PrefixLength is < 0 or > 32) throw new ArgumentOutOfRangeException(nameof(PrefixLength), PrefixLength, "prefix length must be 0 to 32");
        if (Mtu is < 576 or > 9000) throw new ArgumentOutOfRangeException(nameof(Mtu), Mtu, "MTU must be 576 to 9000");
        if (!Mac.IsUnicast) throw new ArgumentException($"interface MAC {Mac} must be unicast");
        if (Address.IsUnspecified || Address.IsMulticast || Address.IsBroadcast) throw new ArgumentException($"{Address} cannot be an interface address");
        if (Gateway is { } g && !g.SameSubnet(Address, PrefixLength)) throw new ArgumentException($"gateway {g} is not on {Address}/{PrefixLength}");
    }
}
