using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// MLDv2 (RFC 3810) for a host: the groups the interface listens to are the solicited-node
/// groups of its addresses (all-nodes is never reported, §6). Joining or leaving one sends a
/// State Change Report at once and [Robustness Variable] - 1 times more at random moments within
/// the Unsolicited Report Interval (§6.1); General and Multicast-Address-Specific Queries are
/// answered with Current State Reports after a random delay up to the query's Maximum Response
/// Delay (§6.2, §6.3). Reports go to ff02::16 with hop limit 1, a Router Alert hop-by-hop option,
/// and a link-local source, or :: while the link-local address is still tentative (§5.2.13).
/// Source-specific queries are answered as address-specific ones; MLDv1 queries (and the
/// compatibility mode they would start, §8) are ignored.
/// </summary>
internal sealed partial class Interface
{
    private const byte TimerMld = 6;
    private const int DefaultRobustness = 2; // §9.1
    private static readonly Duration UnsolicitedReportInterval = Duration.FromSeconds(1); // §9.11

    private struct MldGroup
    {
        public Ipv6Address Group;
        public bool InUse, Member;
        /// <summary>State Change Reports still to send, and when the next is due (ns).</summary>
        public int ChangesLeft;
        public long ChangeDue;
        /// <summary>A pending answer to an address-specific query (ns; 0 for none).</summary>
        public long QueryDue;
    }

    private MldGroup[] _mld = [];
    private int _mldTimer = -1;
    private long _mldGeneralDue;
    private int _robustness = DefaultRobustness;
    internal long MldReportsOut, MldQueriesIn;

    private void InitMld()
    {
        _mld = new MldGroup[MaxAddresses6];
        _mldTimer = _timers.Create(TimerMld, 0);
    }

    /// <summary>
    /// Brings the group list in line with the addresses: a tentative or preferred address needs
    /// its solicited-node group (RFC 4862 §5.4.2 joins it before DAD); a group no address needs is left.
    /// </summary>
    private void SyncMldGroups()
    {
        bool changed = false;
        for (int i = 0; i < _mld.Length; i++)
        {
            ref var g = ref _mld[i];
            if (g.InUse && g.Member && !NeedsGroup(g.Group)) { StartChange(ref g, member: false); changed = true; }
        }
        foreach (ref readonly var a in _v6.AsSpan())
        {
            if (a.State is not (AddressState.Tentative or AddressState.Preferred)) continue;
            var group = a.Address.SolicitedNode;
            int slot = -1, free = -1;
            for (int i = 0; i < _mld.Length; i++)
            {
                if (_mld[i].InUse && _mld[i].Group == group) { slot = i; break; }
                if (free < 0 && !_mld[i].InUse) free = i;
            }
            if (slot >= 0 && _mld[slot].Member) continue;
            if (slot < 0) slot = free;
            if (slot < 0) continue; // as many groups as addresses: cannot happen
            _mld[slot] = new MldGroup { Group = group, InUse = true };
            StartChange(ref _mld[slot], member: true);
            changed = true;
        }
        if (changed) MldTick(); // the first report now: RFC 4862 §5.4.2 wants the join before the DAD probe
    }

    private bool NeedsGroup(Ipv6Address group)
    {
        foreach (ref readonly var a in _v6.AsSpan())
            if (a.State is AddressState.Tentative or AddressState.Preferred && a.Address.SolicitedNode == group) return true;
        return false;
    }

    private void StartChange(ref MldGroup g, bool member)
    {
        g.Member = member;
        g.ChangesLeft = _robustness;
        g.ChangeDue = _now.Nanoseconds;
        g.QueryDue = 0;
    }

