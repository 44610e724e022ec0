using IotRealtime.Broker.Engine.Persistence;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// Records the engine's changes to retained messages and persistent sessions in the durable store: the only part of the
/// engine that writes to <see cref="IBrokerStore"/>. Without a store every call does nothing. Session changes are
/// recorded by their callers under the session's lock, so the log sees a session's changes in the order they happen.
/// </summary>
internal sealed class SessionJournal(IBrokerStore? store)
{
    long _nextDeliveryId;

    public IBrokerStore? Store { get; } = store;

    /// <summary>Reads the stored state back at start-up and continues its delivery ids.</summary>
    public StoredState? Load()
    {
        if (Store is null)
        {
            return null;
        }
        var state = Store.Load();
        _nextDeliveryId = state.NextDeliveryId;
        return state;
    }

    public void RetainSet(MqttMessage message) => Store?.RetainSet(message);

    public void RetainClear(string topic) => Store?.RetainClear(topic);

    /// <summary>Records a session that outlives its connection (or one that did, and is restarted). Caller holds the sessions lock and the session's.</summary>
    public void SessionStarted(Session session, uint expiryInterval, Will? will)
    {
        if (Store is not null && (expiryInterval > 0 || session.Stored))
        {
            Store.SessionStarted(session.ClientId, expiryInterval, session.Identity.Username, will?.Message, will?.DelaySeconds ?? 0);
            session.Stored = true;
        }
    }

    public void SessionOffline(Session session, DateTimeOffset at, DateTimeOffset? willDueAt)
    {
        if (Store is not null && session.Stored)
        {
            Store.SessionOffline(session.ClientId, at, willDueAt);
        }
    }

    public void SessionExpiryChanged(Session session, uint expiryInterval)
    {
        if (Store is not null && session.Stored)
        {
            Store.SessionExpiryChanged(session.ClientId, expiryInterval);
        }
    }

    public void SessionEnded(Session session)
    {
        if (Store is not null && session.Stored)
        {
            Store.SessionEnded(session.ClientId);
            session.Stored = false;
        }
    }

    /// <summary>A stored session found at start-up that a restart ends (zero expiry interval).</summary>
    public void StoredSessionEnded(string clientId) => Store?.SessionEnded(clientId);

    /// <summary>A stored session that was online when the broker stopped: it went offline at <paramref name="at"/>.</summary>
    public void StoredSessionOffline(string clientId, DateTimeOffset at, DateTimeOffset? willDueAt) => Store?.SessionOffline(clientId, at, willDueAt);

    public void Subscribed(Session session, Subscription subscription)
    {
        if (Store is not null && session.Stored)
        {
            Store.Subscribed(session.ClientId, new StoredSubscription(
                subscription.Filter, (byte)subscription.QoS, subscription.NoLocal, subscription.RetainAsPublished, (byte)subscription.RetainHandling,
                subscription.SubscriptionIdentifier, subscription.Filtered));
        }
    }

    public void Unsubscribed(Session session, string filter)
    {
        if (Store is not null && session.Stored)
        {
            Store.Unsubscribed(session.ClientId, filter);
        }
    }

    /// <summary>Records a QoS 1/2 delivery to a stored session. Called under the session's lock, so the log order is the queue order.</summary>
    public void Enqueued(Session session, Delivery delivery)
    {
        if (Store is null || !session.Stored || delivery.QoS == MqttQualityOfServiceLevel.AtMostOnce)
        {
            return;
        }
        delivery.DeliveryId = Interlocked.Increment(ref _nextDeliveryId);
        Store.Enqueued(session.ClientId, new StoredDelivery
        {
            DeliveryId = delivery.DeliveryId,
            Message = delivery.Message,
            QoS = (byte)delivery.QoS,
            Retain = delivery.Retain,
            SubscriptionIds = delivery.SubscriptionIds?.ToArray(),
            SharedFilter = delivery.Shared?.Filter,
        });
    }

    public void Inflight(Session session, Delivery delivery)
    {
        if (delivery.DeliveryId != 0)
        {
            Store?.InflightChanged(session.ClientId, delivery.DeliveryId, delivery.PacketId, (StoredDeliveryState)delivery.State);
        }
    }

    public void Completed(Session session, Delivery delivery)
    {
        if (delivery.DeliveryId != 0)
        {
            Store?.Completed(session.ClientId, delivery.DeliveryId);
        }
    }

    public void InboundQos2(Session session, ushort packetId, bool added)
    {
        if (Store is not null && session.Stored)
        {
            if (added)
            {
                Store.InboundQos2Added(session.ClientId, packetId);
            }
            else
            {
                Store.InboundQos2Released(session.ClientId, packetId);
            }
        }
    }

    /// <summary>Flushes and closes the store: called last, once connections are closed and their last changes recorded.</summary>
    public ValueTask DisposeAsync() => Store?.DisposeAsync() ?? ValueTask.CompletedTask;
}
