using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>A client broke the protocol: the connection is closed, with this reason code where the version allows.</summary>
internal sealed class MqttProtocolError(MqttDisconnectReasonCode reasonCode, string message) : Exception(message)
{
    public MqttDisconnectReasonCode ReasonCode { get; } = reasonCode;
}
