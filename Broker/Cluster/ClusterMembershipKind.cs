namespace IotRealtime.Broker.Cluster;

/// <summary>Where the nodes of a cluster find each other (<c>Cluster:Membership</c>).</summary>
public enum ClusterMembershipKind
{
    /// <summary>In memory on one primary node (<c>Cluster:PrimaryEndpoint</c>): for trying a cluster out on one machine; the cluster does not outlive the primary.</summary>
    Development,

    /// <summary>A membership table in PostgreSQL (<c>Cluster:ConnectionString</c>): for production.</summary>
    Postgres,
}
