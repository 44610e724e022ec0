using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;

namespace IotRealtime.Broker.Tests.Infrastructure;

/// <summary>
/// The in-memory store behind every member, for test stores that change only a few of them (durability, a record
/// they watch): override those, the rest forward.
/// </summary>
public abstract class ForwardingBrokerStore : IBrokerStore
{
    protected InMemoryBrokerStore Inner { get; } = new();

    public virtual StoredState Load() => Inner.Load();
    public virtual long RetainSet(MqttMessage message) => Inner.RetainSet(message);
    public virtual long RetainClear(string topic) => Inner.RetainClear(topic);
    public virtual long SessionStarted(string clientId, uint expiryInterval, string? username, MqttMessage? will, uint willDelaySeconds) =>
        Inner.SessionStarted(clientId, expiryInterval, username, will, willDelaySeconds);
    public virtual long SessionOffline(string clientId, DateTimeOffset at, DateTimeOffset? willDueAt) => Inner.SessionOffline(clientId, at, willDueAt);
    public virtual long SessionExpiryChanged(string clientId, uint expiryInterval) => Inner.SessionExpiryChanged(clientId, expiryInterval);
    public virtual long SessionEnded(string clientId) => Inner.SessionEnded(clientId);
    public virtual long Subscribed(string clientId, StoredSubscription subscription) => Inner.Subscribed(clientId, subscription);
    public virtual long Unsubscribed(string clientId, string filter) => Inner.Unsubscribed(clientId, filter);
    public virtual long Enqueued(string clientId, StoredDelivery delivery) => Inner.Enqueued(clientId, delivery);
    public virtual long InflightChanged(string clientId, long deliveryId, ushort packetId, StoredDeliveryState state) =>
        Inner.InflightChanged(clientId, deliveryId, packetId, state);
    public virtual long Completed(string clientId, long deliveryId) => Inner.Completed(clientId, deliveryId);
    public virtual long InboundQos2Added(string clientId, ushort packetId) => Inner.InboundQos2Added(clientId, packetId);
    public virtual long InboundQos2Released(string clientId, ushort packetId) => Inner.InboundQos2Released(clientId, packetId);
    public virtual long Position => Inner.Position;
    public virtual bool IsDurable(long position) => Inner.IsDurable(position);
    public virtual ValueTask WaitDurableAsync(long position, CancellationToken cancellationToken = default) => Inner.WaitDurableAsync(position, cancellationToken);
    public virtual bool Healthy => Inner.Healthy;
    public virtual ValueTask DisposeAsync() => Inner.DisposeAsync();
}
