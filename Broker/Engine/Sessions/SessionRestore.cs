using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Engine.Retained;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>Rebuilds retained messages and persistent sessions from the durable store at start-up, before any connection.</summary>
internal static class SessionRestore
{
    public static void Restore(StoredState state, DateTimeOffset now, IRetainedStore retained, SessionJournal journal, SessionRegistry registry, Router router)
    {
        foreach (var message in state.Retained.Values)
        {
            if (!message.IsExpired(now))
            {
                retained.Set(message);
            }
        }
        foreach (var stored in state.Sessions.Values.ToList())
        {
            if (stored.ExpiryInterval == 0)
            {
                // a session that ends with its connection: the crash ended it
                journal.StoredSessionEnded(stored.ClientId);
                continue;
            }
            var session = ToSession(stored, now, router, out var offlineSince);
            registry.AddRestored(session);
            if (stored.Online)
            {
                journal.StoredSessionOffline(session.ClientId, offlineSince, session.WillDueAt);
            }
        }
    }

    static Session ToSession(StoredSession stored, DateTimeOffset now, Router router, out DateTimeOffset offlineSince)
    {
        var session = new Session(stored.ClientId)
        {
            ExpiryInterval = stored.ExpiryInterval,
            Stored = true,
        };
        var identity = new ClientIdentity(stored.ClientId, stored.Username);
        // a session that was online when the broker stopped lost its connection now
        offlineSince = stored.Online ? now : stored.DisconnectedAt ?? now;
        var expiresAt = stored.ExpiryInterval == uint.MaxValue ? (DateTimeOffset?)null : offlineSince.AddSeconds(stored.ExpiryInterval);
        if (stored.Will is { } will && (stored.Online || stored.WillDueAt is not null))
        {
            var willDueAt = stored.Online ? now.AddSeconds(Math.Min(stored.WillDelaySeconds, stored.ExpiryInterval)) : stored.WillDueAt;
            session.RestoreOffline(identity, offlineSince, expiresAt, new Will(will, stored.WillDelaySeconds), willDueAt);
        }
        else
        {
            session.RestoreOffline(identity, offlineSince, expiresAt, null, null);
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
            router.AddRestored(subscription);
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
                session.Window.StampSendOrder(delivery); // stored deliveries come back in the order they were queued
            }
        }
        foreach (var id in stored.InboundQos2)
        {
            session.InboundQos2.Add(id);
        }
        return session;
    }
}
