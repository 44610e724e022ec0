using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace IotRealtime.Broker.Cluster;

/// <summary>Re-registers this node's sessions with their homes whenever the active node set changes, and once at start (sessions restored from the data directory).</summary>
internal sealed partial class OwnershipWatcher(IClusterMembershipService membership, SessionOwnership ownership, ILogger<OwnershipWatcher> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        string? last = null;
        try
        {
            await foreach (var _ in membership.MembershipUpdates.WithCancellation(stoppingToken).ConfigureAwait(false))
            {
                var active = ownership.ActiveNodes();
                var key = string.Join(',', active.Order(StringComparer.Ordinal));
                if (key == last)
                {
                    continue;
                }
                last = key;
                try
                {
                    await ownership.ReconcileAsync(active, stoppingToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // the next membership change tries again
                    ReconcileFailed(log, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Re-registering this node's sessions with their home nodes failed")]
    static partial void ReconcileFailed(ILogger log, Exception exception);
}
