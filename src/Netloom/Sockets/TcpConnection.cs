using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using Netloom.Stack;
using Netloom.Wire;

namespace Netloom.Sockets;

/// <summary>A zero-copy send as it was queued: its number (for matching <see cref="ZeroCopyCompletion"/> ranges) and whether its bytes were copied instead.</summary>
public readonly record struct ZeroCopySend(uint Id, bool Copied);

/// <summary>
/// One TCP connection of a <see cref="SocketStack"/>, usable from any thread: async reads and
/// writes (allocation-free in steady state), a <see cref="Stream"/> and an <see cref="IDuplexPipe"/>.
/// Failures surface as <see cref="TcpException"/>. Disposing closes gracefully (FIN after the
/// queued data), or resets when <see cref="LingerZero"/> is set or unread data remains.
/// </summary>
public sealed class TcpConnection : ISocketObserver, IDisposable, IAsyncDisposable
{
    private readonly SocketStack _stack;
    private readonly Signal _readable, _writable, _connected, _completed;
    private TcpStream? _stream;
    private IDuplexPipe? _pipe;
    private bool _disposed;

    internal TcpConnection(SocketStack stack, TcpSocket socket)
    {
        _stack = stack;
        Socket = socket;
        _readable = stack.NewSignal();
        _writable = stack.NewSignal();
        _connected = stack.NewSignal();
        _completed = stack.NewSignal();
        socket.Observer = this;
    }

    /// <summary>Connects through <paramref name="stack"/> (the same as <see cref="NetStack.ConnectAsync"/>).</summary>
    public static ValueTask<TcpConnection> ConnectAsync(SocketStack stack, Ipv4Address address, ushort port, TcpSocketOptions? options = null, CancellationToken ct = default) =>
        stack.ConnectAsync(address, port, options, ct);

    /// <summary>Connects through <paramref name="stack"/> to <paramref name="remote"/>, IPv4 or IPv6.</summary>
    public static ValueTask<TcpConnection> ConnectAsync(SocketStack stack, IPEndPoint remote, TcpSocketOptions? options = null, CancellationToken ct = default) =>
        stack.ConnectAsync(remote, options, ct);

    /// <summary>The stack-level connection: read its state and counters under the stack lock.</summary>
    internal TcpSocket Socket { get; }
    public ushort LocalPort => Socket.LocalPort;
    /// <summary>The peer's IPv4 address; throws <see cref="InvalidOperationException"/> on an IPv6 connection (use <see cref="RemoteEndPoint"/>).</summary>
    public Ipv4Address RemoteAddress => Socket.RemoteAddress;
    public ushort RemotePort => Socket.RemotePort;
    /// <summary>The peer's address and port, as System.Net gives them (a new object each call).</summary>
    public IPEndPoint RemoteEndPoint => new(Socket.Remote.Address.ToIPAddress(), RemotePort);
    /// <summary>This end's address (the stack's) and port (a new object each call).</summary>
    public IPEndPoint LocalEndPoint => new(Socket.Local.Address.ToIPAddress(), LocalPort);
    /// <summary>On dispose, reset at once instead of closing gracefully (SO_LINGER with a zero timeout).</summary>
    public bool LingerZero { get; set; }

    /// <summary>
    /// When set, <see cref="DisposeAsync"/> waits up to this long for the peer to acknowledge
    /// everything written, and resets the connection if it has not (SO_LINGER with a timeout).
    /// </summary>
    public TimeSpan? Linger { get; set; }

    public bool NoDelay
    {
        get => Socket.NoDelay;
        set { using (_stack.Enter()) Socket.NoDelay = value; }
    }

    /// <summary>The connection as a stream: reads return 0 once the peer has finished sending.</summary>
    public Stream Stream => _stream ??= new TcpStream(this);

    /// <summary>
    /// The connection as a duplex pipe (System.IO.Pipelines over the stream). Completing the
    /// output shuts the sending side, so the peer reads end-of-stream.
    /// </summary>
    public IDuplexPipe Pipe => _pipe ??= new DuplexPipe(
        PipeReader.Create(Stream, new StreamPipeReaderOptions(bufferSize: 65536, minimumReadSize: 16384, leaveOpen: true)),
        PipeWriter.Create(new TcpStream(this), new StreamPipeWriterOptions(minimumBufferSize: 16384, leaveOpen: false)));

    internal bool CanBlock => _stack.CanBlock;

    private sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    internal ValueTask ArmConnected(CancellationToken ct) => Socket.State == TcpState.SynSent ? _connected.Arm(ct) : ValueTask.CompletedTask;

