using Netloom.Stack;
using Netloom.Time;
namespace Netloom.Tests.Stack;
public class DbgTests
{
    [Fact]
    public void Dbg()
    {
        int seed = int.Parse(Environment.GetEnvironmentVariable("SEED") ?? "1076");
            var r = new Random(seed);
            var lab = new TcpLab(seed);
            lab.AtoB.Loss = r.NextDouble() * 0.10;
            lab.BtoA.Loss = r.NextDouble() * 0.10;
            lab.AtoB.Reorder = r.NextDouble() * 0.1;
            lab.AtoB.Duplicate = r.NextDouble() * 0.05;
            lab.BtoA.Duplicate = r.NextDouble() * 0.05;
            lab.AtoB.Jitter = Duration.FromMicroseconds(r.Next(0, 2000));
            var o = new TcpSocketOptions
            {
                SelectiveAck = r.Next(4) != 0, Timestamps = r.Next(4) != 0, WindowScaling = r.Next(4) != 0,
                Congestion = r.Next(2) == 0 ? CongestionAlgorithm.Cubic : CongestionAlgorithm.NewReno,
                ReceiveBufferSize = 1 << r.Next(12, 19), SendBufferSize = 1 << r.Next(12, 19), NoDelay = r.Next(2) == 0,
            };
            Console.WriteLine(o);
            var (c, s, _) = lab.Connect(client: o, server: o);
            lab.Record = true;
            var data = TcpLab.RandomBytes(r.Next(1, 200_000), seed);
            var got = lab.Transfer(c, s, data, Duration.FromSeconds(3600), readChunk: r.Next(1, 20000));
            Console.WriteLine(c.Describe());
            Console.WriteLine(s.Describe());
            Console.WriteLine($"{lab.Now} A.PollAt={lab.StackA.PollAt()} B.PollAt={lab.StackB.PollAt()}");
            foreach (var (from, f) in lab.Frames.TakeLast(12)) Console.WriteLine($"{from} {TcpLab.Tcp(f)}");
    }
}
