using System.Buffers.Binary;
using System.Text;

namespace IotRealtime.Device.Simulator.Fleet.Raw;

/// <summary>MQTT fixed-header arithmetic and the PUBLISH frame a raw device writes into a buffer it rented for the send.</summary>
public static class Frame
{
    public static int RemainingLengthSize(int length) => length < 128 ? 1 : length < 16_384 ? 2 : length < 2_097_152 ? 3 : 4;

    public static int WriteRemainingLength(Span<byte> destination, int length)
    {
        var i = 0;
        do
        {
            var digit = (byte)(length % 128);
            length /= 128;
            destination[i++] = length > 0 ? (byte)(digit | 0x80) : digit;
        }
        while (length > 0);
        return i;
    }

    public static int PublishLength(int topicBytes, int qos, int payloadBytes)
    {
        var remaining = 2 + topicBytes + (qos > 0 ? 2 : 0) + payloadBytes;
        return 1 + RemainingLengthSize(remaining) + remaining;
    }

    /// <summary>Writes PUBLISH (no DUP, no retain) and returns its length.</summary>
    public static int WritePublish(Span<byte> destination, string topic, int topicBytes, int qos, ushort packetId, ReadOnlySpan<byte> payload)
    {
        var remaining = 2 + topicBytes + (qos > 0 ? 2 : 0) + payload.Length;
        var at = 0;
        destination[at++] = (byte)(0x30 | (qos << 1));
        at += WriteRemainingLength(destination[at..], remaining);
        BinaryPrimitives.WriteUInt16BigEndian(destination[at..], (ushort)topicBytes);
        at += 2;
        at += Encoding.UTF8.GetBytes(topic, destination[at..]);
        if (qos > 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(destination[at..], packetId);
            at += 2;
        }

        payload.CopyTo(destination[at..]);
        return at + payload.Length;
    }
}
