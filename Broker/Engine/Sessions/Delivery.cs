using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Sessions;

internal enum DeliveryState : byte
{
    Queued,
    /// <summary>QoS 1 PUBLISH sent, waiting for PUBACK.</summary>
    AwaitingPubAck,
    /// <summary>QoS 2 PUBLISH sent, waiting for PUBREC.</summary>
    AwaitingPubRec,
    /// <summary>QoS 2 PUBREL sent, waiting for PUBCOMP.</summary>
    AwaitingPubComp,
}

/// <summary>One message on its way to one session: the shared message plus what this subscriber gets.</summary>
internal sealed class Delivery(MqttMessage message, MqttQualityOfServiceLevel qos, bool retain, List<uint>? subscriptionIds, Subscription? shared)
{
    public MqttMessage Message { get; } = message;
    public MqttQualityOfServiceLevel QoS { get; } = qos;
    public bool Retain { get; } = retain;
    public List<uint>? SubscriptionIds { get; } = subscriptionIds;
    /// <summary>The shared subscription this came through, so it can be handed to another member if this session ends.</summary>
    public Subscription? Shared { get; } = shared;
    public ushort PacketId { get; set; }
    public DeliveryState State { get; set; }
    /// <summary>Sent at least once: a resend carries DUP=1.</summary>
    public bool Sent { get; set; }

    /// <summary>Id in the durable store; 0 when the delivery is not persisted (QoS 0, or a session that does not outlive its connection).</summary>
    public long DeliveryId { get; set; }

    /// <summary>Order in which the delivery was put in flight, for resending in the same order after a reconnect.</summary>
    public long SendOrder { get; set; }
}
