namespace IotRealtime.Broker.Cluster;

/// <summary>A node as its peers address it: one grain per node, keyed by its <c>Cluster:NodeId</c>, living on that node's silo.</summary>
public interface INodeGrain : IGrainWithStringKey
{
    /// <summary>Applies the sender's route changes and routes its messages to this node's local subscribers; completes once done.</summary>
    Task Receive(PeerBatch batch);
}
