using System.IO.Pipelines;
using IotRealtime.Broker.Engine.Cluster;
using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Retained;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Broker.Engine.Sessions;
using Microsoft.Extensions.Logging;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using SessionSnapshot = IotRealtime.Broker.Engine.Sessions.SessionSnapshot;

namespace IotRealtime.Broker.Engine;

/// <summary>
/// The MQTT engine: transports hand it one pipe per connection. A façade over its parts, each the one owner of its
/// concern: <see cref="SessionRegistry"/> (session lookup, attach, takeover), <see cref="Router"/> (trie, fan-out),
/// <see cref="LocalDelivery"/> (session queues and their overflow policy), <see cref="SessionLifecycle"/> (wills,
/// expiry, housekeeping), <see cref="SessionJournal"/> (the durable store), <see cref="Admission"/> (connections,
/// overload limits, drain) and <see cref="SysPublisher"/> (presence and $SYS).
/// </summary>
public sealed partial class MqttBroker : IAsyncDisposable
{
    readonly PublishPipeline _pipeline;
    readonly CancellationTokenSource _stopping = new();
    readonly SessionJournal _journal;
    readonly Router _router;
    readonly SessionRegistry _sessions;
    readonly Admission _admission;
    readonly SysPublisher _sys;
    readonly SessionLifecycle _lifecycle;
    readonly SessionHandover _handover;

