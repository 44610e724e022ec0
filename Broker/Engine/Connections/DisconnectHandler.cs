using IotRealtime.Broker.Engine.Routing;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>A client's DISCONNECT: whether its will is sent, and an MQTT 5 session expiry it may change on the way out.</summary>
internal static class DisconnectHandler
{
    public static void Handle(ConnectionState state, MqttDisconnectPacket disconnect, ArraySegment<byte> body)
    {
        state.ClientSentDisconnect = true;
        if (state.IsV5)
        {
            // MQTTnet reports an absent Session Expiry Interval as 0; read the property itself to tell them apart
            if (body.Count > 1 && MqttProperties.TryFind(body.AsSpan(), 1, MqttProperties.SessionExpiryInterval, out var expiry))
            {
                if (state.ConnectSessionExpiry == 0 && expiry != 0)
                {
                    // MQTT-3.14.2-2: cannot turn a non-persistent session into a persistent one
                    throw new MqttProtocolError(MqttDisconnectReasonCode.ProtocolError, "Session expiry set on DISCONNECT after CONNECT asked for 0.");
                }
                state.Broker.UpdateSessionExpiry(state.Session!, Math.Min(expiry, state.Broker.Options.MaxSessionExpiryInterval));
            }
            state.CleanDisconnect = disconnect.ReasonCode != MqttDisconnectReasonCode.DisconnectWithWillMessage;
        }
        else
        {
            state.CleanDisconnect = true;
        }
    }
}
