namespace Netloom.Run.Native;

/// <summary>What both engines do with a msghdr's iovec array.</summary>
internal static unsafe class IoVecs
{
    /// <summary>The bytes the iovecs describe.</summary>
    public static long TotalLength(MsgHdr* msg)
    {
        long total = 0;
        for (nuint i = 0; i < msg->IovLength; i++) total += (long)msg->Iov[i].Length;
        return total;
    }

    /// <summary>Moves the iovec array past <paramref name="n"/> bytes (MSG_WAITALL's partial reads, on a private copy).</summary>
    public static void Consume(MsgHdr* msg, long n)
    {
        while (msg->IovLength > 0 && n > 0)
        {
            var v = msg->Iov;
            if ((long)v->Length > n) { v->Base = (byte*)v->Base + n; v->Length -= (nuint)n; return; }
            n -= (long)v->Length;
            msg->Iov++;
            msg->IovLength--;
        }
    }

    // One read buffer per thread for sendfile (a reply per request must not cost a 64 KiB allocation).
    [ThreadStatic] private static byte[]? t_fileBuffer;

    /// <summary>
    /// sendfile through an engine's send path: pread the file in 64 KiB steps and send each, so
    /// the bytes keep their order with what the socket has queued; the file offset (or the
    /// descriptor's position) moves by what was sent.
    /// </summary>
    public static long SendFileByCopy(ISocketEngine engine, int outFd, int inFd, long* offset, nuint count, int flags)
    {
        const int Step = 64 << 10;
        byte[] buffer = t_fileBuffer ??= GC.AllocateUninitializedArray<byte>(Step, pinned: true);
        fixed (byte* b = buffer)
        {
            long position = offset is not null ? *offset : Sys.LSeek(inFd, 0, Sys.SEEK_CUR);
            if (position < 0) return -Libc.Errno;
            long done = 0;
            while ((ulong)done < count)
            {
                int want = (int)Math.Min((ulong)Step, count - (ulong)done);
                nint got = Sys.PRead(inFd, b, (nuint)want, position + done);
                if (got < 0) { if (done > 0) break; return -Libc.Errno; }
                if (got == 0) break;
                IoVec v = new() { Base = b, Length = (nuint)got };
                MsgHdr m = new() { Iov = &v, IovLength = 1 };
                long sent = engine.SendMsg(outFd, &m, flags);
                if (sent < 0) { if (done > 0) break; return sent; }
                done += sent;
                if (sent < got) break;
            }
            if (offset is not null) *offset = position + done;
            else Sys.LSeek(inFd, position + done, Sys.SEEK_SET);
            return done;
        }
    }
}
