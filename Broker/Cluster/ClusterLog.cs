using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Cluster;

/// <summary>The cluster's log messages (event ids 1300–1399).</summary>
internal static partial class ClusterLog
{
    [LoggerMessage(EventId = 1300, Level = LogLevel.Information, Message = "Cluster node {Node} (cluster {ClusterId}) silo on {Endpoint}, {Membership} membership")]
    public static partial void Starting(ILogger logger, string node, string clusterId, string endpoint, string membership);

    [LoggerMessage(EventId = 1301, Level = LogLevel.Information, Message = "Peer {Node} joined (silo {Silo})")]
    public static partial void PeerJoined(ILogger logger, string node, string silo);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Information, Message = "Peer {Node} left (silo {Silo}): its routes removed, {Queued} queued messages dropped")]
    public static partial void PeerLeft(ILogger logger, string node, string silo, int queued);

    [LoggerMessage(EventId = 1303, Level = LogLevel.Warning, Message = "Batch to peer {Node} failed ({Error}); retrying in {DelayMs} ms")]
    public static partial void BatchFailed(ILogger logger, string node, string error, int delayMs);
}
