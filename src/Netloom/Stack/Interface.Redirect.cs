using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// ICMPv6 Redirect for a host (RFC 4861 §8): a router tells us a better first hop for a
/// destination, either another router on the link (a link-local target) or the destination
/// itself (it is on the link after all). Accepted only when it passes §8.1's checks, the one that
/// matters most being that it comes from the router we use now for that destination; then a
/// small destination cache sends later packets to the target, and the target link-layer option
/// goes into the neighbour cache (§8.3). Anything else is counted as <see cref="StackDrop.NdpInvalid"/>.
/// </summary>
internal sealed partial class Interface
{
    private const int MaxRedirects = 16;
    /// <summary>RFC 4861 gives redirects no lifetime; like the path MTU, they are forgotten after a while and learned again.</summary>
    private static readonly Duration RedirectLifetime = Duration.FromSeconds(600);

    private struct Redirect6 { public Ipv6Address Destination, Target; public long Until; }

    private Redirect6[] _redirects = [];
    private int _redirectCount;
    internal long RedirectsAccepted;

    private void ProcessRedirect(Ipv6Address source, in NdpRepr n)
    {
        var destination = n.Destination;
        var target = n.Target;
        // §8.1 (hop limit 255, checksum, code 0, length and option lengths were checked on the way here):
        // a link-local source that is our current first hop for the destination; a unicast destination;
        // a target that is a link-local router or the destination itself.
        if (!source.IsLinkLocal || destination.IsMulticast || !(target.IsLinkLocal || target == destination)
            || !NextHop6(destination, out var current) || current != source)
        {
            Counters.Drop(StackDrop.NdpInvalid);
            return;
        }
        if (_redirects.Length == 0) _redirects = new Redirect6[MaxRedirects];
        int slot = -1;
        long oldest = long.MaxValue;
        for (int i = 0; i < _redirects.Length; i++)
        {
            if (_redirects[i].Until != 0 && _redirects[i].Destination == destination) { slot = i; break; }
            if (_redirects[i].Until < oldest) { oldest = _redirects[i].Until; slot = i; }
        }
        if (_redirects[slot].Until == 0) _redirectCount++;
        _redirects[slot] = new Redirect6 { Destination = destination, Target = target, Until = (_now + RedirectLifetime).Nanoseconds };
        // §8.3: the target's link-layer address creates or updates its entry (STALE when new or changed).
        if (n.TargetLinkLayer is { } mac)
        {
            LearnNeighbor(target, mac);
            int e = _neighbors.Find(IpAddr.FromIpv6(target));
            if (e >= 0) _neighbors[e].IsRouter = target != destination;
        }
        RedirectsAccepted++;
    }

    /// <summary>The first hop a redirect named for <paramref name="destination"/>, if one is current.</summary>
    private bool RedirectedHop(Ipv6Address destination, out Ipv6Address hop)
    {
        long now = _now.Nanoseconds;
        foreach (ref readonly var r in _redirects.AsSpan())
            if (r.Until > now && r.Destination == destination) { hop = r.Target; return true; }
        hop = default;
        return false;
    }

    private void ExpireRedirects(long now)
    {
        for (int i = 0; i < _redirects.Length; i++)
            if (_redirects[i].Until != 0 && _redirects[i].Until <= now) { _redirects[i] = default; _redirectCount--; }
    }

    /// <summary>For tests and diagnostics: where a packet to <paramref name="destination"/> goes first, or null without a route.</summary>
    internal Ipv6Address? NextHopOf(Ipv6Address destination) => NextHop6(destination, out var hop) ? hop : null;
}
