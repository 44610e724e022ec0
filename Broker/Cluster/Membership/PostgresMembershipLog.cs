using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Cluster.Membership;

static partial class PostgresMembershipLog
{
    [LoggerMessage(8300, LogLevel.Information, "Cluster membership in PostgreSQL {Server}, cluster {ClusterId}: tables ready")]
    public static partial void Initialized(ILogger logger, string server, string clusterId);

    [LoggerMessage(8301, LogLevel.Information, "Cluster {ClusterId}: created the membership table version row")]
    public static partial void VersionRowCreated(ILogger logger, string clusterId);

    [LoggerMessage(8302, LogLevel.Error, "Cluster membership database unusable: {Reason}")]
    public static partial void Unusable(ILogger logger, string reason, Exception exception);

    [LoggerMessage(8303, LogLevel.Debug, "Cluster {ClusterId}: {Operation} of {Silo} lost its condition (table version or row etag changed)")]
    public static partial void ConditionFailed(ILogger logger, string clusterId, string operation, string silo);

    [LoggerMessage(8304, LogLevel.Information, "Cluster {ClusterId}: removed {Count} defunct membership entries older than {BeforeDate}")]
    public static partial void DefunctRemoved(ILogger logger, string clusterId, int count, DateTimeOffset beforeDate);

    [LoggerMessage(8305, LogLevel.Information, "Removed the membership entries of cluster {ClusterId}: {Count} rows")]
    public static partial void ClusterDeleted(ILogger logger, string clusterId, int count);
}
