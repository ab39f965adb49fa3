using Microsoft.Extensions.Logging;
using Netloom.Rings;

namespace Netloom.Switching;

/// <summary>
/// The kernel fast path (<see cref="XdpFastPath"/>): what the switch learned about stations
/// behind its xdp ports goes into a BPF map that the ports' XDP and TC programs read; they then
/// forward unicast between those ports inside the kernel. The forwarding thread keeps the map in
/// step with the learning table every 100 ms (learned, moved and aged-out stations) and reads
/// the programs' "seen" marks and counters every second, refreshing the stations that talk only
/// through the fast path. The fast path is off while any capture is attached.
/// </summary>
public sealed partial class Switch
{
    private const long FastSyncNs = 100_000_000, FastSlowSyncNs = 1_000_000_000;

    private XdpFastPath? _fast;
    private int[] _fastIfIndex = [];    // per switch port: its interface when it is an xdp port in the fast path, else 0
    private ushort[] _fastFlags = [];   // per switch port: the map flags of its stations (XdpFastPath.Flags)
    private readonly Dictionary<ulong, (int Port, int IfIndex, ushort Flags)> _pushed = [];
    private readonly Dictionary<ulong, (int Port, int IfIndex, ushort Flags)> _want = [];
    private readonly List<(ulong Mac, int Port)> _live = [];
    private readonly List<ulong> _gone = [];
    private long _fastNextSync, _fastSlowAt = long.MinValue / 2; // half: t - _fastSlowAt must not overflow
    private bool _fastEnabled;

    /// <summary>Whether the kernel fast path is attached (see <see cref="EnableXdpFastPath"/>).</summary>
    internal bool HasXdpFastPath => _fast is not null;

    /// <summary>Stations the fast path knows now (for tests and the CLI).</summary>
    internal int XdpFastPathEntries => _pushed.Count;

    /// <summary>Whether the fast path sends frames into switch port <paramref name="port"/> with bpf_redirect_peer.</summary>
    internal bool FastPathPeer(int port) => _fast is { } f && (uint)port < XdpFastPath.MaxPorts && f.Peer(port);

    /// <summary>
    /// Puts the kernel fast path on this switch's xdp ports (at least two, all in one network
    /// namespace, and a <see cref="LearningTable"/> as the lookup); call after adding the ports
    /// and before forwarding. Returns why not, or null when it is on. After a failure no TC
    /// program is left, and every xdp port's XDP program sends every frame to its socket.
    /// </summary>
    internal string? EnableXdpFastPath()
    {
        if (_fast is not null) return null;
        if (_lookup is not LearningTable) return "the switch's lookup is not a learning table";
        var xdp = new List<int>();
        for (int i = 0; i < _ports.Count; i++) if (_ports[i] is XdpPort) xdp.Add(i);
        if (xdp.Count < 2) return "fewer than two xdp ports";
        if (xdp[^1] >= XdpFastPath.MaxPorts) return $"xdp ports beyond switch port {XdpFastPath.MaxPorts - 1}";
        XdpFastPath? fast = null;
        try
        {
            fast = new XdpFastPath($"switch {_id} kernel fast path");
            fast.Enabled = false;
            _fastIfIndex = new int[_ports.Count];
            _fastFlags = new ushort[_ports.Count];
            foreach (int i in xdp)
            {
                var port = (XdpPort)_ports[i];
                fast.Attach(port, i);
                _fastIfIndex[i] = port.IfIndex;
                _fastFlags[i] = fast.Flags(i);
            }
        }
        catch (IOException e)
        {
            // Ports attached before the failure keep the fast-path program, switched off: every frame goes to their sockets.
            fast?.Dispose();
            _fastIfIndex = [];
            return e.Message;
        }
        _fast = fast;
        _fastNextSync = 0;
        Log.LogInformation("switch {Switch}: kernel fast path on {Count} xdp ports", _id, xdp.Count);
        return null;
    }

    /// <summary>From any thread: no frame takes the fast path from now on (until the next sync finds no capture).</summary>
    private void FastPathOff()
    {
        if (_fast is { } f)
        {
            f.Enabled = false;
            _fastEnabled = false;
        }
    }

    /// <summary>Copies the programs' counters into the ports' counters (the sync does it every second; call when the forwarding thread is not running).</summary>
    internal void ReadFastPathCounters()
    {
        if (_fast is not { } fast) return;
        for (int i = 0; i < _fastIfIndex.Length; i++)
        {
            if (_fastIfIndex[i] == 0) continue;
            var (packets, bytes) = fast.Counters(i);
            _counters[i].FastPathPackets = packets;
            _counters[i].FastPathBytes = bytes;
        }
    }

    private void SyncFastPath(long t)
    {
        var fast = _fast!;
        var table = (LearningTable)_lookup;
        _fastNextSync = t + FastSyncNs;
        bool slow = t - _fastSlowAt >= FastSlowSyncNs;
        if (slow)
        {
            _fastSlowAt = t;
            // Stations the fast path carried frames from: as if the switch had seen them now.
            foreach (var (mac, v) in _pushed) if (fast.TakeSeen(mac)) table.Learn(mac, v.Port, t);
            ReadFastPathCounters();
        }

        // What the map should hold: every live station behind an xdp port of the fast path.
        _live.Clear();
        table.CopyLive(t, _live);
        _want.Clear();
        foreach (var (mac, port) in _live)
            if ((uint)port < (uint)_fastIfIndex.Length && _fastIfIndex[port] != 0) _want[mac] = (port, _fastIfIndex[port], _fastFlags[port]);
        _gone.Clear();
        foreach (var (mac, _) in _pushed) if (!_want.ContainsKey(mac)) _gone.Add(mac);
        foreach (ulong mac in _gone)
        {
            fast.Remove(mac);
            _pushed.Remove(mac);
        }
        foreach (var (mac, v) in _want)
        {
            if (_pushed.TryGetValue(mac, out var had) && had == v) continue;
            if (fast.Set(mac, v.IfIndex, v.Flags)) _pushed[mac] = v;
            else
            {
                fast.Remove(mac); // the map is full: this station stays on the slow path
                _pushed.Remove(mac);
            }
        }

        // Under the lock Rechain holds, so a capture attached now is never left with the fast path on.
        lock (_taps)
        {
            bool enabled = _monitor is null;
            if (enabled != _fastEnabled)
            {
                fast.Enabled = enabled;
                _fastEnabled = enabled;
            }
        }
    }
}
