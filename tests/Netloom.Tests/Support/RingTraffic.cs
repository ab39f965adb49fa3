using Netloom.Rings;

namespace Netloom.Tests.Support;

internal static class RingTraffic
{
    /// <summary>Sends <paramref name="packets"/> 64-byte frames from a to b in batches of 64, reading each batch at once.</summary>
    public static void Move(IPort a, IPort b, int packets)
    {
        var tx = a.Tx;
        var rx = b.Rx;
        for (int sent = 0; sent < packets;)
        {
            int n = Math.Min(tx.Space, 64);
            uint h = tx.Head;
            for (int i = 0; i < n; i++) { tx[h].Length = 64; h = tx.Next(h); }
            tx.Head = h;
            a.TxSync();
            b.RxSync();
            rx.Release(rx.Space);
            b.RxSync();
            sent += n;
        }
    }

    /// <summary>Fills up to <paramref name="count"/> TX slots with consecutive sequence numbers.</summary>
    public static int SendNumbered(IPort port, ref uint seq, int count)
    {
        var tx = port.Tx;
        int n = Math.Min(count, tx.Space);
        uint h = tx.Head;
        for (int i = 0; i < n; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(tx.Buffer(h), seq++);
            tx[h].Length = (ushort)(60 + seq % 100);
            h = tx.Next(h);
        }
        tx.Cur = h;
        tx.Head = h;
        return n;
    }

    /// <summary>Reads up to <paramref name="count"/> RX slots, checking order and length.</summary>
    public static int ReceiveNumbered(IPort port, ref uint expected, int count)
    {
        var rx = port.Rx;
        int n = Math.Min(count, rx.Space);
        uint h = rx.Head;
        for (int i = 0; i < n; i++)
        {
            uint got = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(rx.Packet(h));
            Assert.Equal(expected, got);
            expected++;
            Assert.Equal(60 + expected % 100, rx[h].Length);
            h = rx.Next(h);
        }
        rx.Release(n);
        return n;
    }
}
