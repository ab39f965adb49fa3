namespace Netloom.Emulation;

internal enum EventKind : byte
{
    /// <summary>A frame reaches the far end of a link direction (a frame that overtakes others).</summary>
    Arrival,
    /// <summary>The first frame of a link direction's in-order queue arrives.</summary>
    Head,
    /// <summary>A node asked to be polled (its timers, its apps).</summary>
    Wake,
    /// <summary>A scheduled callback: a scenario event, an app start, an async continuation on a host.</summary>
    Callback,
}

/// <summary>What the network's <see cref="Netloom.Time.EventQueue{T}"/> holds.</summary>
internal struct SimEvent
{
    public EventKind Kind;
    /// <summary>Link id (Arrival, Head), node id (Wake) or callback slot (Callback).</summary>
    public int Target;
    /// <summary>Direction 0/1 (Arrival, Head).</summary>
    public int Aux;
    /// <summary>The link's epoch when the frame left (Arrival): a link that went down meanwhile loses it.</summary>
    public long Epoch;
    public SimFrame? Frame;
}
