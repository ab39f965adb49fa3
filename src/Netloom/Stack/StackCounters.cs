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
}

/// <summary>Per-layer counters: received, sent, and drops by reason.</summary>
public sealed class StackCounters
{
    public long FramesIn, FramesOut, ArpIn, ArpOut, Ipv4In, Ipv4Out, IcmpIn, IcmpOut, UdpIn, UdpOut;
    public long FragmentsIn, FragmentsOut, Reassembled;
    public long TcpIn, TcpOut, TcpActiveOpens, TcpPassiveOpens, TcpResetsIn, TcpResetsOut, TcpChallengeAcks, TcpSynCookiesSent, TcpSynCookiesAccepted, TcpTransmitBlocked;
    private readonly long[] _drops = new long[Enum.GetValues<StackDrop>().Length];

    public long Drops(StackDrop reason) => _drops[(int)reason];
    public long TotalDrops => _drops.Sum();
    internal void Drop(StackDrop reason) => _drops[(int)reason]++;

    public IEnumerable<(StackDrop Reason, long Count)> NonZeroDrops()
    {
        for (int i = 0; i < _drops.Length; i++) if (_drops[i] != 0) yield return ((StackDrop)i, _drops[i]);
    }
}
