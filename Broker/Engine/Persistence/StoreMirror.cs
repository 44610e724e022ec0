namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>
/// The in-memory mirror: the live state (a <see cref="StoreModel"/>, filled by the replay) kept in step with the log.
/// Each change is encoded, appended to the <see cref="LogWriter"/> and applied to the state under one lock, so the
/// state at any moment is exactly what replaying the log up to its position gives. Compaction writes out a copy of
/// it taken with the position it stands for (<see cref="Capture"/>); <see cref="IBrokerStore.Load"/> returns it.
/// </summary>
internal sealed class StoreMirror(StoreModel model, long nextMessageId, LogWriter log)
{
    readonly Lock _lock = new();
    readonly RecordEncoder _encoder = new();
    readonly RecordEncoder _messageEncoder = new();
    long _nextMessageId = nextMessageId;

    public StoredState State
    {
        get
        {
            lock (_lock)
            {
                return model.State;
            }
        }
    }

    /// <summary>A copy of the live state and the log mark it stands for; on the writer thread, between writes (see <see cref="LogWriter.Mark"/>).</summary>
    public (StoredState State, LogMark Mark) Capture()
    {
        lock (_lock)
        {
            return (model.Snapshot(), log.Mark());
        }
    }

    public long RetainSet(MqttMessage message) =>
        Append(RecordType.RetainSet, w => StoreRecords.WriteMessage(w, message), m => m.RetainSet(message));

    public long RetainClear(string topic) => Append(RecordType.RetainClear, w => w.Write(topic), m => m.RetainClear(topic));

    public long SessionStarted(string clientId, uint expiryInterval, string? username, MqttMessage? will, uint willDelaySeconds) =>
        Append(RecordType.SessionStarted, w => StoreRecords.WriteSessionStarted(w, clientId, expiryInterval, username, will, willDelaySeconds),
            m => m.SessionStarted(clientId, expiryInterval, username, will, willDelaySeconds));

    public long SessionOffline(string clientId, DateTimeOffset at, DateTimeOffset? willDueAt) =>
        Append(RecordType.SessionOffline, w => StoreRecords.WriteSessionOffline(w, clientId, at, willDueAt), m => m.SessionOffline(clientId, at, willDueAt));

    public long SessionExpiryChanged(string clientId, uint expiryInterval) =>
        Append(RecordType.SessionExpiryChanged, w => { w.Write(clientId); w.Write(expiryInterval); }, m => m.SessionExpiryChanged(clientId, expiryInterval));

    public long SessionEnded(string clientId) => Append(RecordType.SessionEnded, w => w.Write(clientId), m => m.SessionEnded(clientId));

    public long Subscribed(string clientId, StoredSubscription subscription) =>
        Append(RecordType.Subscribed, w => { w.Write(clientId); StoreRecords.WriteSubscription(w, subscription); }, m => m.Subscribed(clientId, subscription));

    public long Unsubscribed(string clientId, string filter) =>
        Append(RecordType.Unsubscribed, w => { w.Write(clientId); w.Write(filter); }, m => m.Unsubscribed(clientId, filter));

    public long InboundQos2Added(string clientId, ushort packetId) =>
        Append(RecordType.InboundQos2Added, w => { w.Write(clientId); w.Write(packetId); }, m => m.InboundQos2Added(clientId, packetId));

    public long InboundQos2Released(string clientId, ushort packetId) =>
        Append(RecordType.InboundQos2Released, w => { w.Write(clientId); w.Write(packetId); }, m => m.InboundQos2Released(clientId, packetId));

    // the per-message records below are written without delegates: they are the store's hot path

    public long Enqueued(string clientId, StoredDelivery delivery)
    {
        lock (_lock)
        {
            var message = ReadOnlySpan<byte>.Empty;
            if (delivery.Message.StoreId == 0)
            {
                // the message itself is written once, however many persistent sessions queue it
                delivery.Message.StoreId = _nextMessageId++;
                var m = _messageEncoder.Begin(RecordType.Message);
                m.Write(delivery.Message.StoreId);
                StoreRecords.WriteMessage(m, delivery.Message);
                message = _messageEncoder.End();
            }
            var w = _encoder.Begin(RecordType.Enqueued);
            w.Write(clientId);
            StoreRecords.WriteDelivery(w, delivery);
            var position = log.Append(message, _encoder.End());
            model.Enqueued(clientId, delivery);
            return position;
        }
    }

    public long InflightChanged(string clientId, long deliveryId, ushort packetId, StoredDeliveryState state)
    {
        lock (_lock)
        {
            var w = _encoder.Begin(RecordType.InflightChanged);
            w.Write(clientId);
            w.Write(deliveryId);
            w.Write(packetId);
            w.Write((byte)state);
            var position = log.Append(_encoder.End());
            model.InflightChanged(clientId, deliveryId, packetId, state);
            return position;
        }
    }

    public long Completed(string clientId, long deliveryId)
    {
        lock (_lock)
        {
            var w = _encoder.Begin(RecordType.Completed);
            w.Write(clientId);
            w.Write(deliveryId);
            var position = log.Append(_encoder.End());
            model.Completed(clientId, deliveryId);
            return position;
        }
    }

    long Append(RecordType type, Action<BinaryWriter> write, Action<StoreModel> apply)
    {
        lock (_lock)
        {
            write(_encoder.Begin(type));
            var position = log.Append(_encoder.End());
            apply(model);
            return position;
        }
    }
}