    /// <summary>The MLD timer: due State Change Reports, then due answers to queries.</summary>
    private void MldTick()
    {
        long now = _now.Nanoseconds;
        Span<Ipv6Address> joined = stackalloc Ipv6Address[MaxAddresses6], left = stackalloc Ipv6Address[MaxAddresses6], current = stackalloc Ipv6Address[MaxAddresses6];
        int nj = 0, nl = 0, nc = 0;
        bool general = _mldGeneralDue != 0 && _mldGeneralDue <= now;
        if (general) _mldGeneralDue = 0;
        for (int i = 0; i < _mld.Length; i++)
        {
            ref var g = ref _mld[i];
            if (!g.InUse) continue;
            if (g.ChangesLeft > 0 && g.ChangeDue <= now)
            {
                if (g.Member) joined[nj++] = g.Group; else left[nl++] = g.Group;
                // §6.1: the retransmissions come at random moments within the Unsolicited Report Interval.
                if (--g.ChangesLeft > 0) g.ChangeDue = now + (long)(_random.NextDouble() * UnsolicitedReportInterval.Nanoseconds);
                else if (!g.Member) { g = default; continue; }
            }
            if (g.Member && (general || (g.QueryDue != 0 && g.QueryDue <= now)))
            {
                current[nc++] = g.Group;
                g.QueryDue = 0;
            }
        }
        // §5.2.12: joining in any-source mode is a change to EXCLUDE with no sources; leaving, to INCLUDE with none.
        if (nj > 0) SendMldReport(MldField.ChangeToExclude, joined[..nj]);
        if (nl > 0) SendMldReport(MldField.ChangeToInclude, left[..nl]);
        if (nc > 0) SendMldReport(MldField.ModeIsExclude, current[..nc]);
        ScheduleMld();
    }

    private void ScheduleMld()
    {
        long next = _mldGeneralDue != 0 ? _mldGeneralDue : long.MaxValue;
        foreach (ref readonly var g in _mld.AsSpan())
        {
            if (!g.InUse) continue;
            if (g.ChangesLeft > 0) next = Math.Min(next, g.ChangeDue);
            if (g.QueryDue != 0) next = Math.Min(next, g.QueryDue);
        }
        if (next == long.MaxValue) _timers.Cancel(_mldTimer);
        else _timers.Schedule(_mldTimer, new Instant(Math.Max(next, _now.Nanoseconds)));
    }

    /// <summary>§5.2.13-15: to all MLDv2-capable routers, hop limit 1, Router Alert; from the link-local address, or :: before it is valid.</summary>
    private void SendMldReport(byte recordType, ReadOnlySpan<Ipv6Address> groups)
    {
        var source = _v6[0].State == AddressState.Preferred ? _v6[0].Address : Wire.Ipv6Address.Unspecified;
        var destination = Wire.Ipv6Address.AllMldv2Routers;
        const int hbhAt = Ipv6Field.HeaderLength, reportAt = hbhAt + Mldv2ReportWriter.HopByHopLength;
        int reportLength = Mldv2ReportWriter.Emit(_packet.AsSpan(reportAt), recordType, groups, source, destination);
        Mldv2ReportWriter.EmitRouterAlertHopByHop(_packet.AsSpan(hbhAt), (byte)IpProtocol.Icmpv6);
        new Ipv6Repr(source, destination, (byte)IpProtocol.HopByHop, Mldv2ReportWriter.HopByHopLength + reportLength, 1).Emit(_packet);
        Deliver6(_packet.AsSpan(0, reportAt + reportLength), destination);
        MldReportsOut++;
        Counters.IcmpOut++;
    }

    /// <summary>§6.2: schedules the answer to a query; a pending General Query answer due sooner covers any other.</summary>
    private void ProcessMldQuery(in Ipv6Packet ip, ReadOnlySpan<byte> message)
    {
        // §5.1.14: a query must come from a link-local source; anything else is silently discarded.
        if (!ip.Source.IsLinkLocal || !MldQuery.TryParse(message, out var q, out _)) { Counters.Drop(StackDrop.Malformed); return; }
        if (!q.IsVersion2) return; // MLDv1 querier: not supported (see the type's summary)
        MldQueriesIn++;
        if (q.Qrv != 0) _robustness = q.Qrv; // §9.1: learn the querier's robustness
        long now = _now.Nanoseconds;
        long due = now + (long)(_random.NextDouble() * q.MaxResponseDelayMilliseconds * 1_000_000L);
        if (_mldGeneralDue != 0 && _mldGeneralDue <= due) return; // rule 1
        var group = q.MulticastAddress;
        if (group.IsUnspecified) _mldGeneralDue = due; // rule 2: a General Query
        else
        {
            // Rules 3-4: an address-specific (or source-specific) query for a group we listen to.
            bool member = false;
            for (int i = 0; i < _mld.Length; i++)
            {
                ref var g = ref _mld[i];
                if (!g.InUse || !g.Member || g.Group != group) continue;
                g.QueryDue = g.QueryDue != 0 ? Math.Min(g.QueryDue, due) : due;
                member = true;
            }
            if (!member) return;
        }
        ScheduleMld();
    }
}
