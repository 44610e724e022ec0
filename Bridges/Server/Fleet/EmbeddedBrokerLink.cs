using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Security;
using MQTTnet.Protocol;

namespace IotRealtime.Bridges.Fleet;

/// <summary>The bridges inside the broker process: everything comes straight from the engine.</summary>
public sealed class EmbeddedBrokerLink(MqttBroker broker, IMqttAuthorizer authorizer, TimeProvider time) : IBrokerLink
{
    public IMqttAuthorizer Authorizer => authorizer;

    public bool IsDraining => broker.IsDraining;

    public TimeSpan DrainWindow => broker.GetDrainStatus()?.Window ?? TimeSpan.Zero;

    public long MessagesReceived => broker.MessagesReceived;

    public IReadOnlyList<FleetClient> GetOnline() =>
        broker.GetClients().Select(c => new FleetClient(c.ClientId, c.Username, c.ConnectedAt, c.Transport)).ToList();

    public IDisposable SubscribePresence(Action<PresenceEvent> onEvent)
    {
        var subscription = broker.SubscribePresence();
        _ = PumpAsync(subscription, onEvent);
        return subscription;
    }

    static async Task PumpAsync(PresenceSubscription subscription, Action<PresenceEvent> onEvent)
    {
        // ends when the subscription is disposed (its channel completes)
        await foreach (var e in subscription.ReadAllAsync().ConfigureAwait(false))
        {
            onEvent(e);
        }
    }

    public async ValueTask<PublishOutcome> PublishAsync(ClientIdentity publisher, string topic, ReadOnlyMemory<byte> payload, int qos, bool retain, CancellationToken cancellationToken)
    {
        var message = new MqttMessage
        {
            Topic = topic,
            Payload = payload.ToArray(),
            QoS = (MqttQualityOfServiceLevel)qos,
            Retain = retain,
            PublisherClientId = publisher.ClientId,
            PublisherUsername = publisher.Username,
            ReceivedAt = time.GetUtcNow(),
        };
        var result = await broker.PublishThroughPipelineAsync(message).ConfigureAwait(false);
        return result == AcceptResult.Accepted ? PublishOutcome.Accepted : PublishOutcome.Refused(result switch
        {
            AcceptResult.QuotaExceeded => "quota exceeded",
            AcceptResult.ServerBusy => "server busy",
            _ => "not accepted",
        });
    }
}
