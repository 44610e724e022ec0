using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace IotRealtime.Broker.Host.Transport;

/// <summary>
/// A <see cref="PipeReader"/> straight over a socket, lean for idle connections: it waits for data with a zero-byte
/// receive and only then rents a buffer, which goes back to the pool as soon as everything in it is consumed. An idle
/// MQTT connection therefore holds no receive buffer at all. Single reader; <see cref="CancelPendingRead"/> may come
/// from any thread.
/// </summary>
internal sealed class SocketPipeReader(Socket socket) : PipeReader
{
    const int MinimumBuffer = 4096;

    readonly Socket _socket = socket;
    readonly Lock _cancelLock = new();
    byte[]? _buffer;
    int _start;
    int _end;
    bool _examinedAll;
    bool _peerClosed;
    bool _completed;
    bool _cancelRequested;
    CancellationTokenSource? _cancel;

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (_end > _start && !_examinedAll)
        {
            return new ReadResult(Buffered(), false, false);
        }
        if (_peerClosed)
        {
            return new ReadResult(Buffered(), false, true);
        }
        var token = CancelToken();
        if (token.IsCancellationRequested)
        {
            return Canceled();
        }
        try
        {
            if (_buffer is null)
            {
                // wait until data arrives without holding a buffer
                await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, token).ConfigureAwait(false);
                _buffer = ArrayPool<byte>.Shared.Rent(MinimumBuffer);
                _start = _end = 0;
            }
            MakeRoom();
            var received = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, token).ConfigureAwait(false);
            if (received == 0)
            {
                _peerClosed = true;
                return new ReadResult(Buffered(), false, true);
            }
            _end += received;
            _examinedAll = false;
            return new ReadResult(Buffered(), false, false);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            return Canceled();
        }
        catch (SocketException e)
        {
            // the engine treats transport failures as IOException, as Kestrel's pipes report them
            throw new IOException(e.Message, e);
        }
    }

    ReadResult Canceled()
    {
        lock (_cancelLock)
        {
            // a cancelled source cannot be reused: the next read gets a fresh one
            _cancel?.Dispose();
            _cancel = null;
            _cancelRequested = false;
        }
        return new ReadResult(Buffered(), true, false);
    }

    CancellationToken CancelToken()
    {
        lock (_cancelLock)
        {
            _cancel ??= new CancellationTokenSource();
            if (_cancelRequested)
            {
                _cancel.Cancel();
            }
            return _cancel.Token;
        }
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
        if (_start == _end)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
            _start = _end = 0;
        }
    }

    public override void CancelPendingRead()
    {
        lock (_cancelLock)
        {
            _cancelRequested = true;
            _cancel?.Cancel();
        }
    }

    public override void Complete(Exception? exception = null)
    {
        if (_completed)
        {
            return;
        }
        _completed = true;
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
        lock (_cancelLock)
        {
            _cancel?.Dispose();
            _cancel = null;
        }
    }
}
