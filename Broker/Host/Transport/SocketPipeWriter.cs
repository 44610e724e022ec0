using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace IotRealtime.Broker.Host.Transport;

/// <summary>
/// A <see cref="PipeWriter"/> straight over a socket: everything written between two flushes goes into one pooled
/// buffer and out in one send, and the buffer goes back to the pool after the flush, so an idle connection holds none.
/// Single writer. <see cref="CancelPendingFlush"/> (which the engine uses only to give up on a peer that stopped
/// reading, while closing) aborts the connection: a send stuck on a full socket cannot be interrupted otherwise, and
/// keeping a cancellation source per idle connection would cost memory for nothing.
/// </summary>
internal sealed class SocketPipeWriter(Socket socket) : PipeWriter
{
    const int MinimumBuffer = 4096;

    readonly Socket _socket = socket;
    byte[]? _buffer;
    int _written;
    bool _completed;
    volatile bool _aborted;

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsSpan(_written);
    }

    void Reserve(int sizeHint)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        var needed = _written + Math.Max(sizeHint, 1);
        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(MinimumBuffer, needed));
        }
        else if (needed > _buffer.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, needed));
            Buffer.BlockCopy(_buffer, 0, larger, 0, _written);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }
    }

    public override void Advance(int bytes)
    {
        if (bytes < 0 || _buffer is null || _written + bytes > _buffer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), "Advanced past the memory handed out.");
        }
        _written += bytes;
    }

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _written;

    public override async ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_written == 0 || _buffer is null)
        {
            return new FlushResult(false, _completed);
        }
        try
        {
            var sent = 0;
            while (sent < _written)
            {
                sent += await _socket.SendAsync(_buffer.AsMemory(sent, _written - sent), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
            return new FlushResult(false, false);
        }
        catch (Exception e) when (_aborted && e is SocketException or ObjectDisposedException)
        {
            return new FlushResult(true, false);
        }
        catch (SocketException e)
        {
            throw new IOException(e.Message, e);
        }
        finally
        {
            _written = 0;
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }

    public override void CancelPendingFlush()
    {
        _aborted = true;
        SocketBuffers.TryShutdown(_socket, SocketShutdown.Both);
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
