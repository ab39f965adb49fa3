using Netloom.Rings;

namespace Netloom.Tests.Rings;

public unsafe class SlotBatchTests
{
    [Fact]
    public void Slot_indexes_wrap_inside_the_ring_and_bad_buffer_indexes_or_lengths_are_refused()
    {
        using var pool = new PacketPool(16, 64);
        using var memory = new RingMemory(8);
        var ring = new Ring(memory.Header, memory.Slots, 8, pool, RingDirection.Rx);
        for (uint i = 0; i < 8; i++) memory.Slots[i] = new Slot { BufferIndex = i + 1, Length = 20 };
        "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"u8.CopyTo(pool.Buffer(3));
        var batch = new SlotBatch(ring);

        // Any index lands in the ring: 8 + 2 and 2 are one slot.
        Assert.Equal(3u, batch[8 + 2].BufferIndex);
        Assert.Equal(3u, batch[uint.MaxValue - 5].BufferIndex); // 2^32 - 6 = 2 modulo 8
        Assert.Equal(0u, batch.Next(7));
        Assert.True(batch.TryReadHeader(2, out uint len, out ulong first8, out uint next4));
        Assert.Equal(20u, len);
        Assert.Equal(0x0807060504030201UL, first8);
        Assert.Equal(0x0c0b0a09u, next4);
        Assert.Equal(20, batch.Frame(2).Length);
        Assert.Equal(64, batch.Buffer(2).Length);

        // What a slot holds is data: buffer 0, a buffer past the pool and a length past the buffer are refused.
        memory.Slots[0].BufferIndex = 0;
        memory.Slots[1].BufferIndex = 16;
        memory.Slots[4].Length = 65;
        Assert.False(batch.TryReadHeader(0, out _, out _, out _));
        Assert.False(batch.TryReadHeader(1, out _, out _, out _));
        Assert.False(batch.TryReadHeader(4, out _, out _, out _));
        Assert.True(batch.Frame(0).IsEmpty);
        Assert.True(batch.Buffer(1).IsEmpty);
        Assert.Equal(64, batch.Frame(4).Length); // cut to the buffer
    }

    [Fact]
    public void A_ring_refuses_a_size_that_is_not_a_power_of_two_and_fixed_buffers_outside_its_pool()
    {
        using var pool = new PacketPool(16, 64);
        using var memory = new RingMemory(8);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Ring(memory.Header, memory.Slots, 6, pool, RingDirection.Tx));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Ring(memory.Header, memory.Slots, 8, pool, RingDirection.Tx, fixedBufferBase: 9));
        _ = new Ring(memory.Header, memory.Slots, 8, pool, RingDirection.Tx, fixedBufferBase: 8); // buffers 8..15
    }
}
