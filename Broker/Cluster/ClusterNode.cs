using System.Collections.Concurrent;
using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Cluster;
using IotRealtime.Hosting.Metrics;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace IotRealtime.Broker.Cluster;

/// <summary>
/// This node's side of the cluster: the engine's <see cref="IClusterLink"/> (local route changes go to every peer,
/// accepted messages to the peers whose routes match, once per peer), the receiving end of the peers' batches, the
/// remote route index, and one <see cref="PeerLink"/> per active peer, kept in step with the membership.
/// </summary>
internal sealed class ClusterNode : IClusterLink, IMetricsSource, IAsyncDisposable
{
    readonly BrokerClusterOptions _options;
    readonly IGrainFactory _grains;
    readonly TimeProvider _time;
    readonly ILogger<ClusterNode> _log;
    readonly ILocalSiloDetails _silo;
    // the local routes and the peers: route changes reach every link in order under this lock
    readonly Lock _gate = new();
    readonly HashSet<ClusterRoute> _local = [];
    readonly Dictionary<string, PeerLink> _peersByNode = new(StringComparer.Ordinal);
    // local shared routes, read lock-free on the publish path: a group with a local member is not sent to a peer
    readonly ConcurrentDictionary<ClusterRoute, byte> _localShared = new();
    volatile PeerLink[] _peers = [];
    // the matching scratch of the publishing thread: Offer runs on many readers at once, each routing one message at a time
    [ThreadStatic]
    static HashSet<string>? t_nodes;
    [ThreadStatic]
    static List<(string Node, ClusterRoute Route)>? t_shared;
    bool _stopped;
    // this node's engine, resolved when first needed (the broker is built after this node: it takes the link)
    readonly Func<MqttBroker>? _broker;
    readonly RetainedVersions _retainedVersions = new();
    // this node's $SYS/broker/nodes/<node>/ topics cross like retained messages; the peers' connected clients, from theirs
    readonly string _sysPrefix;
    readonly ConcurrentDictionary<string, long> _peerClients = new(StringComparer.Ordinal);

    public ClusterNode(BrokerClusterOptions options, IGrainFactory grains, ILocalSiloDetails silo, TimeProvider time, ILogger<ClusterNode> log,
        Func<MqttBroker>? broker = null)
    {
        _broker = broker;
        _options = options;
        _grains = grains;
        _silo = silo;
        _time = time;
        _log = log;
        NodeId = options.NodeId;
        _sysPrefix = NodeSysPrefix + NodeId + "/";
    }

    const string NodeSysPrefix = "$SYS/broker/nodes/";
    const string ClientsConnected = "/clients/connected";

    public string NodeId { get; }

    public string LocalSilo => _silo.SiloAddress.ToParsableString();

    public RemoteRoutes Remote { get; } = new();

    /// <summary>The links to the active peers now.</summary>
    public IReadOnlyList<PeerLink> Peers => _peers;

    // ---------------------------------------------------------------- IClusterLink (engine side)

    public void RouteAdded(ClusterRoute route)
    {
        lock (_gate)
        {
            _local.Add(route);
            if (route.ShareGroup is not null)
            {
                _localShared[route] = 0;
            }
            foreach (var peer in _peersByNode.Values)
            {
                peer.RouteChanged(route, added: true);
            }
        }
    }

    public void RouteRemoved(ClusterRoute route)
    {
        lock (_gate)
        {
            _local.Remove(route);
            _localShared.TryRemove(route, out _);
            foreach (var peer in _peersByNode.Values)
            {
                peer.RouteChanged(route, added: false);
            }
        }
    }

    /// <summary>
    /// SUBACK waits for this: every route change so far acknowledged by every linked peer, so a message published on
    /// another node after the SUBACK matches the new subscription. Bounded by <see cref="RouteWaitLimit"/>: a slow or
    /// partitioned peer delays a SUBACK by that much at most, never holds it (its routes then arrive later).
    /// </summary>
    public Task? RoutesPropagated()
    {
        List<Task>? waits = null;
        foreach (var peer in _peers)
        {
            if (peer.RoutesAcknowledged() is { } wait)
            {
                (waits ??= []).Add(wait);
            }
        }
        return waits is null ? null : Task.WhenAny(Task.WhenAll(waits), Task.Delay(RouteWaitLimit, _time));
    }

