namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>
/// Keeps the store model in memory only: every position is durable at once. It defines the contract's reference
/// behaviour (the shared contract suite runs against it and <see cref="EmbeddedBrokerStore"/>) and backs tests.
/// </summary>
public sealed class InMemoryBrokerStore : IBrokerStore
{
    readonly StoreModel _model = new();
    readonly Lock _lock = new();
    long _position;

    public StoredState Load()
    {
        lock (_lock)
        {
            return _model.State;
        }
    }

    long Apply(Action<StoreModel> change)
    {
        lock (_lock)
        {
            change(_model);
            return ++_position;
        }
    }

    public long RetainSet(MqttMessage message) => Apply(m => m.RetainSet(message));
    public long RetainClear(string topic) => Apply(m => m.RetainClear(topic));
    public long SessionStarted(string clientId, uint expiryInterval, string? username, MqttMessage? will, uint willDelaySeconds) =>
        Apply(m => m.SessionStarted(clientId, expiryInterval, username, will, willDelaySeconds));
    public long SessionOffline(string clientId, DateTimeOffset at, DateTimeOffset? willDueAt) => Apply(m => m.SessionOffline(clientId, at, willDueAt));
    public long SessionExpiryChanged(string clientId, uint expiryInterval) => Apply(m => m.SessionExpiryChanged(clientId, expiryInterval));
    public long SessionEnded(string clientId) => Apply(m => m.SessionEnded(clientId));
    public long Subscribed(string clientId, StoredSubscription subscription) => Apply(m => m.Subscribed(clientId, subscription));
    public long Unsubscribed(string clientId, string filter) => Apply(m => m.Unsubscribed(clientId, filter));
    public long Enqueued(string clientId, StoredDelivery delivery) => Apply(m => m.Enqueued(clientId, delivery));
    public long InflightChanged(string clientId, long deliveryId, ushort packetId, StoredDeliveryState state) =>
        Apply(m => m.InflightChanged(clientId, deliveryId, packetId, state));
    public long Completed(string clientId, long deliveryId) => Apply(m => m.Completed(clientId, deliveryId));
    public long InboundQos2Added(string clientId, ushort packetId) => Apply(m => m.InboundQos2Added(clientId, packetId));
    public long InboundQos2Released(string clientId, ushort packetId) => Apply(m => m.InboundQos2Released(clientId, packetId));

    public long Position
    {
        get
        {
            lock (_lock)
            {
                return _position;
            }
        }
    }

    public bool IsDurable(long position) => true;
    public ValueTask WaitDurableAsync(long position, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
    public bool Healthy => true;
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
