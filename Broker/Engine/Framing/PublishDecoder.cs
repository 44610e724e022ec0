using System.Buffers;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Framing;

/// <summary>
/// Decodes the common PUBLISH — MQTT 3.1.1, or 5.0 with no properties — straight from the frame, as MQTTnet's decoder
/// would; anything else (properties, a frame too short for its fields) is left to that decoder and its errors. Pure.
/// </summary>
internal static class PublishDecoder
{
    /// <summary>The packet for <paramref name="body"/>, owning a copy of its payload; null when MQTTnet's decoder must read it.</summary>
    public static MqttPublishPacket? TryDecode(byte header, ReadOnlySpan<byte> body, bool isV5, TopicNameCache topics)
    {
        if (body.Length < 2)
        {
            return null;
        }
        var qos = (MqttQualityOfServiceLevel)((header >> 1) & 0x03);
        var topicLength = (body[0] << 8) | body[1];
        var offset = 2 + topicLength;
        ushort packetId = 0;
        if (qos > 0)
        {
            if (body.Length < offset + 2)
            {
                return null;
            }
            packetId = (ushort)((body[offset] << 8) | body[offset + 1]);
            offset += 2;
        }
        if (isV5)
        {
            // a property length of 0 is one byte; any property at all goes the general way
            if (body.Length < offset + 1 || body[offset] != 0)
            {
                return null;
            }
            offset++;
        }
        if (body.Length < offset)
        {
            return null;
        }
        return new MqttPublishPacket
        {
            Topic = topics.Get(body.Slice(2, topicLength)),
            QualityOfServiceLevel = qos,
            Retain = (header & 0x01) != 0,
            Dup = (header & 0x08) != 0,
            PacketIdentifier = packetId,
            Payload = new ReadOnlySequence<byte>(body[offset..].ToArray()),
        };
    }
}
