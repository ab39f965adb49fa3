namespace Netloom.Emulation;

/// <summary>Changes to a running network's shape (the live API's node and link removal).</summary>
public sealed partial class Network
{
    /// <summary>
    /// Takes <paramref name="link"/> out: frames in flight on it are lost, both ends' ports lead
    /// nowhere (a host's port can be linked again; a switch floods past it), and its name is free.
    /// It keeps its id, since queued events name links by id.
    /// </summary>
    internal void Remove(Link link)
    {
        if (link.Removed) return;
        // A switch forgets the addresses it learned on the port, as on a link-down: they are
        // elsewhere now, or gone.
        foreach (var end in new[] { link.A, link.B })
            if (end.Node is SwitchNode s) s.Lookup.ForgetPort(end.Index);
        link.Remove();
    }

    /// <summary>
    /// Takes <paramref name="node"/> out: its links go, it crashes (a process node's program is
    /// stopped, a linux node's namespace deleted) and its name is free for a new node. Like a link
    /// it keeps its id, and its apps stay in the report with what they did.
    /// </summary>
    internal void Remove(Node node)
    {
        if (node.Removed) return;
        foreach (var p in node.Ports)
            if (p.Link is { } l) Remove(l);
        node.Crash();
        node.Removed = true;
        _byName.Remove(node.Name);
        if (node is IAttachedNode attached)
        {
            _attached.Remove(attached);
            attached.Dispose();
        }
    }
}
