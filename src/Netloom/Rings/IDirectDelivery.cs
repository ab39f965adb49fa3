namespace Netloom.Rings;

/// <summary>
/// A capability some ports have: taking frames from another ring of the same pool straight to
/// their far end, in one pass over the slots, instead of through their own TX ring and a sync
/// (VALE's switch writes into its ports' rings the same way). A forwarder asks a port for it
/// once (<c>port as IDirectDelivery</c>) and falls back to the TX ring when it is missing or
/// when it moves fewer frames than asked.
/// </summary>
internal interface IDirectDelivery
{
    /// <summary>
    /// Moves up to <paramref name="count"/> frames from <paramref name="from"/>, starting at slot
    /// <paramref name="first"/>, to the far end, giving <paramref name="from"/> spare buffers in
    /// exchange (its slots are marked <see cref="SlotFlags.BufferChanged"/>). Moves nothing when
    /// <paramref name="from"/> is not over the port's pool, or frames wait in the port's TX ring
    /// (they would be overtaken); stops at the first slot that is not sendable. Returns how many
    /// moved and their <paramref name="bytes"/>.
    /// </summary>
    int Deliver(Ring from, uint first, int count, out long bytes);
}
