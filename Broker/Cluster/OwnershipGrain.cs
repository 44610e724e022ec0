using Orleans.Concurrency;

namespace IotRealtime.Broker.Cluster;

/// <summary>The receiving end of the ownership calls, on the node named by its key. Reentrant: claims of one id are ordered by the registry's per-id gate, not by the grain.</summary>
[NodePlacement, Reentrant]
internal sealed class OwnershipGrain(SessionOwnership ownership) : Grain, IOwnershipGrain
{
    public Task<byte[]?> Claim(string clientId, string claimant, bool cleanStart)
    {
        Check();
        return ownership.ClaimAtHomeAsync(clientId, claimant, cleanStart);
    }

    public Task<byte[]?> Release(string clientId, bool cleanStart)
    {
        Check();
        return ownership.ReleaseAsync(clientId, cleanStart);
    }

    public Task<bool> Register(string clientId, string node)
    {
        Check();
        return ownership.RegisterAtHomeAsync(clientId, node);
    }

    public Task Forget(string clientId, string node)
    {
        Check();
        return ownership.ForgetAtHomeAsync(clientId, node);
    }

    void Check()
    {
        var key = this.GetPrimaryKeyString();
        if (key != ownership.NodeId)
        {
            // placement put it elsewhere (that node is gone): the caller fails and the client retries
            throw new InvalidOperationException($"Ownership call for node '{key}' reached node '{ownership.NodeId}'.");
        }
    }
}
