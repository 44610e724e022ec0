using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Engine;

/// <summary>Sessions moving between cluster nodes: ids 120–129.</summary>
internal sealed partial class BrokerLog
{
    [LoggerMessage(120, LogLevel.Information, "Session {ClientId} handed over to another node (state moved: {Moved})")]
    public partial void SessionHandedOver(string clientId, bool moved);

    [LoggerMessage(121, LogLevel.Information, "Session {ClientId} adopted from another node: {Subscriptions} subscriptions, {Queued} queued, {Inflight} in flight")]
    public partial void SessionAdopted(string clientId, int subscriptions, int queued, int inflight);

    [LoggerMessage(122, LogLevel.Warning, "CONNECT of {ClientId} refused: the cluster could not claim its session")]
    public partial void ClaimFailed(string clientId, Exception exception);

    [LoggerMessage(123, LogLevel.Error, "Telling the cluster that session {ClientId} ended failed")]
    public partial void ClusterSessionEndedFailed(string clientId, Exception exception);
}
