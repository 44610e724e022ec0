using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>What operations need from a connection: admission, when it connected, why it closed, per-client publish limits.</summary>
internal sealed partial class MqttConnection
{
    PublishLimiter? _publishLimiter;
    MqttDisconnectReasonCode? _closeReason;
    bool _clientSentDisconnect;

    /// <summary>Holds one of the broker's <see cref="BrokerOptions.MaxConnections"/> slots, given back when the connection ends.</summary>
    public bool Admitted { get; set; }

    /// <summary>When CONNECT was accepted; null before.</summary>
    public DateTimeOffset? ConnectedAt { get; private set; }

    /// <summary>Completes when the connection has ended and its session is detached.</summary>
    public TaskCompletionSource Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Why the connection ended: ClientDisconnect, ClientDisconnectWithWill, a server reason code name (KeepAliveTimeout, SessionTakenOver, …) or ConnectionLost.</summary>
    public string CloseReason => _clientSentDisconnect
        ? (_cleanDisconnect ? "ClientDisconnect" : "ClientDisconnectWithWill")
        : _closeReason?.ToString() ?? "ConnectionLost";

    public bool CleanDisconnect => _cleanDisconnect;

    void OnConnectAccepted()
    {
        ConnectedAt = _broker.Time.GetUtcNow();
        _publishLimiter = PublishLimiter.Create(_broker.Options, _broker.Time);
    }

    /// <summary>Applies the per-client publish limits; null when the publish may go on, else what HandlePublishAsync returns.</summary>
    ValueTask<bool>? CheckPublishLimit(MqttQualityOfServiceLevel qos, ushort packetId, long payloadBytes, InboundQos2Claim? claim)
    {
        var decision = _publishLimiter!.Check(payloadBytes);
        if (decision == PublishLimitDecision.Allowed)
        {
            return null;
        }
        _broker.Metrics.CountPublishRefused(_publishLimiter.LastRefusalWasBytes ? PublishRefusal.ByteRate : PublishRefusal.MessageRate);
        if (decision == PublishLimitDecision.Disconnect)
        {
            _broker.Metrics.CountLimitDisconnect();
            _broker.Log.PublishLimitExceeded(ClientId);
            RequestClose(MqttDisconnectReasonCode.QuotaExceeded, lingerForPeer: true);
            if (claim is not null)
            {
                // never acknowledged: the resend after reconnecting must be routed, not taken for a duplicate
                RefuseQos2(packetId, claim);
            }
            return ValueTask.FromResult(false);
        }
        if (qos == MqttQualityOfServiceLevel.AtMostOnce)
        {
            return ValueTask.FromResult(true); // nothing to acknowledge: dropped
        }
        // acknowledged in order with 0x97; a 3.1.1 client cannot be refused and is closed unacknowledged (it resends later)
        return EnqueueInbound(new InboundEntry(null, qos, packetId, null, AcceptResult.QuotaExceeded, 0, claim));
    }
}
