using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace IotRealtime.Broker.Host.Transport;

/// <summary>
/// A <see cref="PipeReader"/> straight over a socket, lean for idle connections: it waits for data with a zero-byte
/// receive and only then rents a buffer, which goes back to the pool as soon as everything in it is consumed. An idle
/// MQTT connection therefore holds no receive buffer at all. Single reader. <see cref="CancelPendingRead"/> (which the
/// engine uses only when it closes the connection) shuts the receive side down when a read is waiting: a socket
/// receive cannot be interrupted otherwise, and a cancellation source per idle connection costs memory for nothing.
/// The waiting read then ends as cancelled.
/// </summary>
internal sealed class SocketPipeReader(Socket socket) : PipeReader
{
    const int MinimumBuffer = 4096;

    readonly Socket _socket = socket;
    readonly Lock _gate = new();
    byte[]? _buffer;
    int _start;
    int _end;
    bool _examinedAll;
    bool _peerClosed;
    bool _completed;
    bool _cancelRequested;
    bool _reading;
    bool _receiveShutDown;

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
        lock (_gate)
        {
            if (_cancelRequested)
            {
                _cancelRequested = false;
                return new ReadResult(Buffered(), true, false);
            }
            _reading = true;
        }
        try
        {
            if (_buffer is null)
            {
                // wait until data arrives without holding a buffer
                await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                _buffer = ArrayPool<byte>.Shared.Rent(MinimumBuffer);
                _start = _end = 0;
            }
            MakeRoom();
            var received = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (received == 0)
            {
                lock (_gate)
                {
                    if (_receiveShutDown)
                    {
                        // our own CancelPendingRead, not the peer
                        return new ReadResult(Buffered(), true, false);
                    }
                }
                _peerClosed = true;
                return new ReadResult(Buffered(), false, true);
            }
            _end += received;
            _examinedAll = false;
            return new ReadResult(Buffered(), false, false);
        }
        catch (SocketException e)
        {
            // the engine treats transport failures as IOException, as Kestrel's pipes report them
            throw new IOException(e.Message, e);
        }
        finally
        {
            lock (_gate)
            {
                _reading = false;
            }
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
        lock (_gate)
        {
            if (!_reading)
            {
                _cancelRequested = true;
                return;
            }
            _receiveShutDown = true;
        }
        SocketBuffers.TryShutdown(_socket, SocketShutdown.Receive);
    }

    public override void Complete(Exception? exception = null)
    {
        if (_completed)
        {
            return;
        }
        _completed = true;
        SocketBuffers.Return(ref _buffer);
    }
}
