namespace IotRealtime.Broker.Engine.Cluster;

/// <summary>
/// What a node tells its peers it has subscribers for: a topic filter (without the <c>$share/group/</c> prefix) and,
/// for a shared subscription, its group. A node reports each route once, however many local subscriptions hold it.
/// </summary>
public readonly record struct ClusterRoute(string TopicFilter, string? ShareGroup);
