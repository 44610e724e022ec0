using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;

namespace IotRealtime.Broker.Host.Transport;

/// <summary>
/// A <see cref="PipeReader"/> straight over a non-blocking socket, driven by the <see cref="ReadinessLoop"/>: a read that
/// finds nothing buffered arms the socket and waits; the loop's thread receives and completes the read in place, so the
/// engine handles the data on that thread, in the order sockets were read. Lean for idle connections: a waiting read
/// holds no receive buffer and no pending socket operation; a buffer is rented when data arrives and goes back to the
/// pool as soon as everything in it is consumed. Single reader. <see cref="CancelPendingRead"/> (which the engine uses
/// when it closes the connection) ends a waiting read as cancelled.
/// </summary>
internal sealed class SocketPipeReader : PipeReader, IValueTaskSource<ReadResult>
{
    const int MinimumBuffer = 4096;
    const int Idle = 0;
    const int Waiting = 1;
    const int Receiving = 2;

    readonly Socket _socket;
    readonly ReadinessLoop _loop;
    readonly ulong _key;
    readonly int _fd;
    ManualResetValueTaskSourceCore<ReadResult> _read;
    byte[]? _buffer;
    int _start;
    int _end;
    int _state;
    bool _examinedAll;
    bool _peerClosed;
    bool _completed;
    bool _added;
    volatile bool _cancelRequested;

    public SocketPipeReader(Socket socket, ReadinessLoop loop)
    {
        _socket = socket;
        _socket.Blocking = false;
        _loop = loop;
        _fd = (int)socket.Handle;
        _key = loop.Register(this);
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        cancellationToken.ThrowIfCancellationRequested();
        if (_cancelRequested)
        {
            _cancelRequested = false;
            return new ValueTask<ReadResult>(new ReadResult(Buffered(), true, false));
        }
        if (_end > _start && !_examinedAll)
        {
            return new ValueTask<ReadResult>(new ReadResult(Buffered(), false, false));
        }
        if (_peerClosed)
        {
            return new ValueTask<ReadResult>(new ReadResult(Buffered(), false, true));
        }
        // even when data is already there, the loop's thread receives it: reads stay in the order the kernel reports them
        _read.Reset();
        Volatile.Write(ref _state, Waiting);
        var errno = _loop.Arm(_fd, _key, first: !_added);
        _added = true;
        if (errno != 0 && Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
        {
            // the socket is gone (closed under us): report it as the end of input
            _peerClosed = true;
            return new ValueTask<ReadResult>(new ReadResult(Buffered(), false, true));
        }
        if (_cancelRequested && Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
        {
            _cancelRequested = false;
            return new ValueTask<ReadResult>(new ReadResult(Buffered(), true, false));
        }
        if (cancellationToken.CanBeCanceled)
        {
            // only the closing connection's brief drain passes a token: its read must end when the token does, peer or not.
            // The registration lives as long as the token's source (the drain disposes it); the version keeps it from
            // cancelling a later read.
            cancellationToken.UnsafeRegister(static (state, token) =>
            {
                var (reader, version) = ((SocketPipeReader, short))state!;
                reader.CancelWaitingRead(version, token);
            }, (this, _read.Version));
        }
        return new ValueTask<ReadResult>(this, _read.Version);
    }

    /// <summary>Ends the waiting read of <paramref name="version"/> with <see cref="OperationCanceledException"/>, as a pipe does for a cancelled token.</summary>
    void CancelWaitingRead(short version, CancellationToken token)
    {
        if (_read.Version == version && Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
        {
            // not inline: the token's owner (a timer) must not run this connection's shutdown on its own stack
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Reader._read.SetException(new OperationCanceledException(s.Token)), (Reader: this, Token: token), preferLocal: false);
        }
    }

    /// <summary>Called on the loop's thread when the socket is readable or closed: receives once and completes the waiting read in place.</summary>
    internal void OnReadable()
    {
        if (Interlocked.CompareExchange(ref _state, Receiving, Waiting) != Waiting)
        {
            return; // the read was cancelled meanwhile
        }
        ReadResult result;
        try
        {
            _buffer ??= ArrayPool<byte>.Shared.Rent(MinimumBuffer);
            MakeRoom();
            var received = _socket.Receive(_buffer.AsSpan(_end), SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                // reported without data after all: wait again (unless the socket cannot be armed any more: then it is closed)
                ReleaseIfEmpty();
                Volatile.Write(ref _state, Waiting);
                var armed = _loop.Arm(_fd, _key, first: false) == 0;
                if (armed || Interlocked.CompareExchange(ref _state, Receiving, Waiting) != Waiting)
                {
                    return;
                }
                _peerClosed = true;
            }
            else if (error != SocketError.Success)
            {
                ReleaseIfEmpty();
                Volatile.Write(ref _state, Idle);
                _read.SetException(new IOException($"Socket receive failed: {error}", new SocketException((int)error)));
                return;
            }
            else if (received == 0)
            {
                _peerClosed = true;
            }
            _end += received;
            _examinedAll = false;
            ReleaseIfEmpty();
            result = new ReadResult(Buffered(), false, _peerClosed);
        }
        catch (ObjectDisposedException e)
        {
            Volatile.Write(ref _state, Idle);
            _read.SetException(new IOException("The socket was closed.", e));
            return;
        }
        Volatile.Write(ref _state, Idle);
        // runs the engine's continuation here, on the loop's thread
        _read.SetResult(result);
    }

    void MakeRoom()
    {
        if (_end < _buffer!.Length)
        {
            return;
        }
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
            return;
        }
        // a packet bigger than the buffer: grow it
        var larger = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
        Buffer.BlockCopy(_buffer, 0, larger, 0, _end);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }

    void ReleaseIfEmpty()
    {
        if (_buffer is not null && _start == _end)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
            _start = _end = 0;
        }
    }

    ReadOnlySequence<byte> Buffered() =>
        _buffer is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(_buffer, _start, _end - _start);

    public override bool TryRead(out ReadResult result)
    {
        if (_end > _start && !_examinedAll)
        {
            result = new ReadResult(Buffered(), false, false);
            return true;
        }
        result = default;
        return false;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (_buffer is null)
        {
            return;
        }
        // positions of an array-backed sequence are indexes into the array
        var consumedIndex = consumed.GetObject() is null ? _start : consumed.GetInteger();
        var examinedIndex = examined.GetObject() is null ? consumedIndex : examined.GetInteger();
        if (consumedIndex < _start || consumedIndex > _end || examinedIndex < consumedIndex || examinedIndex > _end)
        {
            throw new InvalidOperationException("AdvanceTo was given a position outside the last read buffer.");
        }
        _start = consumedIndex;
        _examinedAll = examinedIndex == _end;
        ReleaseIfEmpty();
    }

    public override void CancelPendingRead()
    {
        _cancelRequested = true;
        if (Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
        {
            _cancelRequested = false;
            // not inline: the caller (a takeover, the keep-alive sweep) must not run this connection's shutdown on its own stack
            ThreadPool.UnsafeQueueUserWorkItem(static r => r._read.SetResult(new ReadResult(r.Buffered(), true, false)), this, preferLocal: false);
        }
    }

    public override void Complete(Exception? exception = null)
    {
        if (_completed)
        {
            return;
        }
        _completed = true;
        _loop.Unregister(_fd, _key, _added);
        SocketBuffers.Return(ref _buffer);
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _read.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _read.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _read.OnCompleted(continuation, state, token, flags);
}
