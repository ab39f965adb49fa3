namespace Netloom.Stack;

/// <summary>
/// What the stack sends and receives Ethernet frames through (smoltcp's Device). The stack never
/// does I/O itself: an adapter over a port, a pipe in a test, or a fault-injecting decorator
/// implements this. Frames handed out stay valid until the matching release or commit.
/// </summary>
internal interface IFrameDevice
{
    /// <summary>Largest Ethernet frame the device carries, header included (MTU + 14).</summary>
    int MaxFrameSize { get; }

    /// <summary>The next received frame, or false when none is waiting.</summary>
    bool TryReceive(out ReadOnlySpan<byte> frame);

    /// <summary>Done with every frame received since the last call: the device may reuse their buffers.</summary>
    void ReleaseReceived();

    /// <summary>
    /// A buffer for one frame of at most <paramref name="length"/> bytes, or empty when the device
    /// is full. Asking again before <see cref="CommitTransmit"/> returns the same buffer, contents
    /// kept (decorators rely on this to look at a frame before passing it on).
    /// </summary>
    Span<byte> TryAllocateTransmit(int length);

    /// <summary>Queues the frame written into the last allocated buffer, cut to <paramref name="length"/>.</summary>
    void CommitTransmit(int length);

    /// <summary>Hands queued frames to the medium (one sync for a batch).</summary>
    void Flush();
}
