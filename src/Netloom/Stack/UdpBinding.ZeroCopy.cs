using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>
/// Zero-copy UDP sends (issue 21). UDP keeps nothing for retransmission, so the only memory a
/// send can leave referenced is a frame the port still holds: the application fills one of the
/// device's loan buffers (<see cref="ILoanDevice"/>), the stack writes Ethernet, IPv4 and UDP
/// headers into its headroom and the buffer is the frame. Its completion comes when the port
/// hands the buffer back (the peer consumed the frame), in send order, coalesced as TCP's are
/// (<see cref="ZeroCopyLog"/>). A send shorter than <see cref="ZeroCopyThreshold"/>, one whose
/// next hop's address is not yet known, one above the MTU (fragmented), or a device without loan
/// buffers is copied from the buffer into an ordinary frame instead, and its completion says copied.
/// </summary>
internal sealed partial class UdpBinding : ILoanHolder
{
    /// <summary>Ethernet, IPv4 (no options) and UDP headers in front of a loan buffer's payload.</summary>
    public const int LoanHeadroom = 14 + 20 + 8;

    private Queue<(uint Id, uint Buffer)>? _zeroCopyPending;
    private ZeroCopyLog? _zeroCopyLog;
    private uint _zeroCopyNext;

    /// <summary>
    /// Payload bytes below which a loan send is copied into an ordinary frame (the buffer is then
    /// the application's again at once). A chosen figure, not a measured one: below 1 KiB the
    /// frame copy is cheaper than holding the buffer until the port hands it back.
    /// </summary>
    public int ZeroCopyThreshold { get; set; } = 1024;

    /// <summary>Payload bytes one loan buffer carries in one unfragmented datagram (0: the device has no loan buffers).</summary>
    public int LoanCapacity => _stack.LoanDevice is { LoanBufferSize: > 0 } d ? Math.Min(d.LoanBufferSize, _stack.Options.Mtu + 14) - LoanHeadroom : 0;

    /// <summary>A loan buffer for the application to fill (<see cref="LoanPayload"/>); false when there is none.</summary>
    public bool TryRentLoan(out uint buffer)
    {
        buffer = 0;
        return LoanCapacity > 0 && _stack.LoanDevice!.TryRentLoan(out buffer);
    }

    /// <summary>The payload part of a loan buffer.</summary>
    public Span<byte> LoanPayload(uint buffer) => _stack.LoanDevice!.LoanBuffer(buffer).Slice(LoanHeadroom, LoanCapacity);

    /// <summary>Gives a rented buffer back for good (not while a send of it is outstanding).</summary>
    public void ReturnLoan(uint buffer) => _stack.LoanDevice!.ReturnLoan(buffer);

    /// <summary>
    /// Sends the first <paramref name="length"/> payload bytes of loan buffer
    /// <paramref name="buffer"/> as one datagram. Returns the send's number (from 0, as the
    /// kernel's); <paramref name="copied"/> says whether it was copied. Until that number's
    /// completion the buffer must not be written. False (nothing sent, no number taken) when the
    /// stack dropped the datagram (no route) or the device was full.
    /// </summary>
    public bool SendLoanTo(uint buffer, int length, Ipv4Address to, ushort port, out uint id, out bool copied)
    {
        if ((uint)length > (uint)LoanCapacity) throw new ArgumentOutOfRangeException(nameof(length), length, $"a loan buffer carries 0..{LoanCapacity} payload bytes here");
        if (!IsOpen) throw new ObjectDisposedException(nameof(UdpBinding), "the socket is closed");
        id = 0;
        copied = length < ZeroCopyThreshold || !_stack.TrySendUdpLoan(this, buffer, length, to, port);
        if (copied && !_stack.SendUdp(LocalPort, to, port, _stack.LoanDevice!.LoanBuffer(buffer).Slice(LoanHeadroom, length))) return false;
        id = _zeroCopyNext++;
        (_zeroCopyPending ??= new()).Enqueue((id, copied ? 0 : buffer));
        CompleteSent();
        return true;
    }

    /// <summary>Takes the next completion (a coalesced range of send numbers), if one is waiting.</summary>
    public bool TryTakeZeroCopyCompletion(out ZeroCopyCompletion completion)
    {
        completion = default;
        return _zeroCopyLog is { } log && log.TryTake(out completion);
    }

    /// <summary>Loan sends whose completion has not been generated yet.</summary>
    public int ZeroCopyOutstanding => _zeroCopyPending?.Count ?? 0;

    void ILoanHolder.LoanReturned(uint buffer) => CompleteSent();

    /// <summary>Completes sends from the oldest while their buffers are no longer at the port.</summary>
    private void CompleteSent()
    {
        var q = _zeroCopyPending!;
        while (q.Count > 0 && (q.Peek().Buffer == 0 || !_stack.LoanDevice!.IsAtPort(q.Peek().Buffer)))
        {
            var (id, b) = q.Dequeue();
            (_zeroCopyLog ??= new()).Complete(id, copied: b == 0);
        }
    }
}
