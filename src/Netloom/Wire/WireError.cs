namespace Netloom.Wire;

/// <summary>The protocol layer a <see cref="WireError"/> belongs to.</summary>
public enum Layer : byte { None, Ethernet, Arp, Ipv4, Icmp, Udp, Tcp, Ipv6, Icmpv6 }

/// <summary>Why a header was rejected. Each reason formats its own message from up to three numbers.</summary>
public enum WireErrorReason : byte
{
    None,
    /// <summary>Fewer bytes than the fixed header: A available, B needed.</summary>
    Truncated,
    /// <summary>More VLAN tags than are supported: A tags.</summary>
    TooManyVlanTags,
    /// <summary>ARP hardware type A is not Ethernet (1).</summary>
    UnsupportedHardwareType,
    /// <summary>ARP protocol type A is not IPv4 (0x0800).</summary>
    UnsupportedProtocolType,
    /// <summary>ARP address lengths A (hardware) and B (protocol) are not 6 and 4.</summary>
    BadAddressLength,
    /// <summary>IP version A is not 4.</summary>
    BadVersion,
    /// <summary>Header length A is below the minimum B.</summary>
    HeaderLengthTooSmall,
    /// <summary>Header length A exceeds the B bytes available.</summary>
    HeaderLengthExceedsBuffer,
    /// <summary>Total (IPv4) or datagram (UDP) length A is below the header length B.</summary>
    LengthTooSmall,
    /// <summary>Total or datagram length A exceeds the B bytes available.</summary>
    LengthExceedsBuffer,
    /// <summary>Option of kind A at offset B has an invalid length C.</summary>
    BadOptionLength,
    /// <summary>Option of kind A at offset B runs past the end of the options area (length C).</summary>
    OptionOverrun,
    /// <summary>IPv6: A extension headers where at most B are accepted.</summary>
    ExtensionChainTooLong,
    /// <summary>IPv6: a hop-by-hop header at offset A, not straight after the fixed header.</summary>
    HopByHopNotFirst,
    /// <summary>A options in one header where at most B are accepted.</summary>
    TooManyOptions,
    /// <summary>IPv6: A bytes of padding in a row where at most B are accepted.</summary>
    TooMuchPadding,
    /// <summary>NDP option of type A at offset B has length 0.</summary>
    ZeroLengthOption,
    /// <summary>A field has value A where B is required (NDP's hop limit 255, an ICMPv6 code).</summary>
    BadValue,
}

/// <summary>
/// A parse failure as a small value: which layer, why, and the numbers that explain it.
/// Creating one never allocates; <see cref="ToString"/> formats a message such as
/// "ipv4: header length 12 &lt; 20".
/// </summary>
public readonly record struct WireError(Layer Layer, WireErrorReason Reason, int A = 0, int B = 0, int C = 0)
{
    public bool IsNone => Reason == WireErrorReason.None;

    public static string LayerName(Layer layer) => layer switch
    {
        Layer.Ethernet => "ethernet",
        Layer.Arp => "arp",
        Layer.Ipv4 => "ipv4",
        Layer.Icmp => "icmp",
        Layer.Udp => "udp",
        Layer.Tcp => "tcp",
        Layer.Ipv6 => "ipv6",
        Layer.Icmpv6 => "icmpv6",
        _ => "frame",
    };

    public override string ToString() => LayerName(Layer) + ": " + Reason switch
    {
        WireErrorReason.Truncated => $"truncated: {A} bytes < {B}",
        WireErrorReason.TooManyVlanTags => $"more than {A} VLAN tags",
        WireErrorReason.UnsupportedHardwareType => $"hardware type {A} is not Ethernet (1)",
        WireErrorReason.UnsupportedProtocolType => $"protocol type 0x{A:x4} is not IPv4 (0x0800)",
        WireErrorReason.BadAddressLength => $"address lengths {A}/{B} are not 6/4",
        WireErrorReason.BadVersion => $"version {A} != {(B == 0 ? 4 : B)}",
        WireErrorReason.HeaderLengthTooSmall => $"header length {A} < {B}",
        WireErrorReason.HeaderLengthExceedsBuffer => $"header length {A} > {B} bytes available",
        WireErrorReason.LengthTooSmall => $"length {A} < header length {B}",
        WireErrorReason.LengthExceedsBuffer => $"length {A} > {B} bytes available",
        WireErrorReason.BadOptionLength => $"option {A} at offset {B} has invalid length {C}",
        WireErrorReason.OptionOverrun => $"option {A} at offset {B} runs past the options end ({C})",
        WireErrorReason.ExtensionChainTooLong => $"{A} extension headers, more than {B}",
        WireErrorReason.HopByHopNotFirst => $"hop-by-hop header at offset {A} is not first",
        WireErrorReason.TooManyOptions => $"{A} options in one header, more than {B}",
        WireErrorReason.TooMuchPadding => $"{A} bytes of padding in a row, more than {B}",
        WireErrorReason.ZeroLengthOption => $"option {A} at offset {B} has length 0",
        WireErrorReason.BadValue => $"value {A} where {B} is required",
        _ => "no error",
    };
}
