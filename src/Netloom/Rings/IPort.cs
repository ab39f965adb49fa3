using Netloom.Time;

namespace Netloom.Rings;

/// <summary>How a port waits for its rings: spinning on the ring (lowest latency, a core busy) or sleeping until woken.</summary>
public enum WaitMode : byte { Block, BusyPoll }

/// <summary>
/// A port: one TX ring and one RX ring over some backend (an in-process pipe, shared memory,
/// a TAP device, an AF_PACKET socket). The user fills TX slots and moves <see cref="Ring.Head"/>,
/// then calls <see cref="TxSync"/>; it calls <see cref="RxSync"/> to pick up packets, reads
/// [head, tail), and moves head on. One thread uses a port's rings at a time.
/// </summary>
public interface IPort : IDisposable
{
    /// <summary>The spec the port was opened with, such as "pipe:a{0".</summary>
    string Name { get; }
    Ring Tx { get; }
    Ring Rx { get; }
    WaitMode WaitMode { get; set; }

    /// <summary>Sends the slots the user handed over and frees the slots already sent.</summary>
    void TxSync();

    /// <summary>Hands back the RX slots the user has read and picks up new packets.</summary>
    void RxSync();

    /// <summary>Syncs and waits until the RX ring holds packets; false on timeout or when the peer is gone.</summary>
    bool WaitRx(Duration timeout);

    /// <summary>Syncs and waits until the TX ring has a free slot; false on timeout or when the peer is gone.</summary>
    bool WaitTx(Duration timeout);

    /// <summary>
    /// Syncs until every TX slot handed over has been sent (the peer may be slow to make room);
    /// false on timeout or when the peer is gone.
    /// </summary>
    bool Flush(Duration timeout);

    /// <summary>Null while the port works; otherwise why it stopped (for shm: the peer died).</summary>
    string? Failure { get; }
}

/// <summary>
/// A port that carries the checksum capability between its two ends (shm, pipe): see
/// <see cref="PortOptions.ChecksumOffload"/> and <see cref="SlotFlags.ChecksumPartial"/>.
/// </summary>
internal interface IChecksumPort
{
    /// <summary>Both ends declared it (now): frames sent may be marked partial.</summary>
    bool ChecksumOffload { get; }
    /// <summary>This end declared it: frames received marked partial are passed up marked.</summary>
    bool ChecksumOffloadDeclared { get; }
}

/// <summary>Sizes used when a port creates its rings and pool.</summary>
public sealed record PortOptions
{
    public int RingSize { get; init; } = 1024;
    public int BufferSize { get; init; } = PacketPool.DefaultBufferSize;

    /// <summary>
    /// For pipes: take buffers from this pool instead of creating one. Ports that share a pool
    /// let a switch forward between them by swapping buffer indexes (zero copy). A pipe needs
    /// 4 x <see cref="RingSize"/> free buffers in it, and gives them back when both ends close.
    /// </summary>
    public PacketPool? SharedPool { get; init; }

    /// <summary>
    /// For shm servers: buffers per direction, beyond the ring's, that the application fills and
    /// sends by index (<see cref="ShmPort.TransmitLoan"/>): the frame is the buffer, not a copy.
    /// </summary>
    public int LoanBuffers { get; init; }

    /// <summary>
    /// Declares that the user of this end (a Netloom stack) accepts frames whose TCP and UDP
    /// checksums were not computed (<see cref="SlotFlags.ChecksumPartial"/>), as a virtio-net
    /// device offering VIRTIO_NET_F_GUEST_CSUM does. Only shm ports (in their greeting) and pipes
    /// carry the declaration; only when both ends declare it may a stack skip computing the
    /// checksums of the frames it sends there and skip verifying the frames so marked. Off by
    /// default: a switch, the emulator, a capture tool or an old peer on the other end keeps full
    /// checksums both ways.
    /// </summary>
    public bool ChecksumOffload { get; init; }

    public void Validate()
    {
        if (RingSize < 4 || RingSize > 1 << 16 || (RingSize & (RingSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(RingSize), RingSize, "ring size must be a power of two from 4 to 65536");
        if (BufferSize < 64 || BufferSize > PacketPool.MaxBufferSize || (BufferSize & (BufferSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(BufferSize), BufferSize, $"buffer size must be a power of two from 64 to {PacketPool.MaxBufferSize}");
        if (LoanBuffers < 0 || LoanBuffers > 1 << 16)
            throw new ArgumentOutOfRangeException(nameof(LoanBuffers), LoanBuffers, "loan buffers must be from 0 to 65536");
    }
}
