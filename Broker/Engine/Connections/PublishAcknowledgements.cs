using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>
/// The QoS 1/2 acknowledgements a client sends: PUBACK, PUBREC and PUBCOMP of our deliveries (which free room in its
/// receive window, so the writer is woken), and PUBREL of its own QoS 2 publishes (which frees the packet id).
/// </summary>
internal static class PublishAcknowledgements
{
    /// <summary>
    /// An acknowledgement that is only its packet id (every one in 3.1.1; success without properties in MQTT 5) is handled
    /// from its two bytes, without a formatter or a packet object: one comes for every QoS 1/2 delivery. False for any
    /// other packet, which is decoded as usual (PUBREC too: its refusal codes matter).
    /// </summary>
    public static bool TryHandleShort(ConnectionState state, MqttControlPacketType type, ushort id)
    {
        switch (type)
        {
            case MqttControlPacketType.PubAck:
                HandlePubAck(state, id);
                return true;
            case MqttControlPacketType.PubComp:
                HandlePubComp(state, id);
                return true;
            case MqttControlPacketType.PubRel:
                HandlePubRel(state, id);
                return true;
            default:
                return false;
        }
    }

    public static void HandlePubAck(ConnectionState state, ushort id)
    {
        state.Session!.Acknowledge(id, DeliveryState.AwaitingPubAck, state.Broker);
        state.Connection.Signal();
    }

    public static void HandlePubRec(ConnectionState state, MqttPubRecPacket rec)
    {
        var found = state.Session!.ReceivePubRec(rec.PacketIdentifier, (int)rec.ReasonCode >= 0x80, state.Broker, state.Connection, out var completed);
        if (completed)
        {
            return;
        }
        // after "awaiting PUBCOMP" is durable: a restart must resend PUBREL, never the PUBLISH (MQTT-4.3.3-3 ... -5)
        state.Connection.SendAckWhenDurable(new MqttPubRelPacket
        {
            PacketIdentifier = rec.PacketIdentifier,
            ReasonCode = found || !state.IsV5 ? MqttPubRelReasonCode.Success : MqttPubRelReasonCode.PacketIdentifierNotFound,
        });
    }

    public static void HandlePubRel(ConnectionState state, ushort id)
    {
        var known = state.Session!.ReleaseQos2(id, state.Broker);
        // waits for the release to be durable: after a restart the id must not still look in use
        state.Connection.SendAckWhenDurable(new MqttPubCompPacket
        {
            PacketIdentifier = id,
            ReasonCode = known || !state.IsV5 ? MqttPubCompReasonCode.Success : MqttPubCompReasonCode.PacketIdentifierNotFound,
        });
    }

    public static void HandlePubComp(ConnectionState state, ushort id)
    {
        state.Session!.Acknowledge(id, DeliveryState.AwaitingPubComp, state.Broker);
        state.Connection.Signal();
    }
}
