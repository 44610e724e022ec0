namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>
/// Durable broker state: retained messages and persistent sessions (subscriptions, queued and in-flight QoS 1/2
/// deliveries, inbound QoS 2 packet ids, wills and expiry). The engine reports every change, in the order it makes it;
/// each call returns the log position just after the change. The engine sends an acknowledgement (PUBACK, PUBREC,
/// PUBCOMP, SUBACK, UNSUBACK) only once <see cref="IsDurable"/> holds for the position reached when it decided to
/// send it, so whatever was acknowledged is in the store as <see cref="StoreOptions.Durability"/> defines.
/// <see cref="Load"/> returns the state after replaying every durable change; a change not yet durable when the
/// process died may be missing, but never one the client saw acknowledged. Sessions with a zero expiry interval are
/// never reported. Implementations: <see cref="EmbeddedBrokerStore"/> (log files under the data directory) and
/// <see cref="InMemoryBrokerStore"/> (keeps the model in memory); both pass one contract test suite.
/// </summary>
public interface IBrokerStore : IAsyncDisposable
{
    StoredState Load();

    long RetainSet(MqttMessage message);
    long RetainClear(string topic);

    long SessionStarted(string clientId, uint expiryInterval, string? username, MqttMessage? will, uint willDelaySeconds);
    long SessionOffline(string clientId, DateTimeOffset at, DateTimeOffset? willDueAt);
    long SessionExpiryChanged(string clientId, uint expiryInterval);
    long SessionEnded(string clientId);

    long Subscribed(string clientId, StoredSubscription subscription);
    long Unsubscribed(string clientId, string filter);

    long Enqueued(string clientId, StoredDelivery delivery);
    long InflightChanged(string clientId, long deliveryId, ushort packetId, StoredDeliveryState state);
    long Completed(string clientId, long deliveryId);

    long InboundQos2Added(string clientId, ushort packetId);
    long InboundQos2Released(string clientId, ushort packetId);

    /// <summary>Position after the last change reported.</summary>
    long Position { get; }

    /// <summary>
    /// Whether every change up to <paramref name="position"/> is in the store as the durability policy defines (the
    /// operating system confirmed the write, and its fsync under Fsync). Once a write has failed (<see cref="Healthy"/>
    /// false) no position past the last confirmed write is ever durable again, whatever is reported later.
    /// </summary>
    bool IsDurable(long position);

    /// <summary>
    /// Completes once <paramref name="position"/> is durable; faults with an <see cref="IOException"/> when the store
    /// cannot write (or was disposed) before it is, and at once for any such position after a failure.
    /// </summary>
    ValueTask WaitDurableAsync(long position, CancellationToken cancellationToken = default);

    /// <summary>False after a write failed, for good (until a restart): /readyz reports it.</summary>
    bool Healthy { get; }
}
