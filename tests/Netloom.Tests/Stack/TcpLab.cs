using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Stack;

/// <summary>
/// Two user-level stacks joined by a simulated link in virtual time: each direction has a delay,
/// jitter, and seeded loss, duplication and reordering, plus an optional filter that sees every
/// frame. <see cref="Run"/> jumps the clock from event to event, so a 60-second TIME_WAIT costs
/// nothing and every run with the same seed is the same. Frames in flight wait in the library's
/// discrete-event queue (<see cref="EventQueue{T}"/>, the emulator's), one per receiving end.
/// </summary>
internal sealed class TcpLab
{
    public static readonly Ipv4Address IpA = Ipv4Address.Parse("10.9.0.1"), IpB = Ipv4Address.Parse("10.9.0.2");
    public static readonly MacAddress MacA = MacAddress.Parse("02:00:00:00:09:01"), MacB = MacAddress.Parse("02:00:00:00:09:02");

    public sealed class Direction
    {
        public Duration Delay { get; set; } = Duration.FromMicroseconds(500);
        public Duration Jitter { get; set; }
        public double Loss { get; set; }
        public double Duplicate { get; set; }
        public double Reorder { get; set; }
        /// <summary>Sees each frame sent; returns false to drop it.</summary>
        public Func<byte[], bool>? Filter { get; set; }
        public int Sent, Lost;
    }

    public sealed class End : IFrameDevice
    {
        private readonly TcpLab _lab;
        private readonly EventQueue<byte[]> _inbox = new();
        private readonly byte[] _tx = new byte[9100];
        private byte[]? _current;
        internal End Peer = null!;
        internal Direction Out = new();

        public End(TcpLab lab) => _lab = lab;
        public int MaxFrameSize => 1514;
        public int InFlight => _inbox.Count;
        public long NextDue => _inbox.PeekTime;

        public bool TryReceive(out ReadOnlySpan<byte> frame)
        {
            frame = default;
            if (!_inbox.TryPop(_lab.Now.Nanoseconds, out var due)) return false;
            _current = due;
            frame = _current;
            return true;
        }

        public void ReleaseReceived() => _current = null;
        public Span<byte> TryAllocateTransmit(int length) =>
            length > MaxFrameSize ? throw new InvalidOperationException($"the stack asked for a {length}-byte frame on a {MaxFrameSize}-byte device")
            : Peer._inbox.Count > 20000 ? Span<byte>.Empty : _tx.AsSpan(0, length);

        public void CommitTransmit(int length)
        {
            var frame = _tx[..length];
            var d = Out;
            d.Sent++;
            if (_lab.Record) _lab.Frames.Add((this == _lab.A ? 'A' : 'B', frame));
            if (d.Filter is not null && !d.Filter(frame)) { d.Lost++; return; }
            if (_lab.Random.NextDouble() < d.Loss) { d.Lost++; return; }
            Deliver(frame, d);
            if (_lab.Random.NextDouble() < d.Duplicate) Deliver(frame, d);
        }

        private void Deliver(byte[] frame, Direction d)
        {
            long delay = d.Delay.Nanoseconds;
            if (d.Jitter.Nanoseconds > 0) delay += (long)(_lab.Random.NextDouble() * d.Jitter.Nanoseconds);
            if (_lab.Random.NextDouble() < d.Reorder) delay += d.Delay.Nanoseconds + 200_000; // held back past its successors
            Peer._inbox.Push(_lab.Now.Nanoseconds + delay, frame);
        }

        public void Flush() { }

        /// <summary>Puts a frame on the wire towards this end, arriving now.</summary>
        public void Inject(byte[] frame) => _inbox.Push(_lab.Now.Nanoseconds, frame);
    }

    public readonly End A, B;
    public readonly Interface StackA, StackB;
    public readonly Random Random;
    public Instant Now = Instant.FromSeconds(1000);
    /// <summary>Every frame either side sent, in order, when <see cref="Record"/> is on.</summary>
    public readonly List<(char From, byte[] Frame)> Frames = [];
    public bool Record;

    public TcpLab(int seed = 1, Func<StackOptions, StackOptions>? tweak = null)
    {
        Random = new Random(seed);
        A = new End(this);
        B = new End(this);
        A.Peer = B;
        B.Peer = A;
        tweak ??= o => o;
        StackA = new Interface(tweak(new StackOptions { Mac = MacA, Address = IpA }), A, seed: seed * 2 + 1);
        StackB = new Interface(tweak(new StackOptions { Mac = MacB, Address = IpB }), B, seed: seed * 2 + 2);
        Run(Duration.FromMilliseconds(5)); // gratuitous ARPs
        StackA.SendPing(IpB, 1, 1, default);
        StackB.SendPing(IpA, 1, 1, default);
        Run(Duration.FromMilliseconds(5));
        Frames.Clear();
    }

