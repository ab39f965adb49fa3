using Netloom.Interop;
using static Netloom.Interop.IoUring;

namespace Netloom.Offload;

/// <summary>A connection's life in the loop: accepted, fed, answered, closed.</summary>
internal sealed unsafe partial class UringLoop
{
    private void Accepted(int fd)
    {
        _counters.Accepted++;
        if (!_table.TryOpen(fd, out var slot)) { CloseDescriptor(fd); return; } // at the connection limit: refuse
        slot.Connection.KernelFd = _fixed ? -1 : fd;
        _handler.OnConnected(slot.Connection);
        ArmRecv(slot);
    }

    private void Received(ConnectionSlot slot, in Cqe cqe, bool more)
    {
        if (!more) slot.RecvArmed = false;
        if (cqe.Res <= 0)
        {
            // End of stream or an error. ENOBUFS re-arms: the receive buffer ring ran dry for a moment.
            if (cqe.Res == -Errno.ENOBUFS && !slot.Closing) { _buffers.RanDry(); ArmRecv(slot); return; }
            if (cqe.Res == 0 && !slot.Closing && !more && _handler.OnEndOfInput(slot.Connection))
            {
                AfterHandler(slot); // half-closed: output goes on until the handler closes
                return;
            }
            Close(slot);
            return;
        }
        ushort id = (ushort)(cqe.Flags >> CqeBufferShift);
        _buffers.Took(id);
        if (!slot.Closing)
        {
            _counters.Requests++;
            if (slot.Input.Feed(_handler, slot.Connection, _buffers.Data(id, cqe.Res))) AfterHandler(slot);
            else Close(slot);
        }
        _buffers.Recycle(id);
        if (!slot.RecvArmed && !slot.Closing) ArmRecv(slot);
    }

    /// <summary>After the handler ran: send what it produced, or close when it asked and all went.</summary>
    private void AfterHandler(ConnectionSlot slot)
    {
        var c = slot.Connection;
        if (c.Output.Overflowed) { Close(slot); return; }
        _send.Send(slot);
        if (c.CloseRequested && !slot.OutputPending) Close(slot);
    }

    private void SendCompleted(ConnectionSlot slot, in Cqe cqe)
    {
        var progress = _send.Completed(slot, cqe);
        if (progress == SendProgress.Wait) return;
        if (progress == SendProgress.Fault || slot.Closing) { Close(slot); return; }
        if (progress == SendProgress.Drained) _handler.OnSendCompleted(slot.Connection);
        AfterHandler(slot);
    }

    /// <summary>
    /// Closes a connection in two steps. Shutting the socket down ends the multishot recv; the
    /// descriptor closes once no operation is in flight. IORING_OP_SHUTDOWN always runs in io-wq,
    /// later than an inline close: a registered slot is closed only after the shutdown's own
    /// completion, or a new connection given the same slot would be shut down instead.
    /// </summary>
    private void Close(ConnectionSlot slot)
    {
        if (!slot.Closing)
        {
            slot.Closing = true;
            if (_fixed)
            {
                var s = _ring.NextSqe();
                UringRing.PrepShutdown(s, slot.Fd, SocketCalls.SHUT_RDWR);
                UringRing.FixedFile(s);
                s->UserData = UringTag.Make(UringTag.Shutdown, slot.Index, slot.Generation);
                slot.ShutdownPending = true;
            }
            else SocketCalls.Shutdown(slot.Fd, SocketCalls.SHUT_RDWR);
        }
        if (slot.OperationsPending) return; // wait for the last completions
        (_handler as IDescriptorUser)?.ReleaseDescriptor(slot.Connection);
        CloseDescriptor(slot.Fd);
        slot.Fd = -1;
        _handler.OnClosed(slot.Connection);
        _table.Release(slot);
    }

    /// <summary>Closes a descriptor, or empties a registered slot with IORING_OP_CLOSE.</summary>
    private void CloseDescriptor(int fd)
    {
        if (!_fixed) { Libc.Close(fd); return; }
        var s = _ring.NextSqe();
        UringRing.PrepCloseDirect(s, (uint)fd);
        s->UserData = UringTag.Make(UringTag.Close, 0, 0);
    }
}
