namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>Applies store changes to a <see cref="StoredState"/>: the replay target at load and the live mirror compaction writes out.</summary>
internal sealed class StoreModel
{
    public StoredState State { get; } = new();

    /// <summary>
    /// A copy that later changes leave alone: sessions, subscriptions, deliveries and packet ids are copied, messages
    /// are shared (they do not change once stored). Enumerating it gives the order enumerating <see cref="State"/> gives.
    /// </summary>
    public StoredState Snapshot()
    {
        var copy = new StoredState { NextDeliveryId = State.NextDeliveryId };
        foreach (var (topic, message) in State.Retained)
        {
            copy.Retained.Add(topic, message);
        }
        foreach (var (clientId, session) in State.Sessions)
        {
            var copied = new StoredSession(clientId)
            {
                ExpiryInterval = session.ExpiryInterval,
                Username = session.Username,
                Online = session.Online,
                DisconnectedAt = session.DisconnectedAt,
                Will = session.Will,
                WillDelaySeconds = session.WillDelaySeconds,
                WillDueAt = session.WillDueAt,
            };
            foreach (var (filter, subscription) in session.Subscriptions)
            {
                copied.Subscriptions.Add(filter, subscription);
            }
            foreach (var (deliveryId, d) in session.Deliveries)
            {
                copied.Deliveries.Add(deliveryId, new StoredDelivery
                {
                    DeliveryId = d.DeliveryId,
                    Message = d.Message,
                    QoS = d.QoS,
                    Retain = d.Retain,
                    SubscriptionIds = d.SubscriptionIds,
                    SharedFilter = d.SharedFilter,
                    PacketId = d.PacketId,
                    State = d.State,
                });
            }
            copied.InboundQos2.UnionWith(session.InboundQos2);
            copy.Sessions.Add(clientId, copied);
        }
        return copy;
    }

    public void RetainSet(MqttMessage message)
    {
        if (message.Payload.IsEmpty)
        {
            State.Retained.Remove(message.Topic);
        }
        else
        {
            State.Retained[message.Topic] = message;
        }
    }

    public void RetainClear(string topic) => State.Retained.Remove(topic);

    public void SessionStarted(string clientId, uint expiry, string? username, MqttMessage? will, uint willDelay)
    {
        if (!State.Sessions.TryGetValue(clientId, out var session))
        {
            State.Sessions[clientId] = session = new StoredSession(clientId);
        }
        session.ExpiryInterval = expiry;
        session.Username = username;
        session.Online = true;
        session.DisconnectedAt = null;
        session.Will = will;
        session.WillDelaySeconds = willDelay;
        session.WillDueAt = null;
    }

    public void SessionOffline(string clientId, DateTimeOffset at, DateTimeOffset? willDueAt)
    {
        if (State.Sessions.TryGetValue(clientId, out var session))
        {
            session.Online = false;
            session.DisconnectedAt = at;
            session.WillDueAt = willDueAt;
            if (willDueAt is null)
            {
                session.Will = null;
            }
        }
    }

    public void SessionExpiryChanged(string clientId, uint expiry)
    {
        if (State.Sessions.TryGetValue(clientId, out var session))
        {
            session.ExpiryInterval = expiry;
        }
    }

    public void SessionEnded(string clientId) => State.Sessions.Remove(clientId);

    public void Subscribed(string clientId, StoredSubscription subscription)
    {
        if (State.Sessions.TryGetValue(clientId, out var session))
        {
            session.Subscriptions[subscription.Filter] = subscription;
        }
    }

    public void Unsubscribed(string clientId, string filter)
    {
        if (State.Sessions.TryGetValue(clientId, out var session))
        {
            session.Subscriptions.Remove(filter);
        }
    }

    public void Enqueued(string clientId, StoredDelivery delivery)
    {
        if (delivery.DeliveryId >= State.NextDeliveryId)
        {
            State.NextDeliveryId = delivery.DeliveryId + 1;
        }
        if (State.Sessions.TryGetValue(clientId, out var session))
        {
            session.Deliveries[delivery.DeliveryId] = delivery;
        }
    }

    public void InflightChanged(string clientId, long deliveryId, ushort packetId, StoredDeliveryState state)
    {
        if (State.Sessions.TryGetValue(clientId, out var session) && session.Deliveries.TryGetValue(deliveryId, out var delivery))
        {
            delivery.PacketId = packetId;
            delivery.State = state;
        }
    }

    public void Completed(string clientId, long deliveryId)
    {
        if (State.Sessions.TryGetValue(clientId, out var session))
        {
            session.Deliveries.Remove(deliveryId);
        }
    }

    public void InboundQos2Added(string clientId, ushort packetId)
    {
        if (State.Sessions.TryGetValue(clientId, out var session))
        {
            session.InboundQos2.Add(packetId);
        }
    }

    public void InboundQos2Released(string clientId, ushort packetId)
    {
        if (State.Sessions.TryGetValue(clientId, out var session))
        {
            session.InboundQos2.Remove(packetId);
        }
    }
}
