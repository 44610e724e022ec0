using System.Text;

namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>Encodes one log record at a time into a reused buffer (framing is the log's). Not thread-safe: each owner has its own.</summary>
internal sealed class RecordEncoder
{
    readonly MemoryStream _buffer = new();
    readonly BinaryWriter _writer;

    public RecordEncoder() => _writer = new BinaryWriter(_buffer, Encoding.UTF8, leaveOpen: true);

    /// <summary>Starts a record of <paramref name="type"/>; its fields go to the writer returned, until <see cref="End"/>.</summary>
    public BinaryWriter Begin(RecordType type)
    {
        _buffer.SetLength(0);
        _writer.Write((byte)type);
        return _writer;
    }

    /// <summary>The record's bytes, valid until the next <see cref="Begin"/>.</summary>
    public ReadOnlySpan<byte> End()
    {
        _writer.Flush();
        return _buffer.GetBuffer().AsSpan(0, (int)_buffer.Length);
    }
}
