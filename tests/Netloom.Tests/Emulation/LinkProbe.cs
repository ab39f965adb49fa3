using System.Buffers.Binary;
using Netloom.Emulation;
using Netloom.Netem;
using Netloom.Time;

namespace Netloom.Tests.Emulation;

/// <summary>
/// Two bare nodes on one link, for measuring what the link does: the source sends numbered frames
/// at a fixed interval (send time inside), the sink records each arrival. No stack in between, so
/// millions of frames cost well under a second and the statistics are tight.
/// </summary>
internal sealed class LinkProbe
{
    internal sealed class Source(Network net) : Node(net, 0, "src")
    {
        public long Interval, Count, Sent;
        public int Size = 100;

        internal override void Receive(NodePort port, SimFrame frame, long now) => Network.Pool.Return(frame);
        internal override void Start(long now) => RequestWake(now);

        internal override void Wake(long now)
        {
            var f = Network.Pool.Rent()!;
            f.Length = Size;
            f.Data.AsSpan(0, Size).Clear();
            BinaryPrimitives.WriteInt64BigEndian(f.Data.AsSpan(14), Sent);
            BinaryPrimitives.WriteInt64BigEndian(f.Data.AsSpan(22), now);
            // A second copy of both numbers, so a bit flipped in either shows.
            BinaryPrimitives.WriteInt64BigEndian(f.Data.AsSpan(30), Sent);
            BinaryPrimitives.WriteInt64BigEndian(f.Data.AsSpan(38), now);
            Sent++;
            Send(Ports[0], f, now);
            if (Sent < Count) RequestWake(now + Interval);
        }
    }

    internal sealed class Sink(Network net) : Node(net, 1, "dst")
    {
        public readonly List<(long Seq, long SentAt, long At, bool Intact)> Arrivals = [];

        internal override void Receive(NodePort port, SimFrame frame, long now)
        {
            var d = frame.Data.AsSpan(0, frame.Length);
            // The numbers match their copies and everything else is zeros, unless corrupted on the way.
            bool intact = d[14..30].SequenceEqual(d[30..46]) && !d[46..].ContainsAnyExcept((byte)0) && !d[..14].ContainsAnyExcept((byte)0);
            Arrivals.Add((BinaryPrimitives.ReadInt64BigEndian(d[14..]), BinaryPrimitives.ReadInt64BigEndian(d[22..]), now, intact));
            Network.Pool.Return(frame);
        }
    }

    public readonly Network Net;
    public readonly Source Src;
    public readonly Sink Dst;
    public readonly Link Link;

    public LinkProbe(Impairments imp, long count, Duration interval, int size = 100, int seed = 7)
    {
        Net = new Network(new NetworkOptions { Seed = seed });
        Src = new Source(Net) { Count = count, Interval = interval.Nanoseconds, Size = size };
        Dst = new Sink(Net);
        Src.AddPort();
        Dst.AddPort();
        Link = Net.ConnectPorts(Src.Ports[0], Dst.Ports[0], imp, Impairments.None, "probe");
        Net.AddRaw(Src);
        Net.AddRaw(Dst);
    }

    public void Run() => Net.RunUntil(() => false, Duration.FromSeconds(1_000_000));

    public double[] Delays() => Dst.Arrivals.Select(a => (double)(a.At - a.SentAt)).ToArray();
}