    /// <summary>Reads what has arrived, waiting for at least one byte; 0 when the peer has finished.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        if (buffer.IsEmpty) return 0;
        while (true)
        {
            ValueTask wait;
            using (_stack.Enter())
            {
                int n = Socket.Receive(buffer.Span);
                if (n > 0) return n;
                if (Socket.Error != TcpError.None) throw TcpException.From(Socket);
                if (Socket.ReceiveFinished) return 0;
                wait = _readable.Arm(ct);
            }
            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>Queues all of <paramref name="data"/>, waiting for buffer space as the peer acknowledges.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        int offset = 0;
        while (true)
        {
            ValueTask wait;
            using (_stack.Enter())
            {
                if (Socket.Error != TcpError.None) throw TcpException.From(Socket);
                if (Socket.State is not (TcpState.Established or TcpState.CloseWait or TcpState.SynSent or TcpState.SynReceived))
                    throw new InvalidOperationException($"cannot write: the connection is in {Socket.State}");
                offset += Socket.Send(data.Span[offset..]);
                if (offset == data.Length) return;
                wait = _writable.Arm(ct);
            }
            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sends <paramref name="data"/> without copying it into the send buffer: the connection
    /// reads the caller's memory (straight into frames, for first sends and retransmissions alike)
    /// until the peer has acknowledged every byte, then reports the send's number through
    /// <see cref="ReadZeroCopyCompletionAsync"/> and disposes <paramref name="owner"/>. Until
    /// then the memory must not change. Sends shorter than
    /// <see cref="TcpSocketOptions.ZeroCopyThreshold"/> are copied instead (the result says so,
    /// and the memory is free at once). Waits for send-buffer space as the peer acknowledges, so
    /// lent memory stays within the send buffer's size. Cancelled part way, the bytes already
    /// queued still go and the send still completes; the owner is disposed then. When the call
    /// throws because the connection failed, the connection no longer references the memory and
    /// the caller keeps the owner.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ZeroCopySend> SendZeroCopyAsync(ReadOnlyMemory<byte> data, IDisposable? owner = null, CancellationToken ct = default)
    {
        if (data.IsEmpty) throw new ArgumentException("a zero-copy send needs at least one byte", nameof(data));
        int offset = 0;
        bool copy = false;
        try
        {
            while (true)
            {
                ValueTask wait;
                using (_stack.Enter())
                {
                    if (Socket.Error != TcpError.None) throw TcpException.From(Socket);
                    if (Socket.State is not (TcpState.Established or TcpState.CloseWait or TcpState.SynSent or TcpState.SynReceived))
                        throw new InvalidOperationException($"cannot write: the connection is in {Socket.State}");
                    copy = data.Length < Socket.ZeroCopyThreshold;
                    offset += Socket.SendReferenced(data[offset..], copy);
                    if (offset == data.Length)
                    {
                        uint id = Socket.EndZeroCopySend(copy, copy ? null : owner);
                        if (copy) owner?.Dispose();
                        return new ZeroCopySend(id, copy);
                    }
                    wait = _writable.Arm(ct);
                }
                await wait.ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (offset > 0)
        {
            using (_stack.Enter()) Socket.EndZeroCopySend(copy, owner);
            throw;
        }
    }

    /// <summary>
    /// Payload bytes one loan buffer carries on this connection (one segment); 0 when the port
    /// has no loan buffers (only a shm port created with <see cref="Rings.PortOptions.LoanBuffers"/>
    /// has them) or the connection is not open.
    /// </summary>
    public int LoanCapacity
    {
        get { using (_stack.Enter()) return Socket.LoanCapacity; }
    }

    /// <summary>
    /// Rents one of the port's loan buffers, for the application to write its payload into
    /// (<see cref="LoanPayload"/>) and send with no copy at all (<see cref="SendLoanAsync"/>):
    /// the buffer becomes the frame. False when the port has none or all are rented.
    /// </summary>
    public bool TryRentLoan(out uint buffer)
    {
        using (_stack.Enter()) return Socket.TryRentLoan(out buffer);
    }

    /// <summary>
    /// Where the payload goes in a rented loan buffer (<see cref="LoanCapacity"/> bytes, after
    /// the room the headers take). Write it only while the buffer is not being sent: after
    /// renting it, or after the completion of its last send.
    /// </summary>
    public Span<byte> LoanPayload(uint buffer)
    {
        using (_stack.Enter()) return Socket.LoanPayload(buffer);
    }

    /// <summary>Gives a rented loan buffer back to the port for good (not while a send of it is outstanding).</summary>
    public void ReturnLoan(uint buffer)
    {
        using (_stack.Enter()) Socket.ReturnLoan(buffer);
    }

    /// <summary>
    /// Sends the first <paramref name="length"/> payload bytes of loan buffer
    /// <paramref name="buffer"/> as one segment whose frame is the buffer itself (the stack writes
    /// the headers in front of the payload), retransmitting from it if needed. Waits for
    /// send-buffer space. Returns the send's number; its completion
    /// (<see cref="ReadZeroCopyCompletionAsync"/>) comes once the peer acknowledged the bytes and
    /// the port handed the buffer back, and from then the buffer is the application's again (to
    /// refill and send, or to return).
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ZeroCopySend> SendLoanAsync(uint buffer, int length, CancellationToken ct = default)
    {
        while (true)
        {
            ValueTask wait;
            using (_stack.Enter())
            {
                if (Socket.Error != TcpError.None) throw TcpException.From(Socket);
                if (Socket.State is not (TcpState.Established or TcpState.CloseWait))
                    throw new InvalidOperationException($"cannot send a loan buffer: the connection is in {Socket.State}");
                if (Socket.SendLoan(buffer, length) > 0) return new ZeroCopySend(Socket.EndZeroCopySend(copied: false), false);
                wait = _writable.Arm(ct);
            }
            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>A completion waiting to be read, if any (see <see cref="ReadZeroCopyCompletionAsync"/>).</summary>
    public bool TryReadZeroCopyCompletion(out ZeroCopyCompletion completion)
    {
        using (_stack.Enter()) return Socket.TryTakeZeroCopyCompletion(out completion);
    }

    /// <summary>
    /// Waits for the next completion of zero-copy sends: a range of send numbers, in order,
    /// several coalesced into one when they complete together. Waits, like a read, while no
    /// completion is waiting (a sender may still make sends); throws
    /// <see cref="InvalidOperationException"/> once the connection is closed and every completion
    /// was read (nothing more can come).
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ZeroCopyCompletion> ReadZeroCopyCompletionAsync(CancellationToken ct = default)
    {
        while (true)
        {
            ValueTask wait;
            using (_stack.Enter())
            {
                if (Socket.TryTakeZeroCopyCompletion(out var c)) return c;
                if (Socket.ZeroCopyOutstanding == 0 && Socket.State == TcpState.Closed)
                    throw new InvalidOperationException("the connection is closed and every zero-copy completion was read: no more will come");
                wait = _completed.Arm(ct);
            }
            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>Waits until everything written has been acknowledged (or the connection failed).</summary>
    public async ValueTask FlushAsync(CancellationToken ct = default)
    {
        while (true)
        {
            ValueTask wait;
            using (_stack.Enter())
            {
                if (Socket.Error != TcpError.None) throw TcpException.From(Socket);
                if (Socket.SendQueued == 0 || Socket.State == TcpState.Closed) return;
                wait = _writable.Arm(ct);
            }
            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>Finishes sending: the peer reads end-of-stream after the queued data.</summary>
    public void ShutdownSend()
    {
        using (_stack.Enter()) Socket.Shutdown();
    }

    /// <summary>Resets the connection now.</summary>
    public void Abort()
    {
        using (_stack.EnterToClose())
        {
            Socket.Abort();
            FireAll();
        }
    }

    void ISocketObserver.OnSocketEvents(object socket, SocketEvents events)
    {
        if ((events & (SocketEvents.Readable | SocketEvents.Closed)) != 0) _readable.Fire();
        if ((events & (SocketEvents.Writable | SocketEvents.Closed)) != 0) { _writable.Fire(); _completed.Fire(); }
        if ((events & (SocketEvents.Connected | SocketEvents.Closed)) != 0) _connected.Fire();
    }

    private void FireAll()
    {
        _readable.Fire();
        _writable.Fire();
        _connected.Fire();
        _completed.Fire();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        using (_stack.EnterToClose())
        {
            if (LingerZero) Socket.Abort();
            else Socket.Close();
            _stack.Interface.FlushOutput();
            FireAll();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        if (Linger is { } linger && !LingerZero)
        {
            ShutdownSend();
            using var cts = _stack.CancelAfter(linger);
            try { await FlushAsync(cts.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) { LingerZero = true; } // not acknowledged in time: reset
            catch (TcpException) { }
        }
        Dispose();
    }

    public override string ToString() => Socket.ToString();
}

/// <summary>A <see cref="TcpConnection"/> as a <see cref="System.IO.Stream"/>.</summary>
internal sealed class TcpStream(TcpConnection connection) : Stream
{
    private const string NoBlocking = "a blocking call would stop the emulator's only thread: use ReadAsync and WriteAsync in virtual time";

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => connection.ReadAsync(buffer, ct);
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => connection.ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();
    public override int Read(byte[] buffer, int offset, int count) => !connection.CanBlock ? throw new NotSupportedException(NoBlocking) : connection.ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) => connection.WriteAsync(buffer, ct);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => connection.WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();
    public override void Write(byte[] buffer, int offset, int count)
    {
        if (!connection.CanBlock) throw new NotSupportedException(NoBlocking);
        connection.WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    }

    public override void Flush() { }
    public override Task FlushAsync(CancellationToken ct) => Task.CompletedTask; // bytes go out as they are written
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) connection.ShutdownSend();
        base.Dispose(disposing);
    }
}
