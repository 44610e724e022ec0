using System.Buffers.Binary;

namespace IotRealtime.Device.Simulator.Scenarios.FanIn;

/// <summary>
/// The first bytes of every fan-in payload: publisher id, per-publisher sequence number and send timestamp
/// (this process's <see cref="TimeProvider.GetTimestamp"/>), big-endian; the rest of the payload is zeros.
/// </summary>
public static class FanInPayload
{
    public const int HeaderLength = 4 + 8 + 8;

    public static void Write(Span<byte> payload, int publisher, long sequence, long timestamp)
    {
        BinaryPrimitives.WriteInt32BigEndian(payload, publisher);
        BinaryPrimitives.WriteInt64BigEndian(payload[4..], sequence);
        BinaryPrimitives.WriteInt64BigEndian(payload[12..], timestamp);
    }

    public static bool TryRead(ReadOnlySpan<byte> payload, out int publisher, out long sequence, out long timestamp)
    {
        if (payload.Length < HeaderLength)
        {
            publisher = 0;
            sequence = 0;
            timestamp = 0;
            return false;
        }

        publisher = BinaryPrimitives.ReadInt32BigEndian(payload);
        sequence = BinaryPrimitives.ReadInt64BigEndian(payload[4..]);
        timestamp = BinaryPrimitives.ReadInt64BigEndian(payload[12..]);
        return true;
    }
}
