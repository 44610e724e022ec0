using IotRealtime.Broker.Engine.Sessions;

namespace IotRealtime.Broker.Engine.Cluster;

/// <summary>
/// Counts this node's subscriptions per <see cref="ClusterRoute"/> and tells the <see cref="IClusterLink"/> when a
/// route's count leaves or reaches zero, under one lock so the link sees the changes in the order they happened.
/// Exists only when the broker is part of a cluster.
/// </summary>
internal sealed class LocalRouteCounts(IClusterLink link)
{
    readonly Dictionary<ClusterRoute, int> _counts = [];
    readonly Lock _gate = new();

    public void Added(Subscription subscription)
    {
        var route = new ClusterRoute(subscription.TopicFilter, subscription.ShareGroup);
        lock (_gate)
        {
            _counts.TryGetValue(route, out var count);
            _counts[route] = count + 1;
            if (count == 0)
            {
                link.RouteAdded(route);
            }
        }
    }

    public void Removed(Subscription subscription)
    {
        var route = new ClusterRoute(subscription.TopicFilter, subscription.ShareGroup);
        lock (_gate)
        {
            if (!_counts.TryGetValue(route, out var count))
            {
                return;
            }
            if (count > 1)
            {
                _counts[route] = count - 1;
                return;
            }
            _counts.Remove(route);
            link.RouteRemoved(route);
        }
    }
}
