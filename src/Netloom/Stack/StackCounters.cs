namespace Netloom.Stack;

/// <summary>Why the stack dropped something.</summary>
public enum StackDrop
{
    Malformed,          // failed a wire-layer check
    NotForUs,           // another station's unicast
    BadChecksum,
    TtlExpired,
    UnknownProtocol,
    NoRoute,
    ArpTimeout,         // address never resolved
    PendingFull,        // too many packets waiting for resolution
    DeviceFull,         // no transmit buffer
    ReassemblyOverlap,  // RFC 5722: overlapping fragments drop the whole datagram
    ReassemblyFull,     // memory limit, in total or for one source
    ReassemblyTimeout,
    ClosedPort,
    SocketQueueFull,
    IcmpRateLimited,
    TooBig,
    TcpPaws,            // RFC 7323 PAWS: an old timestamp
    TcpOutOfWindow,     // sequence outside the receive window
    TcpOutOfOrderFull,  // no room to track another out-of-order range
    TcpAcceptQueueFull, // a listener's backlog is full: SYN or final ACK dropped
    TcpSynQueueFull,    // SYN queue full and SYN cookies off
    TcpTableFull,       // StackOptions.TcpConnections reached
    TcpBadCookie,       // an ACK to a listener that matched no half-open entry or cookie
    NdpInvalid,         // RFC 4861 validity checks: hop limit not 255, a bad code, options of length 0
}

/// <summary>
/// Per-layer counters of one stack: received, sent, and drops by reason. The stack increments the
/// fields in place on its own thread (a plain add, nothing more on the hot path); the public API
/// hands out <see cref="StackCountersSnapshot"/> copies.
/// </summary>
internal sealed class StackCounters
{
    public long FramesIn, FramesOut, ArpIn, ArpOut, Ipv4In, Ipv4Out, IcmpIn, IcmpOut, UdpIn, UdpOut;
    public long FragmentsIn, FragmentsOut, Reassembled;
    public long TcpIn, TcpOut, TcpActiveOpens, TcpPassiveOpens, TcpResetsIn, TcpResetsOut, TcpChallengeAcks, TcpSynCookiesSent, TcpSynCookiesAccepted, TcpTransmitBlocked;
    public long TcpRetransmits;
    public long NdpIn, NdpOut, DadConflicts, SlaacAddresses, PathMtuUpdates, NeighborsUnreachable;
    private readonly long[] _drops = new long[DropReasons];

    internal static readonly int DropReasons = Enum.GetValues<StackDrop>().Length;

    public long Drops(StackDrop reason) => _drops[(int)reason];
    public long TotalDrops
    {
        get
        {
            long total = 0;
            foreach (long d in _drops) total += d;
            return total;
        }
    }
    internal void Drop(StackDrop reason) => _drops[(int)reason]++;

    public IEnumerable<(StackDrop Reason, long Count)> NonZeroDrops()
    {
        for (int i = 0; i < _drops.Length; i++) if (_drops[i] != 0) yield return ((StackDrop)i, _drops[i]);
    }

    /// <summary>A copy of every counter. Read with the stack lock held for a consistent set; without it each value is still whole (64-bit reads).</summary>
    public StackCountersSnapshot Snapshot() => new()
    {
        FramesIn = FramesIn,
        FramesOut = FramesOut,
        ArpIn = ArpIn,
        ArpOut = ArpOut,
        Ipv4In = Ipv4In,
        Ipv4Out = Ipv4Out,
        IcmpIn = IcmpIn,
        IcmpOut = IcmpOut,
        UdpIn = UdpIn,
        UdpOut = UdpOut,
        FragmentsIn = FragmentsIn,
        FragmentsOut = FragmentsOut,
        Reassembled = Reassembled,
        TcpIn = TcpIn,
        TcpOut = TcpOut,
        TcpActiveOpens = TcpActiveOpens,
        TcpPassiveOpens = TcpPassiveOpens,
        TcpResetsIn = TcpResetsIn,
        TcpResetsOut = TcpResetsOut,
        TcpChallengeAcks = TcpChallengeAcks,
        TcpSynCookiesSent = TcpSynCookiesSent,
        TcpSynCookiesAccepted = TcpSynCookiesAccepted,
        TcpTransmitBlocked = TcpTransmitBlocked,
        TcpRetransmits = TcpRetransmits,
        DropCounts = (long[])_drops.Clone(),
    };
}

