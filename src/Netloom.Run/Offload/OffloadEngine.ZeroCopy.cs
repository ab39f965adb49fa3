using System.Runtime.InteropServices;
using Netloom.Offload;
using Netloom.Run.Native;
using static Netloom.Interop.IoUring;

namespace Netloom.Run;

/// <summary>
/// MSG_ZEROCOPY on an offloaded socket, with io_uring's zero-copy sends (msg_zerocopy.rst, the
/// io_uring_prep_send_zc and io_uring_prep_sendmsg_zc pages). A send of at least
/// <see cref="ZeroCopyMinimum"/> bytes on a socket with SO_ZEROCOPY, with nothing of the
/// connection's queued or in flight before it, is not copied into the engine's queue: the call
/// returns once it is submitted as IORING_OP_SEND_ZC (one iovec) or IORING_OP_SENDMSG_ZC (more),
/// from the program's own memory. The kernel completes it twice: first with the byte count
/// (IORING_CQE_F_MORE: a notification follows; a short send is sent on, from where it stopped),
/// then with IORING_CQE_F_NOTIF once it no longer reads the memory (IORING_NOTIF_USAGE_ZC_COPIED
/// when it had to copy: loopback and veth deliver locally, so there it always does). Only then
/// does the send's number reach the error queue (SO_EE_CODE_ZEROCOPY_COPIED for a copied one),
/// in send order, coalesced, with POLLERR. Anything else (a short send, a socket with bytes
/// queued ahead and no way to wait) is copied and completes at once as copied, as before.
/// </summary>
internal sealed unsafe partial class OffloadEngine
{
    /// <summary>Below this a zero-copy send is copied (msg_zerocopy.rst: about 10 KB is where it starts to pay).</summary>
    internal const int ZeroCopyMinimum = 10 << 10;
    private const ushort SendZcReportUsage = 1 << 3;    // IORING_SEND_ZC_REPORT_USAGE, in sqe->ioprio
    private const int NotifUsageZcCopied = 1 << 31;     // IORING_NOTIF_USAGE_ZC_COPIED, in the notification's res
    private const byte OpSendMsgZc = 48;                // IORING_OP_SENDMSG_ZC

    private const byte SendZcTag = 16; // a UringTag kind of this engine's own (the library's end below 16)

    private int _sendZc = -1;          // -1: not probed yet; 0: the kernel lacks it or NETLOOM_SEND_ZC=0; 1: used
    private long _zcSends, _zcSendMsgs, _zcNotifications, _zcCopied;

    /// <summary>The zero-copy state of one connection (at most one zero-copy send's bytes in flight).</summary>
    internal sealed class ZeroCopyState
    {
        // Numbers not yet reported, in order: (number, notifications to come, copied, bytes all sent).
        public readonly Queue<Pending> Order = new();
        public Pending? Current;     // the send whose bytes are in flight
        public MsgHdr* Msg;          // a private msghdr and iovec copy while it is (the program's may be gone)
        public IoVec* Iov;
        public long Left;            // bytes still to send
    }

    internal sealed class Pending(uint number)
    {
        public readonly uint Number = number;
        public int Notifications;
        public bool Copied, Sent;
    }

    private bool SendZcUsable
    {
        get
        {
            if (_sendZc < 0)
                _sendZc = Environment.GetEnvironmentVariable("NETLOOM_SEND_ZC") != "0" && _ring.Supports(OpSendZc) && _ring.Supports(OpSendMsgZc) ? 1 : 0;
            return _sendZc == 1;
        }
    }

    /// <summary>
    /// Called under the lock for a MSG_ZEROCOPY send on a socket with SO_ZEROCOPY, before anything
    /// is copied. Returns the bytes submitted zero-copy, 0 to copy the send instead, or -1 to wait
    /// (a blocking socket with bytes of its own ahead) and ask again.
    /// </summary>
    private long TrySendZeroCopy(OffloadConnection c, MsgHdr* msg, bool blocking)
    {
        long total = IoVecs.TotalLength(msg);
        if (total < ZeroCopyMinimum || total > int.MaxValue || msg->IovLength > 1024 || !SendZcUsable) return 0;
        if (c.SendError != 0 || c.ShutWrite) return 0;
        if (c.SendInFlight || c.Output.Queued > 0) return blocking ? -1 : 0;
        var z = c.Zc ??= new ZeroCopyState();
        int n = (int)msg->IovLength;
        z.Msg = (MsgHdr*)NativeMemory.AllocZeroed((nuint)sizeof(MsgHdr));
        z.Iov = (IoVec*)NativeMemory.Alloc((nuint)n, (nuint)sizeof(IoVec));
        for (int i = 0; i < n; i++) z.Iov[i] = msg->Iov[i];
        z.Msg->Iov = z.Iov;
        z.Msg->IovLength = (nuint)n;
        z.Left = total;
        z.Current = new Pending(c.ZeroCopyNext++);
        z.Order.Enqueue(z.Current);
        SubmitZeroCopy(c, z);
        c.SendInFlight = true;
        _sendsInFlight++;
        KickFlush();
        return total;
    }