    /// <summary>The longest a SUBACK waits for its route to reach the peers.</summary>
    internal static readonly TimeSpan RouteWaitLimit = TimeSpan.FromSeconds(2);

    public void Offer(MqttMessage message)
    {
        if (message.Topic.StartsWith("$SYS/", StringComparison.Ordinal) && !message.Topic.StartsWith(_sysPrefix, StringComparison.Ordinal))
        {
            return; // $SYS is per node, but for this node's own figures
        }
        var stamp = default(RetainedStamp);
        if (message.Retain && _broker is not null)
        {
            // recorded also while alone: a peer that joins later must not win with an older write
            stamp = RetainedStamp.Of(message.ReceivedAt, NodeId);
            _retainedVersions.Local(message, stamp, _broker().StoreRetainedFromPeer);
        }
        var peers = _peers;
        if (peers.Length == 0 || (Remote.Count == 0 && !message.Retain))
        {
            return;
        }
        var nodes = t_nodes ??= new HashSet<string>(StringComparer.Ordinal);
        var shared = t_shared ??= [];
        try
        {
            Remote.Match(message.Topic, nodes, shared, _localShared.ContainsKey);
            if (nodes.Count > 0 || shared.Count > 0 || message.Retain)
            {
                Cross(message, stamp, peers, nodes, shared);
            }
        }
        finally
        {
            nodes.Clear();
            shared.Clear();
        }
    }

    void Cross(MqttMessage message, RetainedStamp stamp, PeerLink[] peers, HashSet<string> nodes, List<(string Node, ClusterRoute Route)> shared)
    {
        var crossing = PeerMessageConversion.ToPeer(message, _time.GetUtcNow());
        if (stamp.Origin is not null)
        {
            crossing = crossing with { AcceptedAtMs = stamp.AcceptedAtMs, Origin = stamp.Origin };
        }
        foreach (var peer in peers)
        {
            List<PeerRoute>? groups = null;
            foreach (var (node, route) in shared)
            {
                if (node == peer.Node)
                {
                    (groups ??= []).Add(new PeerRoute(route.TopicFilter, route.ShareGroup));
                }
            }
            if (groups is not null)
            {
                peer.Enqueue(crossing with { SharedGroups = [.. groups] });
            }
            else if (message.Retain || nodes.Contains(peer.Node))
            {
                // a retained set or clear goes to every node, routes or not: each keeps the whole retained set
                peer.Enqueue(crossing);
            }
        }
    }

    /// <summary>The route part of <paramref name="peer"/>'s next batch, taken under the route lock so it is consistent with the changes that follow.</summary>
    internal (bool Reset, PeerRoute[] Added, PeerRoute[] Removed, long Upto) TakeRoutes(PeerLink peer)
    {
        lock (_gate)
        {
            return peer.TakeRoutes(_local);
        }
    }

    // ---------------------------------------------------------------- receiving