/// <summary>A stack's counters at one moment (see <c>SocketStack.Counters</c>): received, sent, and drops by reason.</summary>
public readonly record struct StackCountersSnapshot
{
    /// <summary>Ethernet frames received.</summary>
    public long FramesIn { get; init; }
    /// <summary>Ethernet frames sent.</summary>
    public long FramesOut { get; init; }
    /// <summary>ARP packets received.</summary>
    public long ArpIn { get; init; }
    /// <summary>ARP packets sent.</summary>
    public long ArpOut { get; init; }
    /// <summary>IPv4 packets received (fragments count one each).</summary>
    public long Ipv4In { get; init; }
    /// <summary>IPv4 packets sent (fragments count one each).</summary>
    public long Ipv4Out { get; init; }
    /// <summary>ICMP messages received.</summary>
    public long IcmpIn { get; init; }
    /// <summary>ICMP messages sent.</summary>
    public long IcmpOut { get; init; }
    /// <summary>UDP datagrams received.</summary>
    public long UdpIn { get; init; }
    /// <summary>UDP datagrams sent.</summary>
    public long UdpOut { get; init; }
    /// <summary>IPv4 fragments received.</summary>
    public long FragmentsIn { get; init; }
    /// <summary>IPv4 fragments sent.</summary>
    public long FragmentsOut { get; init; }
    /// <summary>Datagrams reassembled from fragments.</summary>
    public long Reassembled { get; init; }
    /// <summary>TCP segments received.</summary>
    public long TcpIn { get; init; }
    /// <summary>TCP segments sent.</summary>
    public long TcpOut { get; init; }
    /// <summary>Connections opened by this stack (RFC 9293 active OPEN).</summary>
    public long TcpActiveOpens { get; init; }
    /// <summary>Connections accepted from a listener.</summary>
    public long TcpPassiveOpens { get; init; }
    /// <summary>Resets received.</summary>
    public long TcpResetsIn { get; init; }
    /// <summary>Resets sent.</summary>
    public long TcpResetsOut { get; init; }
    /// <summary>Challenge ACKs sent (RFC 5961).</summary>
    public long TcpChallengeAcks { get; init; }
    /// <summary>SYN-ACKs sent with a SYN cookie.</summary>
    public long TcpSynCookiesSent { get; init; }
    /// <summary>Connections completed from a valid SYN cookie.</summary>
    public long TcpSynCookiesAccepted { get; init; }
    /// <summary>Times a TCP send found the device full and waited for room.</summary>
    public long TcpTransmitBlocked { get; init; }
    /// <summary>Segments sent again (timeouts, fast retransmit, SACK recovery).</summary>
    public long TcpRetransmits { get; init; }
    internal long[]? DropCounts { get; init; }

    /// <summary>Frames or packets dropped for <paramref name="reason"/>.</summary>
    public long Drops(StackDrop reason) => DropCounts is { } d ? d[(int)reason] : 0;

    /// <summary>Drops for every reason together.</summary>
    public long TotalDrops
    {
        get
        {
            long total = 0;
            if (DropCounts is { } d) foreach (long n in d) total += n;
            return total;
        }
    }

    /// <summary>The reasons with at least one drop, in enum order.</summary>
    public IEnumerable<(StackDrop Reason, long Count)> NonZeroDrops()
    {
        if (DropCounts is not { } d) yield break;
        for (int i = 0; i < d.Length; i++) if (d[i] != 0) yield return ((StackDrop)i, d[i]);
    }
}
