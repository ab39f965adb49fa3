using Netloom.Stack;
using Netloom.Time;
using Netloom.Wire;

namespace Netloom.Tests.Stack;

/// <summary>
/// Drives one <see cref="TcpSocket"/> (through its <see cref="TcpTable"/>) with no second stack and
/// no IP layer: the test writes the peer's segments as <see cref="TcpRepr"/>s, and every segment
/// the socket hands out through <see cref="ITcpOutput"/> is captured. The device can be told to
/// refuse sends, to check the device-full contract. Time moves only when the test says.
/// </summary>
internal sealed class TcpSocketHarness : ITcpOutput
{
    public sealed record Sent(TcpRepr Header, byte[] Payload)
    {
        public TcpFlags Flags => Header.Flags;
        public uint Seq => Header.SequenceNumber;
        public uint Ack => Header.AcknowledgmentNumber;
    }

    public static readonly IpAddr Ipv4Local = IpAddr.FromIpv4(new Ipv4Address(10, 0, 0, 1));
    public static readonly IpAddr Ipv4Peer = IpAddr.FromIpv4(new Ipv4Address(10, 0, 0, 2));
    public const ushort PeerPort = 5000;

    public readonly IpAddr LocalAddress, PeerAddress;

    private readonly TimerWheel _wheel;
    public readonly TcpTable Table;
    public readonly StackCounters Counters = new();
    public readonly List<Sent> Output = [];
    public Instant Now { get; private set; } = new(1_000_000_000);
    /// <summary>The device is full: every send is refused until this is cleared.</summary>
    public bool Refuse;
    public int Refused, Flushes;
    public int Mss = 1460;

    /// <summary>A harness between two IPv4 addresses unless others (of any version) are given.</summary>
    public TcpSocketHarness(StackOptions? options = null, IpAddr? local = null, IpAddr? peer = null)
    {
        LocalAddress = local ?? Ipv4Local;
        PeerAddress = peer ?? Ipv4Peer;
        options ??= new StackOptions { Mac = new MacAddress(2, 0, 0, 0, 0, 1), Address = new Ipv4Address(10, 0, 0, 1), TcpConnections = 4, TcpListeners = 2 };
        _wheel = new TimerWheel(options.TcpConnections + options.TcpListeners);
        Table = new TcpTable(options, this, Counters, _wheel, new Random(1), seed: 1);
        Table.Now = Now;
        Table.Start(Now);
    }

    bool ITcpOutput.TrySend(in TcpSegmentOut segment)
    {
        if (Refuse) { Refused++; return false; }
        Assert.Equal(LocalAddress, segment.Source);
        Assert.Equal(PeerAddress, segment.Destination);
        var payload = new byte[segment.Header.PayloadLength];
        segment.CopyPayload(payload);
        Output.Add(new Sent(segment.Header, payload));
        return true;
    }

    int ITcpOutput.MaxSegmentSize(IpAddr remote) => Mss;

    void ITcpOutput.Flush() => Flushes++;

    /// <summary>Opens a connection to the peer; the SYN is the first segment captured.</summary>
    public TcpSocket Connect(TcpSocketOptions? options = null) =>
        Table.Connect(new TcpEndpoint(LocalAddress, 0), new TcpEndpoint(PeerAddress, PeerPort), options ?? new TcpSocketOptions());

    /// <summary>Hands the table a segment from the peer.</summary>
    public void Deliver(TcpRepr header, ReadOnlySpan<byte> payload = default)
    {
        header.PayloadLength = payload.Length;
        var seg = new TcpSegmentIn(PeerAddress, LocalAddress, header, payload);
        Table.Process(ref seg);
    }

    /// <summary>A segment from the peer to <paramref name="s"/>.</summary>
    public static TcpRepr From(TcpSocket s, uint seq, uint ack, TcpFlags flags, ushort window = 65535) => new()
    {
        SourcePort = PeerPort, DestinationPort = s.LocalPort, SequenceNumber = seq, AcknowledgmentNumber = ack, Flags = flags, Window = window,
    };

    /// <summary>Moves time forward and fires the timers that came due.</summary>
    public void Advance(Duration d)
    {
        Now += d;
        Table.Now = Now;
        _wheel.Expire(Now, Table, static (t, kind, owner) => t.OnTimer(kind, owner));
    }

    /// <summary>What the owner does after flushing the device: refused sockets get their turn.</summary>
    public void AfterFlush()
    {
        if (Table.HasBlocked) Table.RetryBlocked();
    }

    public Sent Last => Output[^1];

    /// <summary>Connects and completes the handshake with a peer whose ISN is <paramref name="peerIss"/>; options off unless given.</summary>
    public TcpSocket Established(uint peerIss = 7000, TcpSocketOptions? options = null, ushort peerWindow = 65535)
    {
        var s = Connect(options ?? new TcpSocketOptions { Timestamps = false, SelectiveAck = false, WindowScaling = false });
        var syn = Last;
        var synAck = From(s, peerIss, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, peerWindow);
        synAck.MaxSegmentSize = 1460;
        Deliver(synAck);
        Assert.Equal(TcpState.Established, s.State);
        return s;
    }
}