    public MqttBroker(
        BrokerOptions options,
        IMqttAuthenticator authenticator,
        IMqttAuthorizer authorizer,
        PublishPipeline? pipeline,
        TimeProvider timeProvider,
        ILoggerFactory loggerFactory,
        IRetainedStore? retainedStore = null,
        IBrokerStore? store = null,
        IClusterLink? cluster = null)
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
        // before the restore, so the store can already record its write latency
        Metrics = new BrokerMetrics(this);
        if (store is EmbeddedBrokerStore embedded)
        {
            embedded.WriteLatencyObserver = Metrics.RecordStoreWrite;
        }
        _journal = new SessionJournal(store);
        _router = new Router(this, Retained, _journal, cluster);
        ClusterLink = cluster;
        _sessions = new SessionRegistry(_journal, new LocalDelivery(this, _journal));
        _admission = new Admission(this);
        _sys = new SysPublisher(this);
        _lifecycle = new SessionLifecycle(this, _sessions, _router, _admission, _sys);
        _handover = new SessionHandover(this, _sessions, _router, _lifecycle);
        if (_journal.Load() is { } state)
        {
            SessionRestore.Restore(state, timeProvider.GetUtcNow(), Retained, _journal, _sessions, _router);
        }
        StartedAt = timeProvider.GetUtcNow();
    }

    public BrokerOptions Options { get; }
    internal IMqttAuthenticator Authenticator { get; }
    internal IMqttAuthorizer Authorizer { get; }
    internal TimeProvider Time { get; }
    internal BrokerLog Log { get; }
    public IRetainedStore Retained { get; }

    /// <summary>The durable store, or null when nothing is persisted. The broker owns it and disposes it last; only <see cref="SessionJournal"/> writes to it.</summary>
    public IBrokerStore? Store => _journal.Store;
    internal PacketFormatterPool Formatters { get; }
    public DateTimeOffset StartedAt { get; }
    public BrokerMetrics Metrics { get; }

    public int ConnectedClients => _admission.Count;

    public int SessionCount => _sessions.Count;

    public int SubscriptionCount => _router.SubscriptionCount;

    /// <summary>Serves one MQTT connection until it closes. Never throws for protocol errors; they close the connection.</summary>
    /// <param name="cancellationToken">Closes the connection when cancelled (e.g. the transport's own closed token); the engine's shutdown closes every connection without it.</param>
    public Task RunConnectionAsync(IDuplexPipe transport, ConnectionInfo connection, CancellationToken cancellationToken)
    {
        var conn = new MqttConnection(this, transport, connection);
        _admission.Opened(conn);
        if (_stopping.IsCancellationRequested)
        {
            conn.RequestClose(MqttDisconnectReasonCode.ServerShuttingDown);
        }
        // not async and no linked token source: per idle connection, every object counts
        return conn.RunAsync(cancellationToken);
    }

    /// <summary>The writer rounds of the live connection of <paramref name="clientId"/>, for tests.</summary>
    internal long WriteRoundsOf(string clientId) => _admission.Connections.First(c => c.ClientId == clientId).WriteRounds;

    /// <summary>Called by a connection as its last act: gives back its slot and wakes whoever waits for it to close.</summary>
    internal void ConnectionEnded(MqttConnection connection)
    {
        _admission.Ended(connection);
        if (connection.ConnectedAt is not null)
        {
            _sys.ClientDisconnected(connection);
        }
        connection.Closed.TrySetResult();
    }

    /// <summary>Starts housekeeping (keep-alive sweep, will delay, session expiry, $SYS topics), four times a second so will delays are kept to within a quarter second.</summary>
    public void Start() => _lifecycle.Start();

    public async ValueTask DisposeAsync()
    {
        await _lifecycle.StopAsync().ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var connection in _admission.Connections)
        {
            connection.RequestClose(MqttDisconnectReasonCode.ServerShuttingDown);
        }
        var deadline = Time.GetUtcNow().AddSeconds(5);
        while (!_admission.IsEmpty && Time.GetUtcNow() < deadline)
        {
            await Task.Delay(20).ConfigureAwait(false);
        }
        // connections are closed and their last changes recorded: flush and close the log last
        await _journal.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
        Metrics.Dispose();
    }

    // ---------------------------------------------------------------- accept and route

    internal ValueTask<AcceptResult> AcceptAsync(MqttMessage message) => _pipeline.AcceptAsync(message, _stopping.Token);

    /// <summary>Wraps an accept stage that did not complete at once, recording how long it took.</summary>
    internal async Task<AcceptResult> MeasureAcceptAsync(ValueTask<AcceptResult> accept)
    {
        var started = Time.GetTimestamp();
        try
        {
            return await accept.ConfigureAwait(false);
        }
        finally
        {
            Metrics.RecordAccept(Time.GetElapsedTime(started));
        }
    }

    /// <summary>Publishes a message made by the broker or an embedding host (not from a client): it is routed as if accepted.</summary>
    public void Publish(MqttMessage message)
    {
        if (!TopicValidation.IsValidTopicName(message.Topic))
        {
            throw new ArgumentException($"'{message.Topic}' is not a valid MQTT topic name.", nameof(message));
        }
        Route(message);
    }

    /// <summary>
    /// Publishes on behalf of a client that is not an MQTT connection (a browser through the bridges): the message goes
    /// through the publish pipeline (Kafka, then the bridges' feed) like any client's, and is routed only if every stage
    /// accepted it. Authorization is the caller's. Returns the pipeline's answer.
    /// </summary>
    public async ValueTask<AcceptResult> PublishThroughPipelineAsync(MqttMessage message)
    {
        if (!TopicValidation.IsValidTopicName(message.Topic))
        {
            throw new ArgumentException($"'{message.Topic}' is not a valid MQTT topic name.", nameof(message));
        }
        CountPublishReceived(message.QoS);
        var result = await AcceptAsync(message).ConfigureAwait(false);
        if (result == AcceptResult.Accepted)
        {
            Route(message);
        }
        return result;
    }

    /// <inheritdoc cref="Router.Route"/>
    internal void Route(MqttMessage message, MqttConnection? origin = null) => _router.Route(message, origin);

    /// <inheritdoc cref="Router.RouteFromPeer"/>
    internal void RouteFromPeer(MqttMessage message, IReadOnlyList<ClusterRoute>? sharedGroups) => _router.RouteFromPeer(message, sharedGroups);

    /// <inheritdoc cref="Router.StoreRetainedFromPeer"/>
    internal void StoreRetainedFromPeer(MqttMessage message) => _router.StoreRetainedFromPeer(message);

    internal void DeliverRetained(Subscription subscription) => _router.DeliverRetained(subscription);

    internal (Subscription Subscription, bool Existed) Subscribe(
        Session session, string filter, string? group, string topicFilter, MqttQualityOfServiceLevel qos, MqttTopicFilter options, uint subscriptionId, bool filtered)
    {
        // a session made outside the registry (benchmarks) delivers through this broker
        session.Local ??= _sessions.Local;
        return _router.Subscribe(session, filter, group, topicFilter, qos, options, subscriptionId, filtered);
    }

    internal bool Unsubscribe(Session session, string filter) => _router.Unsubscribe(session, filter);

    // ---------------------------------------------------------------- sessions

    /// <inheritdoc cref="SessionLifecycle.Attach"/>
    internal (Session Session, bool Present) AttachSession(MqttConnection connection, string clientId, ClientIdentity identity, bool cleanStart, uint expiryInterval) =>
        _lifecycle.Attach(connection, clientId, identity, cleanStart, expiryInterval);

    /// <summary>The link to the other nodes; null (the default) when this broker is alone.</summary>
    internal IClusterLink? ClusterLink { get; }

    /// <summary>The cluster's session ownership, asked by every CONNECT before it attaches; null (the default) when this broker is alone. Set before connections are served.</summary>
    public IClusterSessions? ClusterSessions { get; set; }

    /// <summary>Stopping the engine: cancels what a CONNECT awaits of the cluster.</summary>
    internal CancellationToken Stopping => _stopping.Token;

    /// <summary>Whether a session of <paramref name="clientId"/> (online or offline) is on this node.</summary>
    public bool HasSession(string clientId) => _sessions.Find(clientId) is not null;

    /// <summary>
    /// Hands the session of <paramref name="clientId"/> to another node: its connection, if live, is closed with DISCONNECT
    /// 0x8E session taken over (3.1.1: closed), the session ends here (recorded in the store) and its state is returned, for
    /// <see cref="Adopt"/> on the node the client now connects to. Null when there is no such session, and for a
    /// <paramref name="cleanStart"/> claim, which ends the session here without moving it. A will due because of it is
    /// published here; a delayed will moves, pending, with the snapshot (see <see cref="SessionHandover"/>).
    /// </summary>
    public SessionSnapshot? HandOver(string clientId, bool cleanStart = false) => _handover.HandOver(clientId, cleanStart);

    /// <summary>
    /// Rebuilds a session handed over by another node (<see cref="HandOver"/>) here, offline until its client connects
    /// with clean start 0 and resumes it (session present = 1): registry, subscriptions and the store, so it also survives
    /// a restart of this node. A session of the same client id already here is replaced (closed with 0x8E if live).
    /// </summary>
    public void Adopt(SessionSnapshot snapshot) => _handover.Adopt(snapshot);

    internal void UpdateSessionExpiry(Session session, uint expiryInterval) => session.ChangeExpiryInterval(expiryInterval, _journal);

    internal void OnConnectionClosed(MqttConnection connection, bool clean) => _lifecycle.OnConnectionClosed(connection, clean);

    // the connection's changes to a session's deliveries, recorded under the session's lock
    internal void RecordInflight(Session session, Delivery delivery) => _journal.Inflight(session, delivery);

    internal void RecordCompleted(Session session, Delivery delivery) => _journal.Completed(session, delivery);

    internal void RecordInboundQos2(Session session, ushort packetId, bool added) => _journal.InboundQos2(session, packetId, added);

    // ---------------------------------------------------------------- admission, drain, presence

    internal readonly record struct ConnectRefusalReply(MqttConnectReasonCode Reason, string? ServerReference);

    /// <summary>Connections holding a <see cref="BrokerOptions.MaxConnections"/> slot (CONNECT admitted and not yet closed).</summary>
    public int AdmittedConnections => _admission.Admitted;

    /// <summary>Decides whether a CONNECT may proceed; takes a connection slot when it may. Null = admitted.</summary>
    internal ConnectRefusalReply? AdmitConnect(MqttConnection connection) => _admission.AdmitConnect(connection);

    /// <summary>True once a drain has begun: CONNECTs are refused (0x89 server busy, or 0x9D server moved with a server reference; 3.1.1: return code 3).</summary>
    public bool IsDraining => _admission.IsDraining;

    /// <summary>The current drain, or null when none has begun.</summary>
    public DrainStatus? GetDrainStatus() => _admission.GetDrainStatus();

    /// <summary>
    /// Stops admitting connections and closes every open one at a random moment within <paramref name="window"/>: MQTT 5
    /// clients get DISCONNECT 0x8B server shutting down, or 0x9D server moved with <paramref name="serverReference"/>.
    /// Completes when all are closed. A second call joins the drain already under way. Cancelling closes the rest at once.
    /// Sessions stay; a drain is one-way for this engine instance.
    /// </summary>
    public Task DrainAsync(TimeSpan window, string? serverReference = null, CancellationToken cancellationToken = default) =>
        _admission.DrainAsync(window, serverReference, cancellationToken);

    /// <summary>Subscribes to presence events (connect, disconnect, will) from now on; each subscriber buffers up to <paramref name="capacity"/> events, dropping the oldest beyond.</summary>
    public PresenceSubscription SubscribePresence(int capacity = 1024) => _sys.Subscribe(capacity);

    internal void OnClientConnected(MqttConnection connection) => _sys.ClientConnected(connection);
}