    public Direction AtoB => A.Out;
    public Direction BtoA => B.Out;

    /// <summary>Polls both stacks, jumping time to the next frame or timer, until <paramref name="done"/> or <paramref name="limit"/> of virtual time.</summary>
    public bool RunUntil(Func<bool> done, Duration limit, Action? eachRound = null)
    {
        var end = Now + limit;
        while (true)
        {
            int moved = StackA.Poll(Now) + StackB.Poll(Now);
            eachRound?.Invoke();
            if (done()) return true;
            if (moved > 0) continue;
            long next = Math.Min(A.NextDue, B.NextDue);
            if (StackA.PollAt() is { } pa) next = Math.Min(next, pa.Nanoseconds);
            if (StackB.PollAt() is { } pb) next = Math.Min(next, pb.Nanoseconds);
            next = Math.Max(next, Now.Nanoseconds + 1000); // at least 1 µs per idle round
            if (next > end.Nanoseconds) { Now = end; break; }
            Now = new Instant(next);
        }
        return done();
    }

    /// <summary>Runs for <paramref name="span"/> of virtual time.</summary>
    public void Run(Duration span) => RunUntil(() => false, span);

    /// <summary>Connects A to a listener on B and returns both ends, established.</summary>
    public (TcpSocket Client, TcpSocket Server, TcpListenSocket Listener) Connect(ushort port = 80, TcpSocketOptions? client = null, TcpSocketOptions? server = null)
    {
        var l = StackB.Listen(port, options: server);
        var c = StackA.Connect(IpB, port, client);
        TcpSocket? s = null;
        Assert.True(RunUntil(() => c.State == TcpState.Established && l.TryAccept(out s), Duration.FromSeconds(30)), $"no connection: client {c.State} {c.Error}");
        return (c, s!, l);
    }

    /// <summary>
    /// Sends <paramref name="data"/> from one socket to the other, reading as it arrives; the
    /// sender shuts down at the end. Returns what the receiver got before its FIN.
    /// </summary>
    public byte[] Transfer(TcpSocket from, TcpSocket to, byte[] data, Duration limit, int readChunk = 65536, bool close = true)
    {
        var got = new MemoryStream();
        var buf = new byte[readChunk];
        int sent = 0;
        bool shut = false;
        RunUntil(() =>
        {
            if (sent < data.Length && from.IsConnected) sent += from.Send(data.AsSpan(sent));
            if (sent == data.Length && close && !shut) { from.Shutdown(); shut = true; }
            int n;
            while ((n = to.Receive(buf)) > 0) got.Write(buf, 0, n);
            return close ? to.ReceiveFinished : got.Length >= data.Length;
        }, limit);
        return got.ToArray();
    }

    /// <summary>A TCP segment as if from B's side of <paramref name="s"/> (a connection on A) — for forged RSTs, SYNs and the like.</summary>
    public static byte[] Forge(TcpSocket onA, uint seq, uint ack, TcpFlags flags, ReadOnlySpan<byte> payload = default, ushort window = 1000)
    {
        var frame = new byte[1514];
        var tcp = new TcpRepr
        {
            SourcePort = onA.RemotePort, DestinationPort = onA.LocalPort, SequenceNumber = seq, AcknowledgmentNumber = ack,
            Flags = flags, Window = window, PayloadLength = payload.Length,
        };
        int n = FrameBuilder.Tcp(frame, new EthernetRepr(MacB, MacA, EtherType.Ipv4), new Ipv4Repr(onA.RemoteAddress, onA.LocalAddress, IpProtocol.Tcp, 0), tcp, payload);
        return frame[..n];
    }

    public static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Parses a recorded frame's TCP header, or null when it is not TCP.</summary>
    public static (TcpFlags Flags, uint Seq, uint Ack, int Len, ushort Window)? Tcp(byte[] frame)
    {
        if (!EthernetFrame.TryParse(frame, out var eth, out _) || eth.EtherType != (ushort)EtherType.Ipv4) return null;
        if (!Ipv4Packet.TryParse(eth.Payload, out var ip, out _) || ip.Protocol != (byte)IpProtocol.Tcp) return null;
        if (!TcpSegment.TryParse(ip.Payload, out var t, out _)) return null;
        return (t.Flags, t.SequenceNumber, t.AcknowledgmentNumber, t.Payload.Length, t.Window);
    }
}
