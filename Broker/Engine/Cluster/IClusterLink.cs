namespace IotRealtime.Broker.Engine.Cluster;

/// <summary>
/// The engine's seam to the other nodes of a cluster; null on a single node, so the embedded broker pays one null check
/// per publish. The engine reports route changes in the order they happen (<see cref="RouteAdded"/> for a route's
/// first local subscription, <see cref="RouteRemoved"/> for its last) and offers every message it accepted, after
/// local routing. Calls must not block: they run on the publisher's reader or the subscriber's.
/// </summary>
public interface IClusterLink
{
    /// <summary>The first local subscription of <paramref name="route"/>; called under the route counter's lock, in order.</summary>
    void RouteAdded(ClusterRoute route);

    /// <summary>The last local subscription of <paramref name="route"/> went away; called under the route counter's lock, in order.</summary>
    void RouteRemoved(ClusterRoute route);

    /// <summary>
    /// Completes once the peers linked now have every route change reported so far (bounded in time by the link); null
    /// when they have it already. SUBACK waits for it, so that a message published on another node after the SUBACK
    /// matches the new subscription.
    /// </summary>
    Task? RoutesPropagated();

    /// <summary>A message accepted on this node, routed locally already: the link hands it to the peers that have a matching route.</summary>
    void Offer(MqttMessage message);

    /// <summary>
    /// Called with the $SYS interval by the engine's housekeeping: the link publishes, through <paramref name="publish"/>
    /// (topic, value; retained, routed locally), this node's figures under <c>$SYS/broker/nodes/&lt;node&gt;/</c> and the
    /// cluster totals under <c>$SYS/broker/cluster/</c>.
    /// </summary>
    void PublishSys(DateTimeOffset now, Action<string, string> publish);
}
