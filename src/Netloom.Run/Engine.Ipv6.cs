using Netloom.Run.Native;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Run;

/// <summary>
/// Addresses of both families: which local addresses a socket may bind, which destinations the
/// stack serves (the rest are handed to the kernel, as Onload does), link-local scope ids, and the
/// wait for duplicate address detection before the first IPv6 connection.
/// </summary>
internal sealed unsafe partial class Engine
{
    /// <summary>
    /// The scope id (interface index) of the stack's link: the kernel's index of the TAP or
    /// AF_PACKET interface the port names, so "fe80::1%tap0" means the stack's link; 0 for a shm
    /// port, which has no kernel interface (there any link-local address is the stack's).
    /// </summary>
    public uint ScopeId { get; private set; }

    // Set once the stack's first addresses have passed duplicate address detection.
    private volatile bool _ipv6Settled;

    private static uint KernelIndex(string port)
    {
        int colon = port.IndexOf(':');
        if (colon < 0) return 0;
        string kind = port[..colon], name = port[(colon + 1)..];
        if (kind is not ("tap" or "afpacket") || name.Length == 0 || name.Contains('/') || name.Contains("..")) return 0;
        try { return uint.TryParse(File.ReadAllText($"/sys/class/net/{name}/ifindex").Trim(), out uint i) ? i : 0; }
        catch (IOException) { return 0; }
        catch (UnauthorizedAccessException) { return 0; }
    }

    /// <summary>
    /// Where a link-local address with <paramref name="scopeId"/> lives: 0 (the stack's link),
    /// <see cref="Abi.Kernel"/> (another interface's), or -EINVAL when the scope is missing and
    /// the kernel would want one (tcp_v6_connect, inet6_bind: "requires an interface").
    /// </summary>
    private long LinkLocalScope(uint scopeId)
    {
        if (scopeId == ScopeId) return 0;
        if (scopeId == 0) return -Errno.EINVAL;
        return Abi.Kernel; // another interface's link
    }

    /// <summary>
    /// bind's address check for socket <paramref name="s"/>: 0 when the address is a wildcard or
    /// one of the stack's, <see cref="Abi.Kernel"/> for loopback (the kernel's), else -errno as
    /// Linux gives it (an IPv4-mapped address on an IPV6_V6ONLY socket is EINVAL).
    /// </summary>
    public long CheckBind(RunSocket s, IpAddr a, uint scopeId, bool broadcastOk)
    {
        if (a.IsIpv4)
        {
            if (s.Family == Abi.AF_INET6 && s.V6Only) return -Errno.EINVAL;
            var v4 = a.Ipv4;
            if (v4.IsLoopback) return Abi.Kernel; // 127/8 is the kernel's
            if (v4.IsUnspecified || v4 == Config.Address || (broadcastOk && v4.IsBroadcast)) return 0;
            return -Errno.EADDRNOTAVAIL;
        }
        var v6 = a.Ipv6;
        if (v6.IsLoopback) return Abi.Kernel;
        if (v6.IsUnspecified) return 0;
        if (v6.IsLinkLocal && LinkLocalScope(scopeId) is var scope and not 0) return scope;
        return Interface.HasAddress6(v6) ? 0 : -Errno.EADDRNOTAVAIL;
    }

    /// <summary>
    /// Whether the stack serves an IPv6 destination: 0 when it does (on a prefix of its own, through
    /// a router, or link-local on its link), <see cref="Abi.Kernel"/> for loopback, multicast, the
    /// unspecified address, another interface's link-local or no route; -EINVAL for a link-local
    /// destination without the scope id Linux requires. Call with the lock held.
    /// </summary>
    public long Route6(Ipv6Address to, uint scopeId)
    {
        if (to.IsLoopback || to.IsUnspecified || to.IsMulticast) return Abi.Kernel;
        if (to.IsLinkLocal) return LinkLocalScope(scopeId);
        return Interface.HasRoute6(to) ? 0 : Abi.Kernel;
    }

    /// <summary>
    /// Before an AF_INET6 socket's connect or send: the stack's addresses are tentative for their
    /// first second (duplicate address detection, RFC 4862 §5.4), and Linux would fail such a
    /// connect with EADDRNOTAVAIL. A program started a moment ago would meet that every time, so
    /// its first IPv6 connect or send waits (at most 3 s) for detection to finish. Once no address
    /// is tentative (about a second after start) this is one flag test, for IPv4 sockets too.
    /// </summary>
    private void SettleIpv6(int fd)
    {
        if (_ipv6Settled) return;
        long deadline = Clock.NowNs() + 3_000_000_000L;
        while (true)
        {
            lock (Lock)
            {
                bool tentative = false;
                foreach (ref readonly var a in Interface.Ipv6Addresses)
                    if (a.State == Interface.AddressState.Tentative) { tentative = true; break; }
                if (!tentative) { _ipv6Settled = true; return; }
                if (Get(fd) is not { Family: Abi.AF_INET6 }) return;
                Advance();
            }
            if (Clock.NowNs() >= deadline) return;
            Thread.Sleep(10);
        }
    }
}
