using Orleans.Metadata;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace IotRealtime.Broker.Cluster;

/// <summary>Places a grain on the active silo whose name (<c>Cluster:NodeId</c>) equals the grain's key.</summary>
[GenerateSerializer, Immutable, SuppressReferenceTracking]
public sealed class NodePlacementStrategy : PlacementStrategy
{
    internal static NodePlacementStrategy Instance { get; } = new();
}

/// <summary>Marks a grain keyed by node id to live on that node (<see cref="NodePlacementStrategy"/>).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class NodePlacementAttribute : PlacementAttribute
{
    public NodePlacementAttribute()
        : base(NodePlacementStrategy.Instance)
    {
    }
}

/// <summary>
/// Orleans' SiloRoleBasedPlacement matches a role (the assembly name), not the silo's name, so nodes get their own
/// director: among the compatible active silos, the one named after the key; of two (a restarted node not yet
/// replaced in the table), the newest.
/// </summary>
internal sealed class NodePlacementDirector(IClusterMembershipService membership) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var node = target.GrainIdentity.Key.ToString();
        var compatible = context.GetCompatibleSilos(target);
        SiloAddress? best = null;
        foreach (var member in membership.CurrentSnapshot.Members.Values)
        {
            if (member.Status == SiloStatus.Active && member.Name == node && Array.IndexOf(compatible, member.SiloAddress) >= 0
                && (best is null || member.SiloAddress.Generation > best.Generation))
            {
                best = member.SiloAddress;
            }
        }
        return best is not null
            ? Task.FromResult(best)
            : throw new OrleansException($"No active node named '{node}' in the cluster.");
    }
}
