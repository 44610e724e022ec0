using IotRealtime.Broker.Engine.Cluster;
using IotRealtime.Broker.Engine.Retained;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Routing;

/// <summary>
/// Routing: the subscription trie, fan-out of a message to every matching subscription (one delivery per session at
/// the highest QoS, one member per shared group), retained messages at subscribe time, and the hand-over of a leaving
/// shared member's messages. Each match ends in one <see cref="IDeliveryTarget.Deliver"/> call. The fan-out path
/// allocates only the deliveries themselves (no LINQ, no closures) unless one session matched twice.
/// </summary>
internal sealed class Router(MqttBroker broker, IRetainedStore retained, SessionJournal journal, IClusterLink? cluster = null)
{
    readonly SubscriptionTrie _trie = new();
    // null on a single node: the only cost of clustering there is the null checks below
    readonly LocalRouteCounts? _routes = cluster is null ? null : new LocalRouteCounts(cluster);

    public int SubscriptionCount => _trie.Count;

    /// <summary>Stores a retained message and hands the message to every matching subscription.</summary>
    /// <param name="origin">The connection whose reader is routing this, if any: signals to subscribers are then sent once per read batch.</param>
    public void Route(MqttMessage message, MqttConnection? origin = null)
    {
        if (message.Retain && broker.Options.RetainAvailable)
        {
            retained.Set(message);
            journal.RetainSet(message);
        }
        // a connection routes one message at a time (its reader, or its accept-stage pump under the same lock): it lends a list
        var matches = origin?.RouteScratch ?? new List<Subscription>();
        _trie.Match(message.Topic, matches);
        try
        {
            DeliverToMatches(message, matches, origin);
        }
        finally
        {
            matches.Clear(); // the lent list must not keep subscriptions (and their sessions) alive
        }
        cluster?.Offer(message);
    }

    /// <summary>
    /// Routes a message another node accepted: local subscriptions only, not offered to the cluster again, not stored
    /// (the cluster stores a retained one with <see cref="StoreRetainedFromPeer"/> when it wins). Shared subscriptions get
    /// it only for the groups the accepting node picked this node for.
    /// </summary>
    public void RouteFromPeer(MqttMessage message, IReadOnlyList<ClusterRoute>? sharedGroups)
    {
        // peers' messages are routed on their links' receive threads, one message at a time per thread: one list each
        var matches = t_peerScratch ??= [];
        _trie.Match(message.Topic, matches);
        try
        {
            for (var i = matches.Count - 1; i >= 0; i--)
            {
                if (matches[i].ShareGroup is { } group && !Picked(sharedGroups, matches[i].TopicFilter, group))
                {
                    matches.RemoveAt(i);
                }
            }
            DeliverToMatches(message, matches, null);
        }
        finally
        {
            matches.Clear(); // the list must not keep subscriptions (and their sessions) alive
        }
    }

    [ThreadStatic]
    static List<Subscription>? t_peerScratch;

    /// <summary>Stores a retained message (a set, or a clear when empty) in the retained and durable stores without routing it: a peer's, or the cluster-wide winner put back.</summary>
    public void StoreRetainedFromPeer(MqttMessage message)
    {
        if (broker.Options.RetainAvailable)
        {
            retained.Set(message);
            journal.RetainSet(message);
        }
    }

    static bool Picked(IReadOnlyList<ClusterRoute>? groups, string topicFilter, string group)
    {
        if (groups is null)
        {
            return false;
        }
        foreach (var g in groups)
        {
            if (g.ShareGroup == group && g.TopicFilter == topicFilter)
            {
                return true;
            }
        }
        return false;
    }

    void DeliverToMatches(MqttMessage message, List<Subscription> matches, MqttConnection? origin)
    {
        if (matches.Count == 0)
        {
            return;
        }
        if (matches.Count == 1)
        {
            DeliverTo(message, matches[0].Session, matches, 0, 1, origin);
            return;
        }
        // several subscriptions of one session: one delivery at the highest QoS, with every subscription id (MQTT-3.3.5-1).
        // Only a session that has held two subscriptions at once can appear twice; the common fan-out (one subscription
        // per subscriber) is told apart without a set.
        var distinct = true;
        foreach (var m in matches)
        {
            if (m.ShareGroup is null && m.Session.MostSubscriptionsHeld > 1)
            {
                distinct = false;
                break;
            }
        }
        if (!distinct)
        {
            var seen = new HashSet<Session>(ReferenceEqualityComparer.Instance);
            distinct = true;
            foreach (var m in matches)
            {
                if (m.ShareGroup is null && !seen.Add(m.Session))
                {
                    distinct = false;
                    break;
                }
            }
        }
        if (distinct)
        {
            for (var i = 0; i < matches.Count; i++)
            {
                DeliverTo(message, matches[i].Session, matches, i, i + 1, origin);
            }
            return;
        }
        var bySession = new Dictionary<Session, List<Subscription>>(ReferenceEqualityComparer.Instance);
        foreach (var m in matches)
        {
            if (m.ShareGroup is not null)
            {
                DeliverTo(message, m.Session, [m], 0, 1, origin);
                continue;
            }
            if (!bySession.TryGetValue(m.Session, out var list))
            {
                bySession[m.Session] = list = new List<Subscription>(2);
            }
            list.Add(m);
        }
        foreach (var (session, list) in bySession)
        {
            DeliverTo(message, session, list, 0, list.Count, origin);
        }
    }

