using Netloom.Stack;
using Netloom.Time;

namespace Netloom.Tests.Stack;

/// <summary>
/// Two devices joined back to back in memory, for deterministic tests with a virtual clock.
/// A filter sees every frame in flight and may drop or rewrite it. The wire has no delay: every
/// frame is an event at the one instant the wire knows (0) in the library's discrete-event queue
/// (<see cref="EventQueue{T}"/>), which keeps events at one instant in the order they came.
/// </summary>
internal sealed class VirtualWire
{
    /// <summary>When every frame arrives: the wire has no delay and no clock of its own.</summary>
    private const long Arrival = 0;

    public sealed class End : IFrameDevice
    {
        internal readonly EventQueue<byte[]> Inbox = new();
        internal End? Peer;
        public Func<byte[], byte[]?>? Filter { get; set; }
        private readonly byte[] _tx = new byte[9100];
        private byte[]? _current;
        public int Sent, Received;

        public int MaxFrameSize { get; init; } = 1514;
        public int Capacity { get; init; } = 4096;

        public bool TryReceive(out ReadOnlySpan<byte> frame)
        {
            frame = default;
            if (!Inbox.TryPop(Arrival, out var next)) return false;
            _current = next;
            frame = _current;
            Received++;
            return true;
        }

        public void ReleaseReceived() => _current = null;

        public Span<byte> TryAllocateTransmit(int length) =>
            length > MaxFrameSize ? throw new InvalidOperationException($"the stack asked for a {length}-byte frame on a {MaxFrameSize}-byte device")
            : Peer!.Inbox.Count >= Capacity ? Span<byte>.Empty : _tx.AsSpan(0, length);

        public void CommitTransmit(int length)
        {
            var frame = _tx[..length];
            Sent++;
            if (Filter?.Invoke(frame) is { } f) Peer!.Inbox.Push(Arrival, f);
            else if (Filter is null) Peer!.Inbox.Push(Arrival, frame);
        }

        public void Flush() { }

        /// <summary>Puts a frame straight into this end's inbox, as if it came off the wire.</summary>
        public void Inject(byte[] frame) => Inbox.Push(Arrival, frame);
    }

    public readonly End A = new(), B = new();

    public VirtualWire()
    {
        A.Peer = B;
        B.Peer = A;
    }
}
