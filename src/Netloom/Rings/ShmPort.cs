using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Netloom.Rings;

/// <summary>
/// A port between two processes over shared memory (memif is the model). The first process to
/// open <c>shm:NAME</c> becomes the server: it binds an abstract Unix socket and creates the
/// region; the second connects, maps the region and they exchange packets without copies.
/// <para>
/// The peer is untrusted. No pointer or buffer index crosses the boundary: slot i of a direction
/// always uses the producer's buffer i. The receiver reads each slot's length once into a
/// private ring, dropping and counting lengths of zero or beyond the buffer, and checks every
/// ring index it reads; an impossible index fails the port with the reason.
/// </para>
/// <para>
/// Liveness rides on the control socket: when the peer dies the kernel closes it, the control
/// thread sets <see cref="Failure"/>, and a waiting user notices within 100 ms. A server then
/// accepts a new peer: under the lock its syncs take, the region and both private rings restart
/// from slot 0, so a user holding slot indexes from before must start over too.
/// </para>
/// </summary>
internal sealed unsafe partial class ShmPort : PortBase, IChecksumPort
{
    private const string Protocol = "NETLOOM-SHM 1";
    private readonly ShmRegion _region;
    private readonly bool _server;
    private readonly Socket? _listener;
    private Socket? _peer;
    private readonly Thread _control;
    private volatile bool _disposed;

    private readonly RingMemory _txMemory, _rxMemory;
    private readonly Ring _tx, _rx;
    private readonly RingHeader* _txShared, _rxShared;
    private readonly Slot* _txSharedSlots, _rxSharedSlots;
    private readonly uint _rxBufferBase, _size;
    private readonly uint[] _origin;     // private RX slot -> shared slot it came from
    private readonly uint[] _txLoan;     // TX slot -> the loan buffer it carries (0: the slot's own buffer)
    private readonly uint _txLoanBase, _rxLoanBase, _loans;
    private uint _txCons;                // the peer's consumer index when last looked at: slots before it are back
    private bool _txReturnAll;           // a session reset: every loan buffer at the port is back

    // Owner-thread state.
    private uint _txProd, _rxHwCur, _rxScan, _rxPrivTail;

    // Set by the control thread.
    private volatile string? _failure;
    private volatile bool _connected;

    // The checksum capability: this end's declaration (fixed) and whether the current peer made
    // it too (per session; the server learns it from the client's OK line).
    private readonly bool _csumLocal;
    private volatile bool _csumBoth;

    public override Ring Tx => _tx;
    public override Ring Rx => _rx;
    public override string? Failure => _failure;
    public bool IsServer => _server;
    /// <summary>True once a peer has completed the handshake and is still there.</summary>
    public bool Connected => _connected;
    public int PeerPid { get; private set; }
    public string RegionPath => _region.Path;

    /// <summary>
    /// True when both ends declared <see cref="PortOptions.ChecksumOffload"/> for the current
    /// session: frames sent may carry <see cref="SlotFlags.ChecksumPartial"/>.
    /// </summary>
    public bool ChecksumOffload => _csumBoth;
    /// <summary>This end's own declaration: frames marked <see cref="SlotFlags.ChecksumPartial"/> are passed up marked.</summary>
    public bool ChecksumOffloadDeclared => _csumLocal;

    private static string SocketName(string name) => "\0netloom-shm-" + name;
    private static string RegionFile(string name) => $"/dev/shm/netloom-{name}";

    private ShmPort(string spec, ShmRegion region, bool server, Socket? listener, Socket? peer, int peerPid = 0, bool csumLocal = false, bool csumBoth = false) : base(spec)
    {
        PeerPid = peerPid; // before the control thread starts: it names the peer when it goes
        _csumLocal = csumLocal;
        _csumBoth = csumBoth;
        _region = region;
        _server = server;
        _listener = listener;
        _peer = peer;
        _size = (uint)region.RingSize;
        int txDir = server ? 0 : 1, rxDir = 1 - txDir;
        _txShared = region.Ring(txDir);
        _rxShared = region.Ring(rxDir);
        _txSharedSlots = region.Slots(txDir);
        _rxSharedSlots = region.Slots(rxDir);
        _rxBufferBase = region.BufferBase(rxDir);
        _origin = new uint[_size];
        _txLoan = new uint[_size];
        _loans = (uint)region.LoanBuffers;
        _txLoanBase = region.LoanBase(txDir);
        _rxLoanBase = region.LoanBase(rxDir);
        _txMemory = new RingMemory(region.RingSize);
        _rxMemory = new RingMemory(region.RingSize);
        _tx = new Ring(_txMemory.Header, _txMemory.Slots, _size, region.Pool, RingDirection.Tx, region.BufferBase(txDir));
        _rx = new Ring(_rxMemory.Header, _rxMemory.Slots, _size, region.Pool, RingDirection.Rx);
        ResetPrivate();
        _connected = !server; // a client is connected once its handshake is done; a server waits for one
        _control = new Thread(server ? ServeControl : WatchServer) { IsBackground = true, Name = $"{spec} control" };
        _control.Start();
    }

