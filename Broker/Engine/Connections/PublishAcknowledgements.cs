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
    public static void HandlePubAck(ConnectionState state, ushort id)
    {
        var session = state.Session!;
        var broker = state.Broker;
        lock (session)
        {
            if (session.Inflight.TryGetValue(id, out var d) && d.State == DeliveryState.AwaitingPubAck)
            {
                session.Inflight.Remove(id);
                broker.RecordCompleted(session, d);
            }
        }
        state.Connection.Signal();
    }

    public static void HandlePubRec(ConnectionState state, MqttPubRecPacket rec)
    {
        var session = state.Session!;
        var broker = state.Broker;
        var found = false;
        lock (session)
        {
            if (session.Inflight.TryGetValue(rec.PacketIdentifier, out var d) && d.State is DeliveryState.AwaitingPubRec or DeliveryState.AwaitingPubComp)
            {
                found = true;
                if ((int)rec.ReasonCode >= 0x80)
                {
                    session.Inflight.Remove(rec.PacketIdentifier);
                    broker.RecordCompleted(session, d);
                    state.Connection.Signal();
                    return;
                }
                if (d.State != DeliveryState.AwaitingPubComp)
                {
                    d.State = DeliveryState.AwaitingPubComp;
                    broker.RecordInflight(session, d);
                }
            }
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
        var session = state.Session!;
        var broker = state.Broker;
        bool known;
        lock (session)
        {
            known = session.InboundQos2.Remove(id);
            if (known)
            {
                broker.RecordInboundQos2(session, id, added: false);
            }
        }
        // waits for the release to be durable: after a restart the id must not still look in use
        state.Connection.SendAckWhenDurable(new MqttPubCompPacket
        {
            PacketIdentifier = id,
            ReasonCode = known || !state.IsV5 ? MqttPubCompReasonCode.Success : MqttPubCompReasonCode.PacketIdentifierNotFound,
        });
    }

    public static void HandlePubComp(ConnectionState state, ushort id)
    {
        var session = state.Session!;
        var broker = state.Broker;
        lock (session)
        {
            if (session.Inflight.TryGetValue(id, out var d) && d.State == DeliveryState.AwaitingPubComp)
            {
                session.Inflight.Remove(id);
                broker.RecordCompleted(session, d);
            }
        }
        state.Connection.Signal();
    }
}
