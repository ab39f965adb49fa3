using Netloom.Diagnostics;

namespace Netloom.Stack;

/// <summary>
/// The stack's instruments on the "Netloom" meter: per-layer counters and TCP, read from
/// <see cref="StackCounters"/> when a listener collects. Tagged <c>netloom.stack</c> (the stack's
/// address) and, when the stack runs on a port, <c>netloom.port</c> (two stacks may share an
/// address on different ports); drops also <c>netloom.drop.reason</c>.
/// </summary>
internal static class StackMetrics
{
    public const string StackTag = "netloom.stack", PortTag = "netloom.port", ReasonTag = "netloom.drop.reason";
    internal static readonly MetricSources<Interface> Sources = new();

    static StackMetrics()
    {
        var s = Sources;
        s.Counter("netloom.stack.frames.in", "{frame}", "Ethernet frames received", static i => i.Counters.FramesIn);
        s.Counter("netloom.stack.frames.out", "{frame}", "Ethernet frames sent", static i => i.Counters.FramesOut);
        s.Counter("netloom.stack.arp.in", "{packet}", "ARP packets received", static i => i.Counters.ArpIn);
        s.Counter("netloom.stack.arp.out", "{packet}", "ARP packets sent", static i => i.Counters.ArpOut);
        s.Counter("netloom.stack.ipv4.in", "{packet}", "IPv4 packets received", static i => i.Counters.Ipv4In);
        s.Counter("netloom.stack.ipv4.out", "{packet}", "IPv4 packets sent", static i => i.Counters.Ipv4Out);
        s.Counter("netloom.stack.ipv4.fragments.in", "{fragment}", "IPv4 fragments received", static i => i.Counters.FragmentsIn);
        s.Counter("netloom.stack.ipv4.fragments.out", "{fragment}", "IPv4 fragments sent", static i => i.Counters.FragmentsOut);
        s.Counter("netloom.stack.ipv4.reassembled", "{datagram}", "Datagrams reassembled from fragments", static i => i.Counters.Reassembled);
        s.Counter("netloom.stack.icmp.in", "{message}", "ICMP messages received", static i => i.Counters.IcmpIn);
        s.Counter("netloom.stack.icmp.out", "{message}", "ICMP messages sent", static i => i.Counters.IcmpOut);
        s.Counter("netloom.stack.udp.in", "{datagram}", "UDP datagrams received", static i => i.Counters.UdpIn);
        s.Counter("netloom.stack.udp.out", "{datagram}", "UDP datagrams sent", static i => i.Counters.UdpOut);
        s.CounterByReason("netloom.stack.drops", "{packet}", "Frames, packets and segments the stack dropped, by reason",
            ReasonTag, NetloomMeter.SnakeNames<StackDrop>(), static (i, r) => i.Counters.Drops((StackDrop)r));

        s.Counter("netloom.tcp.segments.in", "{segment}", "TCP segments received", static i => i.Counters.TcpIn);
        s.Counter("netloom.tcp.segments.out", "{segment}", "TCP segments sent", static i => i.Counters.TcpOut);
        s.Counter("netloom.tcp.retransmits", "{segment}", "TCP segments sent again", static i => i.Counters.TcpRetransmits);
        s.Counter("netloom.tcp.opens.active", "{connection}", "Connections this stack opened (active OPEN)", static i => i.Counters.TcpActiveOpens);
        s.Counter("netloom.tcp.opens.passive", "{connection}", "Connections accepted by listeners", static i => i.Counters.TcpPassiveOpens);
        s.Counter("netloom.tcp.resets.in", "{segment}", "Resets received", static i => i.Counters.TcpResetsIn);
        s.Counter("netloom.tcp.resets.out", "{segment}", "Resets sent", static i => i.Counters.TcpResetsOut);
        s.Counter("netloom.tcp.challenge_acks", "{segment}", "Challenge ACKs sent (RFC 5961)", static i => i.Counters.TcpChallengeAcks);
        s.Counter("netloom.tcp.syn_cookies.sent", "{segment}", "SYN-ACKs sent with a SYN cookie", static i => i.Counters.TcpSynCookiesSent);
        s.Counter("netloom.tcp.syn_cookies.accepted", "{connection}", "Connections completed from a SYN cookie", static i => i.Counters.TcpSynCookiesAccepted);
        s.Counter("netloom.tcp.transmit_blocked", "{event}", "TCP sends that found the device full", static i => i.Counters.TcpTransmitBlocked);
        s.UpDownCounter("netloom.tcp.connections", "{connection}", "TCP connections in the table now (TIME_WAIT included)", static i => i.TcpConnectionCount);
    }

    /// <summary>Publishes <paramref name="iface"/>'s counters until the result is disposed (or the interface is collected).</summary>
    /// <param name="port">The name of the port the stack runs on, if any.</param>
    public static IDisposable Register(Interface iface, string? port = null) =>
        port is null
            ? Sources.Add(iface, new KeyValuePair<string, object?>(StackTag, iface.Address.ToString()))
            : Sources.Add(iface, new KeyValuePair<string, object?>(StackTag, iface.Address.ToString()), new KeyValuePair<string, object?>(PortTag, port));
}