    /// <summary>Applies a peer's batch: its route changes, then its messages routed to local subscribers only.</summary>
    public void Receive(PeerBatch batch, MqttBroker broker)
    {
        if (batch.RoutesReset || batch.RoutesAdded.Length > 0 || batch.RoutesRemoved.Length > 0)
        {
            Remote.Apply(batch.SenderNode, batch.SenderSilo, batch.RoutesReset,
                batch.RoutesAdded.Select(r => new ClusterRoute(r.TopicFilter, r.ShareGroup)),
                batch.RoutesRemoved.Select(r => new ClusterRoute(r.TopicFilter, r.ShareGroup)));
        }
        if (batch.RetainedSyncCount > 0)
        {
            PeerMessageCodec.Decode(batch.RetainedSync!, batch.RetainedSyncCount, _time.GetUtcNow(),
                (m, _, stamp) => _retainedVersions.Remote(m, Stamped(stamp, m, batch.SenderNode), broker.StoreRetainedFromPeer));
        }
        if (batch.MessageCount > 0)
        {
            PeerMessageCodec.Decode(batch.Messages, batch.MessageCount, _time.GetUtcNow(), (m, groups, stamp) =>
            {
                if (m.Retain)
                {
                    // a live message is delivered whether or not its retained write wins
                    _retainedVersions.Remote(m, Stamped(stamp, m, batch.SenderNode), broker.StoreRetainedFromPeer);
                    if (m.Topic == NodeSysPrefix + batch.SenderNode + ClientsConnected
                        && long.TryParse(m.Payload.Span, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var clients))
                    {
                        _peerClients[batch.SenderNode] = clients;
                    }
                }
                broker.RouteFromPeer(m, groups);
            });
        }
    }

    // a message that crossed without a stamp (from a node without this rule) counts as accepted by its sender on arrival
    static RetainedStamp Stamped(RetainedStamp stamp, MqttMessage message, string sender) =>
        stamp.Origin is not null ? stamp : RetainedStamp.Of(message.ReceivedAt, sender);

    // ---------------------------------------------------------------- membership

    /// <summary>Opens a link to every active peer not linked yet (a restarted one gets a new link) and closes those of peers that left.</summary>
    public void UpdateMembership(IEnumerable<(string Name, string Silo, int Generation, bool Active)> members)
    {
        var leaving = new List<PeerLink>();
        var fresh = new List<PeerLink>();
        lock (_gate)
        {
            if (_stopped)
            {
                return;
            }
            var list = members.ToList();
            var active = new Dictionary<string, (string Silo, int Generation)>(StringComparer.Ordinal);
            foreach (var m in list)
            {
                if (m.Active && m.Name != NodeId && (!active.TryGetValue(m.Name, out var seen) || m.Generation > seen.Generation))
                {
                    active[m.Name] = (m.Silo, m.Generation);
                }
            }
            foreach (var (node, link) in _peersByNode.ToList())
            {
                if (!active.TryGetValue(node, out var now) || now.Silo != link.Silo)
                {
                    _peersByNode.Remove(node);
                    leaving.Add(link);
                }
            }
            foreach (var (node, (silo, _)) in active)
            {
                if (!_peersByNode.ContainsKey(node))
                {
                    var link = new PeerLink(this, node, silo, _grains.GetGrain<INodeGrain>(node), _options, _time, _log);
                    _peersByNode[node] = link;
                    fresh.Add(link);
                    ClusterLog.PeerJoined(_log, node, silo);
                }
            }
            _peers = [.. _peersByNode.Values];
            // after _peers: a retained message stored from now on is also offered to the new links, after their snapshot
            if (fresh.Count > 0 && _broker?.Invoke().Retained is { } retained)
            {
                var now = _time.GetUtcNow();
                var snapshot = retained.Match("#", now).Where(m => !m.Topic.StartsWith("$SYS/", StringComparison.Ordinal))
                    .Select(m =>
                    {
                        var stamp = _retainedVersions.StampOf(m, NodeId);
                        return PeerMessageConversion.ToPeer(m, now) with { AcceptedAtMs = stamp.AcceptedAtMs, Origin = stamp.Origin };
                    }).ToArray();
                foreach (var link in fresh)
                {
                    link.SyncRetained(snapshot);
                }
            }
            foreach (var link in fresh)
            {
                link.Start();
                link.Wake(); // its first batch carries the full route set
            }
            foreach (var m in list)
            {
                if (!m.Active)
                {
                    Remote.RemoveNode(m.Name, m.Silo); // a node that leaves loses its routes at once
                }
            }
        }
        foreach (var link in leaving)
        {
            ClusterLog.PeerLeft(_log, link.Node, link.Silo, link.Queued);
            _peerClients.TryRemove(link.Node, out _);
            Remote.RemoveNode(link.Node, link.Silo);
            _ = link.DisposeAsync().AsTask();
        }
    }

