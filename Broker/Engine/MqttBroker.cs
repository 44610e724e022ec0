using System.Collections.Concurrent;
using System.IO.Pipelines;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Retained;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Broker.Engine.Sessions;
using Microsoft.Extensions.Logging;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>The MQTT engine: sessions, routing, retained messages, wills. Transports hand it one pipe per connection.</summary>
public sealed partial class MqttBroker : IAsyncDisposable
{
    readonly PublishPipeline _pipeline;
    readonly SubscriptionTrie _trie = new();
    readonly Lock _sessionsLock = new();
    readonly Dictionary<string, Session> _sessions = new(StringComparer.Ordinal);
    readonly HashSet<Session> _offline = new();
    readonly ConcurrentDictionary<MqttConnection, byte> _connections = new();
    readonly CancellationTokenSource _stopping = new();
    ITimer? _timer;
    int _inTick;
    long _nextDeliveryId;

    public MqttBroker(
        BrokerOptions options,
        IMqttAuthenticator authenticator,
        IMqttAuthorizer authorizer,
        PublishPipeline? pipeline,
        TimeProvider timeProvider,
        ILoggerFactory loggerFactory,
        IRetainedStore? retainedStore = null,
        IBrokerStore? store = null)
    {
        var errors = options.Validate().ToList();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid broker options: " + string.Join(" ", errors), nameof(options));
        }
        Options = options;
        Authenticator = authenticator;
        Authorizer = authorizer;
        _pipeline = pipeline ?? PublishPipeline.Empty;
        Time = timeProvider;
        Log = new BrokerLog(loggerFactory.CreateLogger<MqttBroker>());
        Retained = retainedStore ?? new InMemoryRetainedStore();
        Formatters = new PacketFormatterPool();
        // before Restore, so the store can already record its write latency
        Metrics = new Operations.BrokerMetrics(this);
        Store = store;
        if (store is EmbeddedBrokerStore embedded)
        {
            embedded.WriteLatencyObserver = Metrics.RecordStoreWrite;
        }
        if (store is not null)
        {
            Restore(store.Load());
        }
        StartedAt = timeProvider.GetUtcNow();
    }

    public BrokerOptions Options { get; }
    internal IMqttAuthenticator Authenticator { get; }
    internal IMqttAuthorizer Authorizer { get; }
    internal TimeProvider Time { get; }
    internal BrokerLog Log { get; }
    public IRetainedStore Retained { get; }

    /// <summary>The durable store, or null when nothing is persisted. The broker owns it and disposes it last.</summary>
    public IBrokerStore? Store { get; }
    internal PacketFormatterPool Formatters { get; }
    public DateTimeOffset StartedAt { get; }
    public Operations.BrokerMetrics Metrics { get; }

    public int ConnectedClients => _connections.Count;

    public int SessionCount
    {
        get
        {
            lock (_sessionsLock)
            {
                return _sessions.Count;
            }
        }
    }

    public int SubscriptionCount => _trie.Count;

    /// <summary>Serves one MQTT connection until it closes. Never throws for protocol errors; they close the connection.</summary>
    /// <param name="cancellationToken">Closes the connection when cancelled (e.g. the transport's own closed token); the engine's shutdown closes every connection without it.</param>
    public Task RunConnectionAsync(IDuplexPipe transport, ConnectionInfo connection, CancellationToken cancellationToken)
    {
        var conn = new MqttConnection(this, transport, connection);
        _connections[conn] = 0;
        if (_stopping.IsCancellationRequested)
        {
            conn.RequestClose(MqttDisconnectReasonCode.ServerShuttingDown);
        }
        // not async and no linked token source: per idle connection, every object counts
        return conn.RunAsync(cancellationToken);
    }

    /// <summary>The writer rounds of the live connection of <paramref name="clientId"/>, for tests.</summary>
    internal long WriteRoundsOf(string clientId) => _connections.Keys.First(c => c.ClientId == clientId).WriteRounds;

    /// <summary>Called by a connection as its last act.</summary>
    internal void ConnectionEnded(MqttConnection connection)
    {
        _connections.TryRemove(connection, out _);
        OnConnectionEnded(connection);
    }

    /// <summary>Starts housekeeping (keep-alive sweep, will delay, session expiry, $SYS topics), four times a second so will delays are kept to within a quarter second.</summary>
    public void Start()
    {
        _timer ??= Time.CreateTimer(static s => ((MqttBroker)s!).Tick(), this, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
    }

    public async ValueTask DisposeAsync()
    {
        if (_timer is not null)
        {
            await _timer.DisposeAsync().ConfigureAwait(false);
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var connection in _connections.Keys)
        {
            connection.RequestClose(MqttDisconnectReasonCode.ServerShuttingDown);
        }
        var deadline = Time.GetUtcNow().AddSeconds(5);
        while (!_connections.IsEmpty && Time.GetUtcNow() < deadline)
        {
            await Task.Delay(20).ConfigureAwait(false);
        }
        if (Store is not null)
        {
            // connections are closed and their last changes recorded: flush and close the log last
            await Store.DisposeAsync().ConfigureAwait(false);
        }
        _stopping.Dispose();
        Metrics.Dispose();
    }

    // ---------------------------------------------------------------- accept and route

    internal ValueTask<AcceptResult> AcceptAsync(MqttMessage message) => _pipeline.AcceptAsync(message, _stopping.Token);

    /// <summary>Publishes a message made by the broker or an embedding host (not from a client): it is routed as if accepted.</summary>
    public void Publish(MqttMessage message)
    {
        if (!TopicValidation.IsValidTopicName(message.Topic))
        {
            throw new ArgumentException($"'{message.Topic}' is not a valid MQTT topic name.", nameof(message));
        }
        Route(message);
    }

    /// <summary>Stores a retained message and hands the message to every matching subscription.</summary>
    /// <param name="origin">The connection whose reader is routing this, if any: signals to subscribers are then sent once per read batch.</param>
    internal void Route(MqttMessage message, MqttConnection? origin = null)
    {
        if (message.Retain && Options.RetainAvailable)
        {
            Retained.Set(message);
            Store?.RetainSet(message);
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
            if (s.Filtered && !Authorizer.CanReceive(session.Identity, message.Topic))
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
        Enqueue(session, new Delivery(message, Session.Min(qos, message.QoS), retain, ids, shared), origin);
    }

    internal void Enqueue(Session session, Delivery delivery, MqttConnection? origin = null)
    {
        MqttConnection? connection;
        var overflow = false;
        lock (session)
        {
            if (session.Ended)
            {
                return;
            }
            connection = session.Connection;
            if (connection is null && delivery.QoS == MqttQualityOfServiceLevel.AtMostOnce && !Options.QueueQos0WhenOffline)
            {
                CountDropped(DropReason.OfflineQos0);
                return;
            }
            if (!FitsQueue(session, delivery))
            {
                overflow = true;
                switch (Options.QueueOverflowPolicy)
                {
                    case QueueOverflowPolicy.DropOldest:
                    case QueueOverflowPolicy.Backpressure:
                        // as many of the oldest as it takes (a message always fits an empty queue)
                        while (session.PendingCount > 0 && !FitsQueue(session, delivery))
                        {
                            var dropped = session.DequeuePending();
                            CountDropped(DropReason.QueueFull);
                            if (dropped.DeliveryId != 0)
                            {
                                Store!.Completed(session.ClientId, dropped.DeliveryId);
                            }
                        }
                        Persist(session, delivery);
                        session.EnqueuePending(delivery);
                        break;
                    case QueueOverflowPolicy.DropNew:
                    case QueueOverflowPolicy.Disconnect:
                        CountDropped(DropReason.QueueFull);
                        break;
                }
            }
            else
            {
                Persist(session, delivery);
                session.EnqueuePending(delivery);
            }
            if (origin is not null && connection is not null && connection != origin
                && Options.QueueOverflowPolicy == QueueOverflowPolicy.Backpressure && OverHighWater(session))
            {
                origin.Hold.HoldUntil(session.WhenDrained(Options.MaxQueuedBytes / 4, Options.MaxQueuedMessages / 4));
            }
        }
        if (overflow && Options.QueueOverflowPolicy == QueueOverflowPolicy.Disconnect)
        {
            Log.QueueOverflow(session.ClientId, Options.QueueOverflowPolicy);
            connection?.RequestClose(MqttDisconnectReasonCode.QuotaExceeded);
            return;
        }
        if (connection is not null && (origin is null || !origin.DeferSignal(connection)))
        {
            connection.Signal();
        }
    }

    /// <summary>Whether <paramref name="delivery"/> fits the session's queue: its byte budget first, the message cap as a second guard.</summary>
    bool FitsQueue(Session session, Delivery delivery) =>
        session.PendingCount < Options.MaxQueuedMessages && session.PendingBytes + Session.QueueCost(delivery) <= Options.MaxQueuedBytes;

    /// <summary>Backpressure's high-water mark: half the byte budget or half the message cap.</summary>
    bool OverHighWater(Session session) =>
        session.PendingBytes > Options.MaxQueuedBytes / 2 || session.PendingCount > Options.MaxQueuedMessages / 2;

    /// <summary>Records a QoS 1/2 delivery to a stored session. Called under the session's lock, so the log order is the queue order.</summary>
    void Persist(Session session, Delivery delivery)
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

    internal void DeliverRetained(Subscription subscription)
    {
        var now = Time.GetUtcNow();
        foreach (var message in Retained.Match(subscription.TopicFilter, now))
        {
            if (subscription.NoLocal && message.PublisherClientId == subscription.Session.ClientId)
            {
                continue;
            }
            if (subscription.Filtered && !Authorizer.CanReceive(subscription.Session.Identity, message.Topic))
            {
                continue;
            }
            var ids = subscription.SubscriptionIdentifier != 0 ? new List<uint>(1) { subscription.SubscriptionIdentifier } : null;
            // subscribe-time delivery always carries the retain flag
            Enqueue(subscription.Session, new Delivery(message, Session.Min(subscription.QoS, message.QoS), true, ids, null));
        }
    }

    // ---------------------------------------------------------------- subscriptions

    internal (Subscription Subscription, bool Existed) Subscribe(
        Session session, string filter, string? group, string topicFilter, MqttQualityOfServiceLevel qos, MqttTopicFilter options, uint subscriptionId, bool filtered)
    {
        Subscription? subscription;
        bool existed;
        lock (session)
        {
            existed = session.Subscriptions.TryGetValue(filter, out subscription);
            if (!existed)
            {
                subscription = new Subscription(session, filter, group, topicFilter);
                session.Subscriptions[filter] = subscription;
                session.NoteSubscriptionAdded();
            }
            subscription!.QoS = qos;
            subscription.NoLocal = options.NoLocal;
            subscription.RetainAsPublished = options.RetainAsPublished;
            subscription.RetainHandling = options.RetainHandling;
            subscription.SubscriptionIdentifier = subscriptionId;
            subscription.Filtered = filtered;
            if (Store is not null && session.Stored)
            {
                Store.Subscribed(session.ClientId, new StoredSubscription(
                    filter, (byte)qos, options.NoLocal, options.RetainAsPublished, (byte)options.RetainHandling, subscriptionId, filtered));
            }
        }
        if (!existed)
        {
            _trie.Add(subscription);
        }
        return (subscription, existed);
    }

    internal bool Unsubscribe(Session session, string filter)
    {
        Subscription? subscription;
        lock (session)
        {
            if (!session.Subscriptions.Remove(filter, out subscription))
            {
                return false;
            }
            if (Store is not null && session.Stored)
            {
                Store.Unsubscribed(session.ClientId, filter);
            }
        }
        _trie.Remove(subscription);
        return true;
    }

    // ---------------------------------------------------------------- sessions

    /// <summary>Binds a new connection to its session: resumes it, or starts a new one (ending the old). Takes over a live connection.</summary>
    internal (Session Session, bool Present) AttachSession(MqttConnection connection, string clientId, ClientIdentity identity, bool cleanStart, uint expiryInterval)
    {
        MqttConnection? previous = null;
        Will? previousWill = null;
        Session? ended = null;
        Session session;
        bool present;
        lock (_sessionsLock)
        {
            if (_sessions.TryGetValue(clientId, out var existing))
            {
                lock (existing)
                {
                    previous = existing.Connection;
                    existing.Connection = null;
                    // a will waiting for its delay is cancelled by the reconnect, unless the session ends now
                    previousWill = existing.PendingWill;
                    existing.PendingWill = null;
                    existing.WillDueAt = null;
                }
                if (previous is not null)
                {
                    previousWill ??= previous.Will;
                    previous.Will = null;
                }
            }
            if (existing is not null && !cleanStart)
            {
                session = existing;
                present = true;
                if (previousWill is { DelaySeconds: 0 })
                {
                    // the old connection ended abnormally with no delay: its will is due now
                    ended = null;
                }
                else
                {
                    previousWill = null;
                }
            }
            else
            {
                if (existing is not null)
                {
                    RemoveSessionLocked(existing);
                    ended = existing;
                }
                session = new Session(clientId);
                _sessions[clientId] = session;
                present = false;
            }
            _offline.Remove(session);
            lock (session)
            {
                session.Identity = identity;
                session.Connection = connection;
                session.ExpiryInterval = expiryInterval;
                session.ExpiresAt = null;
                if (Store is not null && (expiryInterval > 0 || session.Stored))
                {
                    // recorded under the sessions lock: a session's start and end reach the log in the order they happen
                    Store.SessionStarted(clientId, expiryInterval, identity.Username, connection.Will?.Message, connection.Will?.DelaySeconds ?? 0);
                    session.Stored = true;
                }
            }
        }
        if (previous is not null)
        {
            Log.SessionTakenOver(clientId);
            previous.RequestClose(MqttDisconnectReasonCode.SessionTakenOver);
        }
        if (ended is not null)
        {
            EndSession(ended);
        }
        if (previousWill is not null)
        {
            PublishWill(previousWill.Message);
        }
        return (session, present);
    }

    internal void UpdateSessionExpiry(Session session, uint expiryInterval)
    {
        lock (session)
        {
            session.ExpiryInterval = expiryInterval;
            if (Store is not null && session.Stored)
            {
                Store.SessionExpiryChanged(session.ClientId, expiryInterval);
            }
        }
    }

    /// <summary>Forgets a session: removes it from the index and records its end. Caller holds the sessions lock.</summary>
    void RemoveSessionLocked(Session session)
    {
        _sessions.Remove(session.ClientId);
        _offline.Remove(session);
        lock (session)
        {
            if (Store is not null && session.Stored)
            {
                Store.SessionEnded(session.ClientId);
                session.Stored = false;
            }
        }
    }

    internal void OnConnectionClosed(MqttConnection connection, bool clean)
    {
        var session = connection.Session;
        if (session is null)
        {
            return;
        }
        Log.ClientDisconnected(session.ClientId, clean);
        var will = clean ? null : connection.Will;
        connection.Will = null;
        var now = Time.GetUtcNow();
        var endNow = false;
        lock (_sessionsLock)
        {
            lock (session)
            {
                if (session.Connection != connection)
                {
                    return; // taken over: the new connection owns the session now
                }
                session.Connection = null;
                session.DisconnectedAt = now;
                if (session.ExpiryInterval == 0)
                {
                    endNow = true;
                }
                else
                {
                    if (session.ExpiryInterval != uint.MaxValue)
                    {
                        session.ExpiresAt = now.AddSeconds(session.ExpiryInterval);
                    }
                    if (will is { DelaySeconds: > 0 })
                    {
                        session.PendingWill = will;
                        var delay = Math.Min(will.DelaySeconds, session.ExpiryInterval);
                        session.WillDueAt = now.AddSeconds(delay);
                        will = null;
                    }
                    if (Store is not null && session.Stored)
                    {
                        Store.SessionOffline(session.ClientId, now, session.WillDueAt);
                    }
                }
            }
            if (endNow)
            {
                RemoveSessionLocked(session);
            }
            else
            {
                _offline.Add(session);
            }
        }
        if (will is not null)
        {
            PublishWill(will.Message);
        }
        if (endNow)
        {
            EndSession(session);
        }
    }

    void PublishWill(MqttMessage will)
    {
        if (will.ExpiresAt is { } expiresAt)
        {
            // the Will Message Expiry Interval runs from publication, not from CONNECT (MQTT 5 §3.1.3.2.4): restamp it
            var now = Time.GetUtcNow();
            will = new MqttMessage
            {
                Topic = will.Topic,
                Payload = will.Payload,
                QoS = will.QoS,
                Retain = will.Retain,
                ContentType = will.ContentType,
                ResponseTopic = will.ResponseTopic,
                CorrelationData = will.CorrelationData,
                PayloadFormat = will.PayloadFormat,
                UserProperties = will.UserProperties,
                PublisherClientId = will.PublisherClientId,
                PublisherUsername = will.PublisherUsername,
                ReceivedAt = now,
                ExpiresAt = now + (expiresAt - will.ReceivedAt),
            };
        }
        var identity = new ClientIdentity(will.PublisherClientId ?? string.Empty, will.PublisherUsername);
        if (!Authorizer.CanPublish(identity, will.Topic))
        {
            Log.PublishDenied(identity.ClientId, will.Topic);
            return;
        }
        OnWillPublished(will);
        var accept = AcceptAsync(will);
        if (accept.IsCompletedSuccessfully)
        {
            if (accept.Result == AcceptResult.Accepted)
            {
                Route(will);
            }
            return;
        }
        _ = RouteWhenAcceptedAsync(accept, will);
    }

    async Task RouteWhenAcceptedAsync(ValueTask<AcceptResult> accept, MqttMessage message)
    {
        try
        {
            if (await accept.ConfigureAwait(false) == AcceptResult.Accepted)
            {
                Route(message);
            }
        }
        catch (Exception ex)
        {
            Log.AcceptStageFailed(message.PublisherClientId, ex);
        }
    }

    /// <summary>Removes a session's subscriptions and hands its queued shared-subscription messages to other group members.</summary>
    void EndSession(Session session)
    {
        List<Subscription> subscriptions;
        List<Delivery> undelivered;
        lock (session)
        {
            session.Ended = true;
            subscriptions = session.Subscriptions.Values.ToList();
            session.Subscriptions.Clear();
            undelivered = session.Inflight.Values.Where(d => d.Shared is not null).Concat(session.Pending.Where(d => d.Shared is not null)).ToList();
            session.ClearPending();
            session.Inflight.Clear();
            session.ClearInboundQos2();
        }
        foreach (var s in subscriptions)
        {
            _trie.Remove(s);
        }
        foreach (var d in undelivered)
        {
            if (_trie.PickOtherMember(d.Shared!) is { } other)
            {
                Enqueue(other.Session, new Delivery(d.Message, Session.Min(other.QoS, d.Message.QoS), false, null, other));
            }
        }
    }

    // ---------------------------------------------------------------- housekeeping

    void Tick()
    {
        if (Interlocked.Exchange(ref _inTick, 1) == 1)
        {
            return;
        }
        try
        {
            var timestamp = Time.GetTimestamp();
            foreach (var connection in _connections.Keys)
            {
                connection.CheckTimeouts(timestamp);
            }
            var now = Time.GetUtcNow();
            List<MqttMessage>? wills = null;
            List<Session>? expired = null;
            lock (_sessionsLock)
            {
                foreach (var session in _offline)
                {
                    lock (session)
                    {
                        var expires = session.ExpiresAt is { } at && at <= now;
                        if (session.PendingWill is { } will && (expires || session.WillDueAt <= now))
                        {
                            (wills ??= new()).Add(will.Message);
                            session.PendingWill = null;
                            session.WillDueAt = null;
                            if (Store is not null && session.Stored && !expires)
                            {
                                Store.SessionOffline(session.ClientId, session.DisconnectedAt ?? now, null); // the will is out: not again after a restart
                            }
                        }
                        if (expires)
                        {
                            (expired ??= new()).Add(session);
                        }
                    }
                }
                if (expired is not null)
                {
                    foreach (var session in expired)
                    {
                        RemoveSessionLocked(session);
                    }
                }
            }
            // a will is sent when its session ends, before the session's subscriptions go
            foreach (var will in wills ?? [])
            {
                PublishWill(will);
            }
            foreach (var session in expired ?? [])
            {
                Log.SessionExpired(session.ClientId);
                EndSession(session);
            }
            PublishSysTopicsIfDue(now);
        }
        catch (Exception ex)
        {
            Log.HousekeepingFailed(ex);
        }
        finally
        {
            Volatile.Write(ref _inTick, 0);
        }
    }
}