    void DeliverTo(MqttMessage message, Session session, List<Subscription> subs, int start, int end, MqttConnection? origin)
    {
        var qos = MqttQualityOfServiceLevel.AtMostOnce;
        var any = false;
        var retain = false;
        List<uint>? ids = null;
        Subscription? shared = null;
        for (var i = start; i < end; i++)
        {
            var s = subs[i];
            if (s.NoLocal && message.PublisherClientId == session.ClientId)
            {
                continue;
            }
            if (s.Filtered && !broker.Authorizer.CanReceive(session.Identity, message.Topic))
            {
                continue;
            }
            any = true;
            if (s.QoS > qos)
            {
                qos = s.QoS;
            }
            retain |= s.RetainAsPublished && message.Retain;
            if (s.SubscriptionIdentifier != 0)
            {
                (ids ??= new List<uint>(1)).Add(s.SubscriptionIdentifier);
            }
            if (s.ShareGroup is not null)
            {
                shared = s;
            }
        }
        if (!any)
        {
            return;
        }
        IDeliveryTarget target = session;
        target.Deliver(new Delivery(message, Session.Min(qos, message.QoS), retain, ids, shared), origin);
    }

    /// <summary>Queues the retained messages matching a new subscription to its session.</summary>
    public void DeliverRetained(Subscription subscription)
    {
        var now = broker.Time.GetUtcNow();
        IDeliveryTarget target = subscription.Session;
        foreach (var message in retained.Match(subscription.TopicFilter, now))
        {
            if (subscription.NoLocal && message.PublisherClientId == subscription.Session.ClientId)
            {
                continue;
            }
            if (subscription.Filtered && !broker.Authorizer.CanReceive(subscription.Session.Identity, message.Topic))
            {
                continue;
            }
            var ids = subscription.SubscriptionIdentifier != 0 ? new List<uint>(1) { subscription.SubscriptionIdentifier } : null;
            // subscribe-time delivery always carries the retain flag
            target.Deliver(new Delivery(message, Session.Min(subscription.QoS, message.QoS), true, ids, null), null);
        }
    }

    internal (Subscription Subscription, bool Existed) Subscribe(
        Session session, string filter, string? group, string topicFilter, MqttQualityOfServiceLevel qos, MqttTopicFilter options, uint subscriptionId, bool filtered)
    {
        var (subscription, existed) = session.Subscribe(filter, group, topicFilter, qos, options, subscriptionId, filtered, journal);
        if (!existed)
        {
            _trie.Add(subscription);
            _routes?.Added(subscription);
        }
        return (subscription, existed);
    }

    internal bool Unsubscribe(Session session, string filter)
    {
        if (!session.Unsubscribe(filter, journal, out var subscription))
        {
            return false;
        }
        _trie.Remove(subscription);
        _routes?.Removed(subscription);
        return true;
    }

    /// <summary>Adds a subscription rebuilt from the store at start-up.</summary>
    public void AddRestored(Subscription subscription)
    {
        _trie.Add(subscription);
        _routes?.Added(subscription);
    }

    /// <summary>Removes an ended session's subscriptions and hands its queued shared-subscription messages to other group members.</summary>
    public void RemoveEnded(List<Subscription> subscriptions, List<Delivery> undeliveredShared)
    {
        foreach (var s in subscriptions)
        {
            if (_trie.Remove(s))
            {
                _routes?.Removed(s);
            }
        }
        foreach (var d in undeliveredShared)
        {
            if (_trie.PickOtherMember(d.Shared!) is { } other)
            {
                IDeliveryTarget target = other.Session;
                target.Deliver(new Delivery(d.Message, Session.Min(other.QoS, d.Message.QoS), false, null, other), null);
            }
        }
    }
}
