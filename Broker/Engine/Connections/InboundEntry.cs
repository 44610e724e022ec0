using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>A publish between receipt and acknowledgement. <see cref="Message"/> is null for an acknowledgement-only entry (QoS 2 duplicate, denied publish).</summary>
internal sealed class InboundEntry(MqttMessage? message, MqttQualityOfServiceLevel qos, ushort packetId, Task<AcceptResult>? pending, AcceptResult result, byte deniedReason,
    InboundQos2Claim? claim = null)
{
    /// <summary>Set to null by the accept stage of a QoS 2 resend whose first copy was routed: acknowledged only.</summary>
    public MqttMessage? Message { get; set; } = message;
    public MqttQualityOfServiceLevel QoS { get; } = qos;
    public ushort PacketId { get; } = packetId;
    public Task<AcceptResult>? Pending { get; set; } = pending;
    public AcceptResult Result { get; } = result;
    /// <summary>Non-zero: a refusal decided before the accept stage (e.g. 0x87 not authorized).</summary>
    public byte DeniedReason { get; } = deniedReason;
    /// <summary>QoS 2: this publish's claim on its packet id, decided when the entry completes or is abandoned.</summary>
    public InboundQos2Claim? Claim { get; set; } = claim;
}
