using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>Rebuilds retained messages and persistent sessions from the durable store at start-up.</summary>
public sealed partial class MqttBroker
{
    // The Record* helpers run under the session's lock, so the log sees a session's changes in the order they happen.

    internal void RecordInflight(Session session, Delivery delivery)
    {
        if (delivery.DeliveryId != 0)
        {
            Store?.InflightChanged(session.ClientId, delivery.DeliveryId, delivery.PacketId, (StoredDeliveryState)delivery.State);
        }
    }

    internal void RecordCompleted(Session session, Delivery delivery)
    {
        if (delivery.DeliveryId != 0)
        {
            Store?.Completed(session.ClientId, delivery.DeliveryId);
        }
    }

    internal void RecordInboundQos2(Session session, ushort packetId, bool added)
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

    void Restore(StoredState state)
    {
        var now = Time.GetUtcNow();
        foreach (var message in state.Retained.Values)
        {
            if (!message.IsExpired(now))
            {
                Retained.Set(message);
            }
        }
        _nextDeliveryId = state.NextDeliveryId;
        foreach (var stored in state.Sessions.Values.ToList())
        {
            if (stored.ExpiryInterval == 0)
            {
                // a session that ends with its connection: the crash ended it
                Store!.SessionEnded(stored.ClientId);
                continue;
            }
            var session = new Session(stored.ClientId)
            {
                Identity = new ClientIdentity(stored.ClientId, stored.Username),
                ExpiryInterval = stored.ExpiryInterval,
                Stored = true,
            };
            // a session that was online when the broker stopped lost its connection now
            var offlineSince = stored.Online ? now : stored.DisconnectedAt ?? now;
            session.DisconnectedAt = offlineSince;
            session.ExpiresAt = stored.ExpiryInterval == uint.MaxValue ? null : offlineSince.AddSeconds(stored.ExpiryInterval);
            if (stored.Will is { } will && (stored.Online || stored.WillDueAt is not null))
            {
                session.PendingWill = new Will(will, stored.WillDelaySeconds);
                session.WillDueAt = stored.Online ? now.AddSeconds(Math.Min(stored.WillDelaySeconds, stored.ExpiryInterval)) : stored.WillDueAt;
            }
            foreach (var s in stored.Subscriptions.Values)
            {
                var shared = TopicValidation.TryParseShared(s.Filter, out var group, out var inner);
                var subscription = new Subscription(session, s.Filter, shared ? group : null, inner)
                {
                    QoS = (MqttQualityOfServiceLevel)s.QoS,
                    NoLocal = s.NoLocal,
                    RetainAsPublished = s.RetainAsPublished,
                    RetainHandling = (MqttRetainHandling)s.RetainHandling,
                    SubscriptionIdentifier = s.SubscriptionIdentifier,
                    Filtered = s.Filtered,
                };
                session.Subscriptions[s.Filter] = subscription;
                session.NoteSubscriptionAdded();
                _trie.Add(subscription);
            }
            foreach (var (_, d) in stored.Deliveries)
            {
                var shared = d.SharedFilter is { } f && session.Subscriptions.TryGetValue(f, out var sub) ? sub : null;
                var delivery = new Delivery(d.Message, (MqttQualityOfServiceLevel)d.QoS, d.Retain, d.SubscriptionIds?.ToList(), shared)
                {
                    DeliveryId = d.DeliveryId,
                    PacketId = d.PacketId,
                    Sent = d.State != StoredDeliveryState.Queued,
                    State = (DeliveryState)d.State,
                };
                if (d.State == StoredDeliveryState.Queued)
                {
                    session.EnqueuePending(delivery);
                }
                else
                {
                    session.Inflight[d.PacketId] = delivery;
                    session.StampSendOrder(delivery); // stored deliveries come back in the order they were queued
                }
            }
            foreach (var id in stored.InboundQos2)
            {
                session.InboundQos2.Add(id);
            }
            _sessions[session.ClientId] = session;
            _offline.Add(session);
            if (stored.Online)
            {
                Store!.SessionOffline(session.ClientId, offlineSince, session.WillDueAt);
            }
        }
    }
}
