using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// Moving a session between nodes. <see cref="HandOver"/> ends it here and returns what it held: its connection is closed
/// with 0x8E (3.1.1: closed), its end recorded, its subscriptions leave the trie. <see cref="Adopt"/> rebuilds it on the
/// node it moves to — registry, trie and store, offline until its client resumes it. Which node publishes the will: the
/// one handing over publishes a will that is due at the handover (no delay, or any will when a clean start ends the
/// session); a delayed will moves with the snapshot, pending, and the adopting node publishes it when due unless the
/// client's resume there cancels it first — so it fires once, on one node.
/// </summary>
internal sealed class SessionHandover(MqttBroker broker, SessionRegistry registry, Router router, SessionLifecycle lifecycle)
{
    public SessionSnapshot? HandOver(string clientId, bool cleanStart)
    {
        if (registry.HandOver(clientId, cleanStart, broker.Time.GetUtcNow()) is not { } handed)
        {
            return null;
        }
        if (handed.Previous is { } previous)
        {
            broker.Log.SessionTakenOver(clientId);
            previous.RequestClose(MqttDisconnectReasonCode.SessionTakenOver);
        }
        router.RemoveEnded(handed.Subscriptions, handed.UndeliveredShared);
        if (handed.DueWill is { } will)
        {
            lifecycle.PublishWill(will.Message);
        }
        broker.Log.SessionHandedOver(clientId, handed.Snapshot is not null);
        return handed.Snapshot;
    }

    public void Adopt(SessionSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var session = Build(snapshot);
        var (previous, replaced, will) = registry.Adopt(session, (s, journal) =>
        {
            Record(s, journal);
            foreach (var subscription in s.Subscriptions.Values)
            {
                router.AddRestored(subscription);
            }
        });
        if (previous is not null)
        {
            broker.Log.SessionTakenOver(snapshot.ClientId);
            previous.RequestClose(MqttDisconnectReasonCode.SessionTakenOver);
        }
        if (replaced is not null)
        {
            lifecycle.End(replaced);
        }
        if (will is not null)
        {
            lifecycle.PublishWill(will.Message);
        }
        broker.Log.SessionAdopted(snapshot.ClientId, snapshot.Subscriptions.Count, snapshot.Queued.Count, snapshot.Inflight.Count);
    }

    /// <summary>Copies what <paramref name="s"/> holds; called under its lock (<see cref="Session.HandOver"/>). A live session is offline from <paramref name="now"/>.</summary>
    public static SessionSnapshot Take(Session s, DateTimeOffset now) => new()
    {
        ClientId = s.ClientId,
        Username = s.Identity.Username,
        ExpiryInterval = s.ExpiryInterval,
        DisconnectedAt = s.IsConnected ? now : s.DisconnectedAt ?? now,
        PendingWill = s.PendingWill is { } will && s.WillDueAt is { } due ? new SnapshotWill(will.Message, will.DelaySeconds, due) : null,
        LastPacketId = s.Window.LastPacketId,
        Subscriptions = s.Subscriptions.Values.Select(static x => new StoredSubscription(
            x.Filter, (byte)x.QoS, x.NoLocal, x.RetainAsPublished, (byte)x.RetainHandling, x.SubscriptionIdentifier, x.Filtered)).ToArray(),
        Inflight = s.Window.InSendOrder().Select(static d => ToSnapshot(d) with { PacketId = d.PacketId, State = (StoredDeliveryState)d.State, Sent = d.Sent }).ToArray(),
        Queued = s.Pending.Select(static d => ToSnapshot(d)).ToArray(),
        InboundQos2 = s.InboundQos2.Order().ToArray(),
    };

    static SnapshotDelivery ToSnapshot(Delivery d) => new(d.Message, d.QoS, d.Retain, d.SubscriptionIds?.ToArray(), d.Shared?.Filter);