    public async ValueTask DisposeAsync()
    {
        PeerLink[] links;
        lock (_gate)
        {
            _stopped = true;
            links = [.. _peersByNode.Values];
            _peersByNode.Clear();
            _peers = [];
        }
        foreach (var link in links)
        {
            await link.DisposeAsync().ConfigureAwait(false);
        }
    }

    // ---------------------------------------------------------------- $SYS

    public void PublishSys(DateTimeOffset now, Action<string, string> publish)
    {
        ArgumentNullException.ThrowIfNull(publish);
        if (_broker is null)
        {
            return;
        }
        var broker = _broker();
        var clients = broker.ConnectedClients;
        publish(_sysPrefix + "clients/connected", Invariant(clients));
        publish(_sysPrefix + "messages/received", Invariant(broker.MessagesReceived));
        publish(_sysPrefix + "messages/sent", Invariant(broker.MessagesSent));
        publish(_sysPrefix + "uptime", Invariant((long)(now - broker.StartedAt).TotalSeconds) + " seconds");
        var peers = _peers;
        long total = clients;
        foreach (var peer in peers)
        {
            total += _peerClients.TryGetValue(peer.Node, out var c) ? c : 0;
        }
        publish("$SYS/broker/cluster/nodes", Invariant(peers.Length + 1));
        publish("$SYS/broker/cluster/clients/connected", Invariant(total));
    }

    static string Invariant(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    // ---------------------------------------------------------------- metrics

    public void WriteMetrics(StringBuilder w)
    {
        ArgumentNullException.ThrowIfNull(w);
        var peers = _peers;
        PrometheusText.Family(w, "iotrealtime_cluster_peers", "gauge", "Active peer nodes this node has a link to.", peers.Length);
        PrometheusText.Family(w, "iotrealtime_cluster_local_routes", "gauge", "Distinct routes (filter, or shared group and filter) of this node's subscriptions.", LocalRouteCount);
        PrometheusText.Family(w, "iotrealtime_cluster_remote_routes", "gauge", "Routes held by peers, summed over peers.", Remote.Count);
        PerPeer(w, peers, "iotrealtime_cluster_peer_messages_total", "counter", "Messages that crossed to the peer (acknowledged).", p => p.Crossed);
        PerPeer(w, peers, "iotrealtime_cluster_peer_bytes_total", "counter", "Topic and payload bytes that crossed to the peer (acknowledged).", p => p.CrossedBytes);
        PerPeer(w, peers, "iotrealtime_cluster_peer_queued", "gauge", "Messages waiting for the peer.", p => p.Queued);
        PerPeer(w, peers, "iotrealtime_cluster_peer_dropped_total", "counter", "Messages for the peer dropped by Cluster:PeerOverflowPolicy.", p => p.Dropped);
        PerPeer(w, peers, "iotrealtime_cluster_peer_retries_total", "counter", "Batches to the peer sent again after a failed call.", p => p.Retries);
        PrometheusText.Header(w, "iotrealtime_cluster_peer_batch_seconds", "summary", "Round trip of acknowledged batches to the peer.");
        foreach (var p in peers)
        {
            PrometheusText.Sample(w, "iotrealtime_cluster_peer_batch_seconds_sum", "peer", p.Node, p.RoundTripSeconds);
            PrometheusText.Sample(w, "iotrealtime_cluster_peer_batch_seconds_count", "peer", p.Node, p.Batches);
        }
    }

    /// <summary>Distinct routes of this node's subscriptions now.</summary>
    public int LocalRouteCountNow => LocalRouteCount;

    int LocalRouteCount
    {
        get
        {
            lock (_gate)
            {
                return _local.Count;
            }
        }
    }

    static void PerPeer(StringBuilder w, PeerLink[] peers, string name, string type, string help, Func<PeerLink, long> value)
    {
        PrometheusText.Header(w, name, type, help);
        foreach (var p in peers)
        {
            PrometheusText.Sample(w, name, "peer", p.Node, value(p));
        }
    }
}
