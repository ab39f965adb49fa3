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

/// <summary>
/// The capability of a device whose port takes a buffer by index (netmap's and ef_vi's model):
/// the application fills a loan buffer, the stack writes the headers in front of the payload (in
/// the buffer's headroom) and the buffer itself becomes the frame, with no copy. The port hands
/// a transmitted buffer back once the peer has consumed it (<see cref="LoanReturned"/>, its
/// completion ring); until then nobody may write it. A stack asks a device for this once
/// (<c>device as ILoanDevice</c>); decorators do not pass it on, so behind one the copy path runs.
/// </summary>
internal interface ILoanDevice
{
    /// <summary>Bytes in one loan buffer (headers and payload); 0 when the device has none.</summary>
    int LoanBufferSize { get; }

    /// <summary>A free loan buffer for the application, or false when all are taken.</summary>
    bool TryRentLoan(out uint buffer);

    /// <summary>The application gives back a buffer it rented and will not send (again).</summary>
    void ReturnLoan(uint buffer);

    /// <summary>The whole buffer (a frame starts at its first byte).</summary>
    Span<byte> LoanBuffer(uint buffer);

    /// <summary>True while the port may still read the buffer (sent and not yet handed back).</summary>
    bool IsAtPort(uint buffer);

    /// <summary>Queues the buffer's first <paramref name="length"/> bytes as a frame; false when the device is full.</summary>
    bool TryTransmitLoan(uint buffer, int length);

    /// <summary>Called (on the stack's thread, from a sync) for each buffer the port hands back.</summary>
    Action<uint>? LoanReturned { get; set; }
}

/// <summary>What holds a loan buffer the port has: told when the port hands it back.</summary>
internal interface ILoanHolder
{
    void LoanReturned(uint buffer);
}

/// <summary>
/// The checksum capability of a device whose port joins two Netloom ends that both declared
/// they accept frames whose TCP and UDP checksums were not computed (virtio-net's
/// VIRTIO_NET_F_CSUM and GUEST_CSUM, veth's offloads): a frame sent marked partial carries only
/// the pseudo-header sum, and a frame received marked partial is trusted as virtio's
/// DATA_VALID says. A stack asks a device for this once (<c>device as IChecksumOffloadDevice</c>).
/// A decorator that copies or changes frames (<c>ImpairedDevice</c>) does not offer it on send,
/// and fills in the checksums of the marked frames it receives before passing them on.
/// </summary>
internal interface IChecksumOffloadDevice
{
    /// <summary>True while both ends declared the capability: frames may be sent marked partial.</summary>
    bool ChecksumOffload { get; }

    /// <summary>The frame the last <see cref="IFrameDevice.TryReceive"/> gave came marked partial (and this end accepts that).</summary>
    bool ReceivedPartial { get; }

    /// <summary>Marks the next frame committed (<see cref="IFrameDevice.CommitTransmit"/> or a loan transmit) partial; cleared by it.</summary>
    void MarkNextPartial();
}
