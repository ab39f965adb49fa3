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
}
