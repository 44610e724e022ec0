using Microsoft.Extensions.Hosting;
using Orleans.Runtime;

namespace IotRealtime.Broker.Cluster;

/// <summary>Keeps the <see cref="ClusterNode"/>'s peer links in step with Orleans' membership view, and closes them when the node stops.</summary>
internal sealed class MembershipWatcher(IClusterMembershipService membership, ClusterNode node) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(stoppingToken).ConfigureAwait(false))
            {
                node.UpdateMembership(snapshot.Members.Values.Select(m =>
                    (m.Name, m.SiloAddress.ToParsableString(), m.SiloAddress.Generation, m.Status == SiloStatus.Active)));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        await node.DisposeAsync().ConfigureAwait(false);
    }
}
