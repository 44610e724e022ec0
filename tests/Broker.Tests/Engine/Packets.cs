using System.Buffers;
using System.Text;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>Short constructors for the packets conformance tests send.</summary>
internal static class Packets
{
    public static MqttPublishPacket Publish(string topic, string payload, MqttQualityOfServiceLevel qos, ushort id = 0, bool dup = false, bool retain = false) => new()
    {
        Topic = topic,
        PayloadSegment = Encoding.UTF8.GetBytes(payload),
        QualityOfServiceLevel = qos,
        PacketIdentifier = id,
        Dup = dup,
        Retain = retain,
    };

    public static MqttSubscribePacket Subscribe(ushort id, string filter, MqttQualityOfServiceLevel qos, uint subscriptionId = 0) =>
        new() { PacketIdentifier = id, SubscriptionIdentifier = subscriptionId, TopicFilters = [new MqttTopicFilter { Topic = filter, QualityOfServiceLevel = qos }] };

    /// <summary>The bytes of <paramref name="packet"/> as an MQTT 5 client sends them, for writing many in one go.</summary>
    public static byte[] Encode(MqttPacket packet)
    {
        var formatter = new MQTTnet.Formatter.MqttPacketFormatterAdapter(MQTTnet.Formatter.MqttProtocolVersion.V500, new MQTTnet.Formatter.MqttBufferWriter(4096, 65536));
        var buffer = formatter.Encode(packet);
        var bytes = new byte[buffer.Length];
        buffer.Packet.AsSpan().CopyTo(bytes);
        BuffersExtensions.CopyTo(buffer.Payload, bytes.AsSpan(buffer.Packet.Count));
        return bytes;
    }

    public static string Text(this MqttPublishPacket packet) => Encoding.UTF8.GetString(packet.Payload.ToArray());
}