    /// <summary>Opens <c>shm:NAME</c>: connects to a server if one is there, otherwise becomes it.</summary>
    public static ShmPort Open(PortSpec spec, PortOptions? options = null)
    {
        if (spec.Kind != PortKind.Shm) throw new ArgumentException($"{spec} is not a shm spec", nameof(spec));
        var o = options ?? new PortOptions();
        o.Validate();
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var client = TryConnect(spec, o.ChecksumOffload);
            if (client is not null) return client;
            var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                listener.Bind(new UnixDomainSocketEndPoint(SocketName(spec.Name)));
                listener.Listen(4);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                listener.Dispose(); // another process became the server between our two tries
                Thread.Sleep(50);
                continue;
            }
            // We hold the name, so any region file left under it belongs to a dead process: reclaim it.
            var region = ShmRegion.Create(RegionFile(spec.Name), o.RingSize, o.BufferSize, o.LoanBuffers);
            return new ShmPort(spec.ToString(), region, server: true, listener, peer: null, csumLocal: o.ChecksumOffload);
        }
        throw new IOException($"{spec}: could not become server or client; another process keeps taking the name");
    }

    private static ShmPort? TryConnect(PortSpec spec, bool checksumOffload)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            s.Connect(new UnixDomainSocketEndPoint(SocketName(spec.Name)));
        }
        catch (SocketException)
        {
            s.Dispose();
            return null; // nobody listens: we will be the server
        }
        try
        {
            s.ReceiveTimeout = 5000;
            string hello = ReadLine(s) ?? throw new IOException($"{spec}: the server closed the connection without a greeting");
            if (hello.StartsWith("BUSY", StringComparison.Ordinal))
                throw new IOException($"{spec} is in use: {hello[5..]}; a shm port joins exactly two processes");
            var f = ParseHello(spec, hello);
            var region = ShmRegion.Open(f.Path, f.Ring, f.Buffer, f.Loan);
            // The capability is announced back only to a server that announced it (an older
            // server reads nothing after the pid), and used only when both ends declared it.
            bool both = checksumOffload && f.Csum;
            Send(s, both ? $"OK pid={Environment.ProcessId} csum=1\n" : $"OK pid={Environment.ProcessId}\n");
            s.ReceiveTimeout = 0;
            return new ShmPort(spec.ToString(), region, server: false, listener: null, s, f.Pid, checksumOffload, both);
        }
        catch (SocketException e)
        {
            s.Dispose();
            throw new IOException($"{spec}: the server did not answer ({e.SocketErrorCode}); is it stuck?", e);
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    private static (int Ring, int Buffer, int Loan, int Pid, string Path, bool Csum) ParseHello(PortSpec spec, string hello)
    {
        // "NETLOOM-SHM 1 ring=1024 buf=2048 pid=123 path=/dev/shm/netloom-x": every field checked.
        if (!hello.StartsWith(Protocol + " ", StringComparison.Ordinal)) throw new InvalidDataException($"{spec}: unexpected greeting '{Truncate(hello)}'");
        var fields = hello[(Protocol.Length + 1)..].Split(' ').Select(p => p.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
        int Int(string key, int min, int max) =>
            fields.TryGetValue(key, out var v) && int.TryParse(v, out int n) && n >= min && n <= max ? n
            : throw new InvalidDataException($"{spec}: greeting field {key} missing or out of range ({min}..{max})");
        var o = new PortOptions { RingSize = Int("ring", 4, 1 << 16), BufferSize = Int("buf", 64, PacketPool.MaxBufferSize) };
        o.Validate();
        string path = fields.GetValueOrDefault("path") ?? "";
        if (path != RegionFile(spec.Name)) throw new InvalidDataException($"{spec}: greeting names region '{Truncate(path)}', expected {RegionFile(spec.Name)}");
        int loan = fields.ContainsKey("loan") ? Int("loan", 0, 1 << 16) : 0; // absent: a server without loan buffers
        bool csum = fields.ContainsKey("csum") && Int("csum", 0, 1) == 1; // absent: a server that computes every checksum
        return (o.RingSize, o.BufferSize, loan, Int("pid", 1, int.MaxValue), path, csum);
    }

    private static string Truncate(string s) => s.Length > 80 ? s[..80] + "..." : s;

    /// <summary>Reads one line of at most 256 bytes; null at end of stream.</summary>
    private static string? ReadLine(Socket s)
    {
        var buf = new byte[256];
        int n = 0;
        while (n < buf.Length)
        {
            int got = s.Receive(buf, n, 1, SocketFlags.None);
            if (got == 0) return n == 0 ? null : Encoding.ASCII.GetString(buf, 0, n);
            if (buf[n] == (byte)'\n') return Encoding.ASCII.GetString(buf, 0, n);
            n++;
        }
        throw new InvalidDataException("control line longer than 256 bytes");
    }

    private static void Send(Socket s, string line) => s.Send(Encoding.ASCII.GetBytes(line));
}
