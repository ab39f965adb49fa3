namespace Netloom.Emulation;

public sealed partial class Network
{
    /// <summary>
    /// Cuts every link whose two ends lie in different groups (nodes in no group form one more
    /// group together). What is in flight on those links is lost. <see cref="Heal"/> undoes it.
    /// </summary>
    public void Partition(IEnumerable<IEnumerable<Node>> groups)
    {
        var groupOf = new Dictionary<Node, int>();
        int g = 0;
        foreach (var group in groups)
        {
            g++;
            foreach (var n in group)
                if (!groupOf.TryAdd(n, g)) throw new ArgumentException($"node {n.Name} is in two groups of the partition");
        }
        foreach (var link in _links)
        {
            int ga = groupOf.GetValueOrDefault(link.A.Node), gb = groupOf.GetValueOrDefault(link.B.Node);
            if (ga == gb || !link.IsUp) continue;
            link.Down();
            link.DownByPartition = true;
        }
    }

    /// <summary>Brings back the links a partition cut (not those taken down by hand).</summary>
    public void Heal()
    {
        foreach (var link in _links)
        {
            if (!link.DownByPartition) continue;
            link.DownByPartition = false;
            link.Up();
        }
    }
}
