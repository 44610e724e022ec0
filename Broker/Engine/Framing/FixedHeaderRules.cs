using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Framing;

/// <summary>The fixed-header flags of packets after CONNECT, checked before decoding (MQTTnet's decoder does not check them). Pure.</summary>
internal static class FixedHeaderRules
{
    /// <summary>Throws <see cref="MqttProtocolError"/> for a fixed header a client must not send: reserved flags, QoS 3, DUP on QoS 0, AUTH before MQTT 5.</summary>
    public static void Validate(MqttControlPacketType type, byte header, bool isV5)
    {
        var flags = header & 0x0F;
        switch (type)
        {
            case MqttControlPacketType.Publish:
                var qos = (flags >> 1) & 0x03;
                if (qos == 3)
                {
                    throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "PUBLISH with QoS 3.");
                }
                if (qos == 0 && (flags & 0x08) != 0)
                {
                    throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "PUBLISH QoS 0 with DUP set.");
                }
                break;
            case MqttControlPacketType.PubRel:
            case MqttControlPacketType.Subscribe:
            case MqttControlPacketType.Unsubscribe:
                if (flags != 0x02)
                {
                    throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, $"{type} with reserved flags {flags:x}.");
                }
                break;
            case MqttControlPacketType.Auth when !isV5:
            case (MqttControlPacketType)0:
                throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, $"Reserved packet type {(int)type}.");
            default:
                if (flags != 0)
                {
                    throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, $"{type} with reserved flags {flags:x}.");
                }
                break;
        }
    }
}
