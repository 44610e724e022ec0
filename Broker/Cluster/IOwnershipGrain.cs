namespace IotRealtime.Broker.Cluster;

/// <summary>
/// A node's part of the client id ownership registry, keyed by node id and living on that node: the ids whose home it is
/// (rendezvous hashing over the active node ids) and the hand-over of the sessions it holds.
/// </summary>
public interface IOwnershipGrain : IGrainWithStringKey
{
    /// <summary>At the id's home: makes <paramref name="claimant"/> the owner, first taking the session from a live owner elsewhere; the snapshot's bytes, or null.</summary>
    Task<byte[]?> Claim(string clientId, string claimant, bool cleanStart);

    /// <summary>At the owner: hands the session over (ends it here); its snapshot's bytes, or null (none, or a clean-start claim).</summary>
    Task<byte[]?> Release(string clientId, bool cleanStart);

    /// <summary>At the id's home: records <paramref name="node"/> as owner unless another active node owns the id; false then.</summary>
    Task<bool> Register(string clientId, string node);

    /// <summary>At the id's home: forgets the id if <paramref name="node"/> still owns it.</summary>
    Task Forget(string clientId, string node);
}
