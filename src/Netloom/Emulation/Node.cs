using Netloom.Wire;

namespace Netloom.Emulation;

/// <summary>One network interface of a node: where a link attaches.</summary>
internal sealed class NodePort
{
    internal NodePort(Node node, int index, MacAddress mac)
    {
        Node = node;
        Index = index;
        Mac = mac;
    }

    public Node Node { get; }
    public int Index { get; }
    public MacAddress Mac { get; }
    public Link? Link { get; internal set; }
    /// <summary>The link direction frames sent from this port travel on.</summary>
    public LinkDirection? Out { get; internal set; }

    public override string ToString() => $"{Node.Name}:{Index}";
}

/// <summary>
/// A node of the emulated network. The network calls it when a frame arrives on one of its ports
/// and when a wake-up it asked for falls due; the node never reads a clock. Nodes can crash (frames
/// to them are lost, their state is gone) and restart.
/// </summary>
public abstract class Node
{
    private readonly List<NodePort> _ports = [];
    internal long WakeAt = long.MaxValue;

    private protected Node(Network network, int id, string name)
    {
        Network = network;
        Id = id;
        Name = name;
    }

    public Network Network { get; }
    public int Id { get; }
    public string Name { get; }
    internal IReadOnlyList<NodePort> Ports => _ports;
    public bool IsUp { get; private set; } = true;
    /// <summary>Frames that arrived while the node had no use for them (not for it, malformed, inbox full).</summary>
    public long Discarded { get; private protected set; }

    internal NodePort AddPort()
    {
        var p = new NodePort(this, _ports.Count, Network.NextMac());
        _ports.Add(p);
        return p;
    }

    /// <summary>A frame arrived on <paramref name="port"/>; the node now owns it.</summary>
    internal abstract void Receive(NodePort port, SimFrame frame, long now);

    /// <summary>A wake-up the node asked for is due.</summary>
    internal virtual void Wake(long now) { }

    /// <summary>Called once when the network starts running.</summary>
    internal virtual void Start(long now) { }

    /// <summary>Sends <paramref name="frame"/> out of <paramref name="port"/> (ownership passes on); an unlinked port drops it.</summary>
    private protected void Send(NodePort port, SimFrame frame, long now)
    {
        if (port.Out is { } dir) dir.Transmit(frame, now);
        else { Discarded++; Network.Pool.Return(frame); }
    }

    private protected void RequestWake(long at) => Network.ScheduleWake(this, at);

    // For nodes whose one link leads to a real port (linux and process nodes).
    private Action<SimFrame>? _sendOnLink;
    private long _sendAt;

    /// <summary>A frame from the link goes out to <paramref name="port"/> (counted as discarded when its ring is full, or when down).</summary>
    private protected void DeliverTo(PortAttachment port, SimFrame frame)
    {
        if (IsUp && !port.Deliver(frame)) Discarded++;
        Network.Pool.Return(frame);
    }

    /// <summary>What <paramref name="port"/> received goes onto the node's link; the number of frames taken.</summary>
    private protected int PollFrom(PortAttachment port, long now)
    {
        _sendAt = now;
        _sendOnLink ??= f => Send(_ports[0], f, _sendAt);
        long discarded = Discarded;
        int n = port.Poll(Network, IsUp, _sendOnLink, ref discarded);
        Discarded = discarded;
        return n;
    }

    public void Crash()
    {
        if (!IsUp) return;
        IsUp = false;
        OnCrash();
    }

    public void Restart()
    {
        if (IsUp) return;
        IsUp = true;
        OnRestart(Network.NowNs);
    }

    /// <summary>Taken out of the running network (<see cref="Network.Remove(Node)"/>): crashed, unlinked, its name free again.</summary>
    internal bool Removed { get; set; }

    private protected virtual void OnCrash() { }
    private protected virtual void OnRestart(long now) { }

    public override string ToString() => Name;
}
