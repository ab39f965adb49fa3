using Netloom.Interop;
using static Netloom.Interop.IoUring;

namespace Netloom.Offload;

/// <summary>What a loop does after a send completion.</summary>
internal enum SendProgress
{
    /// <summary>More completions of this send are to come (a bundle going on, a zero-copy notification).</summary>
    Wait,
    /// <summary>The send failed or the bytes did not match the output: close the connection.</summary>
    Fault,
    /// <summary>Bytes left; output is still queued.</summary>
    Sent,
    /// <summary>Everything queued has gone: the handler may produce more (OnSendCompleted).</summary>
    Drained,
}

/// <summary>
/// How a loop sends a connection's output. At most one send per connection is in flight
/// (<see cref="ConnectionSlot.Sending"/>); the path decides what that send carries and what its
/// completions mean. Both paths leave the handler an empty <see cref="Connection.Output"/> to
/// write on while the kernel sends from other memory.
/// </summary>
internal interface ISendPath
{
    /// <summary>The handler ran: send what it wrote, unless a send is already in flight.</summary>
    void Send(ConnectionSlot slot);

    /// <summary>A completion of this connection's send.</summary>
    SendProgress Completed(ConnectionSlot slot, in Cqe cqe);
}

/// <summary>Prepares the SQEs the send paths need: the ring, the connections' file table mode, the counters.</summary>
internal readonly unsafe struct SendTarget(UringRing ring, bool fixedFiles, LoopCounters counters)
{
    public LoopCounters Counters => counters;

    /// <summary>A cleared SQE tagged with the connection's send.</summary>
    public Sqe* Next(ConnectionSlot slot)
    {
        var s = ring.NextSqe();
        s->UserData = UringTag.Make(UringTag.Send, slot.Index, slot.Generation);
        return s;
    }

    /// <summary>After the prep: the fd is a registered file slot when the loop uses them.</summary>
    public void Aim(Sqe* s)
    {
        if (fixedFiles) UringRing.FixedFile(s);
    }
}

/// <summary>
/// Paired sends: a double buffer per connection. The handler's output swaps into
/// <see cref="ConnectionSlot.InFlight"/> and goes in one IORING_OP_SEND, or IORING_OP_SEND_ZC
/// from <paramref name="zeroCopyFrom"/> bytes (0: never). A zero-copy send completes twice (the
/// byte count with F_MORE, then F_NOTIF once the kernel no longer reads the buffer); nothing else
/// is sent and no buffer reused until then.
/// </summary>
internal sealed unsafe class PairedSends(SendTarget target, int zeroCopyFrom) : ISendPath
{
    public void Send(ConnectionSlot slot)
    {
        if (slot.Sending || slot.ZcPending) return;
        if (slot.InFlight.Length == 0)
        {
            if (slot.Connection.Output.Length == 0) return;
            slot.InFlight.Swap(slot.Connection.Output);
        }
        var s = target.Next(slot);
        if (zeroCopyFrom > 0 && slot.InFlight.Length >= zeroCopyFrom)
        {
            UringRing.PrepSendZc(s, slot.Fd, slot.InFlight.Pointer, (uint)slot.InFlight.Length, SocketCalls.MSG_NOSIGNAL);
            target.Counters.ZeroCopySends++;
        }
        else UringRing.PrepSend(s, slot.Fd, slot.InFlight.Pointer, (uint)slot.InFlight.Length, SocketCalls.MSG_NOSIGNAL);
        target.Aim(s);
        slot.Sending = true;
    }

    public SendProgress Completed(ConnectionSlot slot, in Cqe cqe)
    {
        if ((cqe.Flags & CqeFNotif) != 0) slot.ZcPending = false;
        else
        {
            slot.Sending = false;
            if ((cqe.Flags & CqeFMore) != 0) slot.ZcPending = true;
            if (cqe.Res < 0) return SendProgress.Fault;
            slot.InFlight.Consume(cqe.Res);
        }
        if (slot.ZcPending) return SendProgress.Wait;
        return slot.InFlight.Length == 0 ? SendProgress.Drained : SendProgress.Sent;
    }
}

/// <summary>
/// Send bundles (IORING_RECVSEND_BUNDLE, 6.10+): the handler's output becomes one more batch in the
/// connection's own buffer ring (group 2 + slot; group 1 is the receive buffers), and the handler
/// gets a spare buffer to write on. Unless a send is in flight, one bundle send takes every queued
/// batch in order, as writev would. Its completion names the first batch and counts the bytes;
/// the kernel sends the batches it took whole, waiting for socket room as it goes. A count that
/// ends inside a batch would leave bytes no later send could put back in order: a fault.
/// </summary>
internal sealed unsafe class BundleSends(SendTarget target, UringRing ring, ConnectionTable table) : ISendPath
{
    public void Send(ConnectionSlot slot)
    {
        var output = slot.Connection.Output;
        var queue = slot.Bundle ??= new BundleQueue(new BufferRing(ring, (ushort)(2 + slot.Index), BundleQueue.Depth, table.Memory));
        if (output.Length > 0 && queue.HasRoom)
        {
            var batch = table.RentBatch();
            batch.Swap(output); // the batch takes the bytes; the handler keeps writing on the spare's memory
            queue.Enqueue(batch);
        }
        if (slot.Sending || queue.Count == 0) return;
        var s = target.Next(slot);
        UringRing.PrepSendBundle(s, slot.Fd, queue.GroupId, SocketCalls.MSG_NOSIGNAL);
        target.Aim(s);
        slot.Sending = true;
        target.Counters.BundleSends++;
    }

    public SendProgress Completed(ConnectionSlot slot, in Cqe cqe)
    {
        var queue = slot.Bundle!;
        if ((cqe.Flags & CqeFMore) == 0 || cqe.Res < 0) slot.Sending = false;
        if (cqe.Res < 0) return SendProgress.Fault;
        int sent = cqe.Res;
        if (sent > 0 && (cqe.Flags >> CqeBufferShift) != (uint)queue.Head) return Fault();
        while (sent > 0)
        {
            int length = queue.OldestLength;
            if (sent < length) return Fault();
            sent -= length;
            queue.DropOldest(table);
            target.Counters.BundleBatches++;
        }
        if (slot.Sending) return SendProgress.Wait; // the bundle goes on: it completes again
        return queue.Count == 0 ? SendProgress.Drained : SendProgress.Sent;
    }

    private SendProgress Fault()
    {
        target.Counters.BundleFaults++;
        return SendProgress.Fault;
    }
}
