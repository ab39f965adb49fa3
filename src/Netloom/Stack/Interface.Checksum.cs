namespace Netloom.Stack;

/// <summary>
/// The checksum capability (<see cref="IChecksumOffloadDevice"/>): on a device whose two ends
/// declared it, TCP and UDP segments that go out in one unfragmented frame carry only the
/// pseudo-header sum and are marked partial, and frames that come in marked partial are not
/// verified (virtio's DATA_VALID). IPv4 header checksums, ICMP, fragments and packets that wait
/// for ARP or neighbour discovery keep full checksums. Everything else is as before.
/// </summary>
internal sealed partial class Interface
{
    private IChecksumOffloadDevice? _csum;
    private bool _rxPartial;  // the frame being processed came marked partial
    private bool _markNext;   // the next Commit sends a frame marked partial

    /// <summary>
    /// Whether the stack uses the device's checksum capability on send (default on). Off, every
    /// frame it sends carries a full checksum; what it receives marked partial is still
    /// accepted, since the peer declared it may send such frames.
    /// </summary>
    internal bool UseChecksumOffload { get; set; } = true;

    /// <summary>TCP and UDP segments sent with the checksum left out (marked partial).</summary>
    internal long ChecksumsLeftOut { get; private set; }
    /// <summary>TCP and UDP segments received marked partial and so not verified.</summary>
    internal long ChecksumsNotVerified { get; private set; }

    /// <summary>True when segments sent now may leave their checksum out.</summary>
    private bool PartialOut => UseChecksumOffload && _csum is { ChecksumOffload: true };

    /// <summary>True (and counted) when the segment being received need not be verified.</summary>
    private bool TrustedIn()
    {
        if (!_rxPartial) return false;
        ChecksumsNotVerified++;
        return true;
    }

    private void MarkPartial()
    {
        _csum!.MarkNextPartial();
        ChecksumsLeftOut++;
    }

    /// <summary>A loan transmit did not go (the device clears a mark itself): uncount it if it was marked.</summary>
    private void Unmark(bool partial)
    {
        if (partial) ChecksumsLeftOut--;
    }
}
