namespace Netloom.Offload;

/// <summary>
/// What a server engine calls, on the engine's own thread, for each connection. Handlers for a
/// multi-threaded engine are called from several threads at once, one thread per connection.
/// </summary>
public interface IConnectionHandler
{
    void OnConnected(Connection connection);

    /// <summary>
    /// Bytes arrived. The handler consumes what it can and returns how many bytes it consumed;
    /// the engine keeps the rest (bounded) and presents it again with the next bytes.
    /// </summary>
    int OnData(Connection connection, ReadOnlySpan<byte> data);

    void OnClosed(Connection connection);

    /// <summary>Another thread called <see cref="Connection.Wake"/>: produce output now (on the engine's thread).</summary>
    void OnWake(Connection connection) { }

    /// <summary>A send finished: room for more output (on the engine's thread).</summary>
    void OnSendCompleted(Connection connection) { }

    /// <summary>
    /// The peer finished sending (FIN). Return true to keep the connection open for output until
    /// the handler closes it (a half-close); the default, false, closes it now, as Redis does.
    /// </summary>
    bool OnEndOfInput(Connection connection) => false;
}

/// <summary>
/// A handler that uses a connection's kernel descriptor from threads other than the engine's (a
/// direct send): the engine calls <see cref="ReleaseDescriptor"/> on its own thread just before it
/// closes the descriptor, and the handler returns only once no other thread can touch it any more.
/// </summary>
internal interface IDescriptorUser
{
    void ReleaseDescriptor(Connection connection);
}

/// <summary>
/// One connection of a server engine. Replies are appended to <see cref="Output"/> and sent
/// after the handler returns. A connection object and its buffers are reused for later
/// connections, so steady-state traffic allocates nothing.
/// </summary>
public sealed class Connection
{
    internal Connection(int id) : this(id, NativeAllocator.Shared) { }

    internal Connection(int id, NativeAllocator memory)
    {
        Id = id;
        Output = new OutputBuffer(memory);
    }

    public int Id { get; }
    public long Generation { get; internal set; }

    /// <summary>The handler's per-connection state, kept while the object is reused.</summary>
    public object? State { get; set; }

    public OutputBuffer Output { get; }

    internal bool CloseRequested;
    /// <summary>The socket's kernel descriptor, or -1 where it lives in the ring's registered file table (set by the engine on accept).</summary>
    internal int KernelFd = -1;
    internal int WakePending;
    internal Action<Connection>? WakeHook;

    /// <summary>Closes the connection once what is in <see cref="Output"/> has been sent.</summary>
    public void Close() => CloseRequested = true;

    /// <summary>
    /// From any thread: asks the engine to call the handler's <see cref="IConnectionHandler.OnWake"/>
    /// on its own thread soon (for output that is not an answer to input). Repeated calls before
    /// that coalesce into one.
    /// </summary>
    public void Wake()
    {
        var hook = WakeHook ?? throw new NotSupportedException("this engine cannot be woken from other threads (use the io_uring engine)");
        if (Interlocked.Exchange(ref WakePending, 1) == 0) hook(this);
    }
}

/// <summary>
/// An append-only byte buffer in native memory, so the kernel can send from it while the
/// handler keeps appending to the other one of a pair. It grows by doubling up to a limit;
/// beyond that <see cref="Overflowed"/> is set and the engine closes the connection (a client
/// that never reads cannot make the server hold unbounded replies).
/// </summary>
public sealed unsafe class OutputBuffer
{
    public const int Limit = 64 << 20;
    private readonly NativeAllocator _memory;
    private byte* _data;
    private int _capacity, _length;

    public OutputBuffer() : this(NativeAllocator.Shared) { }

    internal OutputBuffer(NativeAllocator memory) => _memory = memory;

    public int Length => _length;
    public bool Overflowed { get; private set; }
    internal byte* Pointer => _data;
    internal int Capacity => _capacity;

    public Span<byte> GetSpan(int size)
    {
        if (_length + size > _capacity) Grow(_length + size);
        return Overflowed ? Span<byte>.Empty : new Span<byte>(_data + _length, _capacity - _length);
    }

    /// <summary>
    /// Counts <paramref name="count"/> bytes written into the span <see cref="GetSpan"/> returned.
    /// Checked: the bytes must lie within the free space, or the engine would send memory nobody wrote.
    /// </summary>
    public void Advance(int count)
    {
        if ((uint)count > (uint)(_capacity - _length)) ThrowAdvancePastEnd(count);
        _length += count;
    }

    private void ThrowAdvancePastEnd(int count) =>
        throw new ArgumentOutOfRangeException(nameof(count), count,
            $"Advance({count}) on an output buffer with {_capacity - _length} bytes free: advance by at most the length of the span GetSpan returned");

    public void Write(ReadOnlySpan<byte> bytes)
    {
        var s = GetSpan(bytes.Length);
        if (s.Length < bytes.Length) return;
        bytes.CopyTo(s);
        _length += bytes.Length;
    }

    private void Grow(int needed)
    {
        if (needed > Limit) { Overflowed = true; return; }
        int cap = Math.Max(4096, _capacity);
        while (cap < needed) cap *= 2;
        var grown = (byte*)_memory.Alloc((nuint)cap);
        if (_data is not null)
        {
            Buffer.MemoryCopy(_data, grown, cap, _length);
            _memory.Free(_data, (nuint)_capacity);
        }
        _data = grown;
        _capacity = cap;
    }

    internal void Consume(int count)
    {
        // Sent bytes leave the front: shift what is left (rare: usually everything went).
        if (count >= _length) { _length = 0; return; }
        Buffer.MemoryCopy(_data + count, _data, _capacity, _length - count);
        _length -= count;
    }

    internal void Reset()
    {
        _length = 0;
        Overflowed = false;
    }

    /// <summary>Gives the memory back (the buffer stays usable and grows again on the next write).</summary>
    internal void Free()
    {
        _memory.Free(_data, (nuint)_capacity);
        _data = null;
        _capacity = _length = 0;
        Overflowed = false;
    }

    internal void Swap(OutputBuffer other)
    {
        byte* d = _data;
        _data = other._data;
        other._data = d;
        (_capacity, other._capacity) = (other._capacity, _capacity);
        (_length, other._length) = (other._length, _length);
        (Overflowed, other.Overflowed) = (other.Overflowed, Overflowed);
    }
}
