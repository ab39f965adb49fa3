using Netloom.Stack;

namespace Netloom.Tests.Stack;

public class ByteRingTests
{
    private static byte[] Bytes(int start, int count)
    {
        var b = new byte[count];
        for (int i = 0; i < count; i++) b[i] = (byte)(start + i);
        return b;
    }

    [Fact]
    public void The_array_starts_small_and_grows_to_the_capacity_as_data_needs_it()
    {
        var r = new ByteRing(1 << 20, initial: 256);
        Assert.Equal(256, r.Allocated);
        Assert.Equal(1 << 20, r.Free);
        Assert.Equal(100, r.Write(Bytes(0, 100)));
        Assert.Equal(256, r.Allocated);
        Assert.Equal(1000, r.Write(Bytes(100, 1000)));
        Assert.Equal(2048, r.Allocated);
        var all = new byte[1100];
        r.Peek(0, all);
        Assert.Equal(Bytes(0, 1100), all);
        Assert.Equal((1 << 20) - 1100, r.Free);
        // Never past the capacity.
        Assert.Equal((1 << 20) - 1100, r.Write(new byte[2 << 20]));
        Assert.Equal(1 << 20, r.Allocated);
        Assert.Equal(0, r.Free);
    }

    [Fact]
    public void Growing_keeps_wrapped_data_and_data_written_ahead_of_the_tail_in_place()
    {
        var r = new ByteRing(4096, initial: 64);
        // Wrap the 64-byte array: head at 50, data 50..110.
        r.Write(Bytes(0, 50));
        r.Consume(50);
        r.Write(Bytes(50, 40));
        // Out-of-order bytes 10 past the tail, inside the old array, then more beyond it.
        r.WriteAt(10, Bytes(200, 5));
        r.WriteAt(30, Bytes(220, 100)); // needs 170 bytes past the head: grows to 256
        Assert.Equal(256, r.Allocated);
        r.WriteAt(0, Bytes(90, 10));
        r.Advance(10);
        var head = new byte[50];
        r.Peek(0, head);
        Assert.Equal(Bytes(50, 50), head);
        r.Advance(120); // publish through the end of the second out-of-order run (the gap between is whatever was there)
        var all = new byte[r.Count];
        r.Read(all);
        Assert.Equal(Bytes(50, 50), all[..50]);
        Assert.Equal(Bytes(200, 5), all[50..55]);
        Assert.Equal(Bytes(220, 100), all[70..170]);
        Assert.True(r.IsEmpty);
    }
}