    /// <summary>The session a snapshot describes, offline since it was taken; not yet shared.</summary>
    static Session Build(SessionSnapshot snapshot)
    {
        var session = new Session(snapshot.ClientId) { ExpiryInterval = snapshot.ExpiryInterval };
        DateTimeOffset? expiresAt = snapshot.ExpiryInterval == uint.MaxValue ? null : snapshot.DisconnectedAt.AddSeconds(snapshot.ExpiryInterval);
        var will = snapshot.PendingWill is { } w ? new Will(Own(w.Message), w.DelaySeconds) : null;
        session.RestoreOffline(new ClientIdentity(snapshot.ClientId, snapshot.Username), snapshot.DisconnectedAt, expiresAt, will, snapshot.PendingWill?.DueAt);
        foreach (var s in snapshot.Subscriptions)
        {
            var shared = TopicValidation.TryParseShared(s.Filter, out var group, out var inner);
            session.Subscriptions[s.Filter] = new Subscription(session, s.Filter, shared ? group : null, inner)
            {
                QoS = (MqttQualityOfServiceLevel)s.QoS,
                NoLocal = s.NoLocal,
                RetainAsPublished = s.RetainAsPublished,
                RetainHandling = (MqttRetainHandling)s.RetainHandling,
                SubscriptionIdentifier = s.SubscriptionIdentifier,
                Filtered = s.Filtered,
            };
            session.NoteSubscriptionAdded();
        }
        foreach (var d in snapshot.Inflight)
        {
            var delivery = ToDelivery(session, d);
            delivery.PacketId = d.PacketId;
            delivery.State = (DeliveryState)d.State;
            delivery.Sent = d.Sent;
            session.Inflight[d.PacketId] = delivery;
            session.Window.StampSendOrder(delivery); // taken in send order
        }
        if (snapshot.LastPacketId != 0)
        {
            session.Window.LastPacketId = snapshot.LastPacketId;
        }
        foreach (var d in snapshot.Queued)
        {
            session.EnqueuePending(ToDelivery(session, d));
        }
        foreach (var id in snapshot.InboundQos2)
        {
            session.InboundQos2.Add(id);
        }
        return session;
    }

    static Delivery ToDelivery(Session session, SnapshotDelivery d) => new(
        Own(d.Message), d.QoS, d.Retain, d.SubscriptionIds?.ToList(),
        d.SharedFilter is { } f && session.Subscriptions.TryGetValue(f, out var shared) ? shared : null);

    /// <summary>Records an adopted session as the store would have it (still unshared): started, offline, then what it holds, in flight first.</summary>
    static void Record(Session session, SessionJournal journal)
    {
        journal.SessionStarted(session, session.ExpiryInterval, session.PendingWill);
        if (!session.Stored)
        {
            return; // a session that ends with its connection is never stored
        }
        journal.SessionOffline(session, session.DisconnectedAt!.Value, session.WillDueAt);
        foreach (var subscription in session.Subscriptions.Values)
        {
            journal.Subscribed(session, subscription);
        }
        foreach (var delivery in session.Window.InSendOrder())
        {
            journal.Enqueued(session, delivery);
            journal.Inflight(session, delivery);
        }
        foreach (var delivery in session.Pending)
        {
            journal.Enqueued(session, delivery);
        }
        foreach (var id in session.InboundQos2)
        {
            journal.InboundQos2(session, id, added: true);
        }
    }

    /// <summary>A copy for this node: its store numbers messages it writes, and the original may be another broker's in this process.</summary>
    static MqttMessage Own(MqttMessage m) => new()
    {
        Topic = m.Topic,
        Payload = m.Payload,
        QoS = m.QoS,
        Retain = m.Retain,
        ContentType = m.ContentType,
        ResponseTopic = m.ResponseTopic,
        CorrelationData = m.CorrelationData,
        PayloadFormat = m.PayloadFormat,
        UserProperties = m.UserProperties,
        PublisherClientId = m.PublisherClientId,
        PublisherUsername = m.PublisherUsername,
        ReceivedAt = m.ReceivedAt,
        ExpiresAt = m.ExpiresAt,
    };
}