    private void KickFlush()
    {
        if (_ring.Unsubmitted >= _ring.SqEntries / 2) Flush();
    }

    private void SubmitZeroCopy(OffloadConnection c, ZeroCopyState z)
    {
        var sqe = _ring.NextSqe();
        if (z.Msg->IovLength == 1)
        {
            UringRing.PrepSendZc(sqe, c.IoFd, z.Msg->Iov->Base, (uint)z.Msg->Iov->Length, Abi.MSG_NOSIGNAL);
            _zcSends++;
        }
        else
        {
            _zcSendMsgs++;
            sqe->Opcode = OpSendMsgZc;
            sqe->Fd = c.IoFd;
            sqe->Addr = (ulong)z.Msg;
            sqe->Len = 1;
            sqe->OpFlags = Abi.MSG_NOSIGNAL;
        }
        sqe->IoPrio = SendZcReportUsage;
        sqe->UserData = UringTag.Make(SendZcTag, c.Slot, c.Generation);
    }

    /// <summary>A MSG_ZEROCOPY send that was copied: complete at once, behind the zero-copy ones still out.</summary>
    private static void CompleteCopied(OffloadConnection c)
    {
        uint number = c.ZeroCopyNext++;
        if (c.Zc is { Order.Count: > 0 } z) z.Order.Enqueue(new Pending(number) { Copied = true, Sent = true });
        else c.Completions.Complete(number, copied: true);
        c.Moved();
    }

    /// <summary>The two completions of a zero-copy send: the bytes, then the notification.</summary>
    private int OnSendZeroCopy(in Cqe cqe)
    {
        if (Resolve(cqe.UserData) is not OffloadConnection c || c.Zc is not { } z) return 0;
        if ((cqe.Flags & CqeFNotif) != 0)
        {
            _zcNotifications++;
            foreach (var p in z.Order)
            {
                if (p.Notifications == 0) continue;
                p.Notifications--;
                if ((cqe.Res & NotifUsageZcCopied) != 0) { p.Copied = true; _zcCopied++; }
                break;
            }
            ReportDone(c, z);
            return 1;
        }
        var cur = z.Current!;
        if ((cqe.Flags & CqeFMore) != 0) cur.Notifications++;
        if (cqe.Res > 0 && cqe.Res < z.Left)
        {
            // A short send: the rest goes from where it stopped, the memory still the program's to keep.
            z.Left -= cqe.Res;
            IoVecs.Consume(z.Msg, cqe.Res);
            SubmitZeroCopy(c, z);
            return 1;
        }
        if (cqe.Res < 0) c.SendError = -cqe.Res;
        cur.Sent = true;
        z.Current = null;
        NativeMemory.Free(z.Iov);
        NativeMemory.Free(z.Msg);
        z.Iov = null;
        z.Msg = null;
        c.SendInFlight = false;
        _sendsInFlight--;
        _sends++;
        ReportDone(c, z);
        c.Moved();
        KickSend(c);
        return 1;
    }

    /// <summary>Moves finished sends, from the oldest, to the error queue.</summary>
    private static void ReportDone(OffloadConnection c, ZeroCopyState z)
    {
        bool any = false;
        while (z.Order.TryPeek(out var p) && p.Sent && p.Notifications == 0)
        {
            z.Order.Dequeue();
            c.Completions.Complete(p.Number, p.Copied);
            any = true;
        }
        if (any) c.Moved();
    }

    private void ReportZeroCopy()
    {
        if (_zcSends + _zcSendMsgs > 0)
            Engine.Warn($"offload: {_zcSends + _zcSendMsgs} zero-copy sends ({_zcSends} SEND_ZC, {_zcSendMsgs} SENDMSG_ZC), {_zcNotifications} notifications, {_zcCopied} reported copied");
    }
}
