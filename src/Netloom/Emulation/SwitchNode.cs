using System.Buffers.Binary;
using Netloom.Switching;
using Netloom.Time;

namespace Netloom.Emulation;

/// <summary>
/// The learning switch as a node: the same <see cref="ILookup"/> as <see cref="Switch"/> (a
/// <see cref="LearningTable"/> with aging unless another is given). Broadcast, multicast and
/// unknown unicast are flooded; a frame whose destination sits behind its input port is filtered.
/// </summary>
public sealed class SwitchNode : Node
{
    private readonly Func<ILookup> _makeLookup;

    internal SwitchNode(Network network, int id, string name, Func<ILookup>? lookup) : base(network, id, name)
    {
        _makeLookup = lookup ?? (() => new LearningTable(4096, seed: (ulong)(network.Seed * 7919L + id)));
        Lookup = _makeLookup();
    }

    public ILookup Lookup { get; private set; }
    public long Forwarded { get; private set; }
    public long Flooded { get; private set; }
    public long Filtered { get; private set; }

    internal override void Receive(NodePort port, SimFrame frame, long now)
    {
        if (!IsUp || frame.Length < 14) { Discarded++; Network.Pool.Return(frame); return; }
        var span = frame.Data.AsSpan();
        // MACs are 48-bit big-endian: read 8 bytes and drop the low 16 (the other MAC's start).
        ulong dst = BinaryPrimitives.ReadUInt64BigEndian(span) >> 16;
        ulong src = (ulong)BinaryPrimitives.ReadUInt32BigEndian(span[6..]) << 16 | BinaryPrimitives.ReadUInt16BigEndian(span[10..]);
        var at = new Instant(now);
        if ((src & 1UL << 40) == 0) Lookup.Learn(Wire.MacAddress.FromUInt64(src), port.Index, at);
        int outPort = (dst & 1UL << 40) != 0 ? ILookup.Flood : Lookup.Lookup(Wire.MacAddress.FromUInt64(dst), at);
        if (outPort == port.Index) { Filtered++; Network.Pool.Return(frame); return; }
        if (outPort >= 0 && outPort < Ports.Count)
        {
            Forwarded++;
            Send(Ports[outPort], frame, now);
            return;
        }
        Flooded++;
        NodePort? last = null;
        foreach (var p in Ports)
        {
            if (p == port || p.Out is null) continue;
            if (last is not null && Network.Pool.Copy(frame) is { } copy) Send(last, copy, now);
            last = p;
        }
        if (last is not null) Send(last, frame, now);
        else Network.Pool.Return(frame);
    }

    private protected override void OnRestart(long now) => Lookup = _makeLookup();
}
