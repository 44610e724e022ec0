using IotRealtime.Broker.Engine;
using Orleans.Concurrency;

namespace IotRealtime.Broker.Cluster;

/// <summary>
/// The receiving end of every peer's link to this node. Placed on the silo named by its key (<see cref="NodePlacementAttribute"/>),
/// so a batch is handled by the node it was meant for. Reentrant: batches from different peers need not wait for each
/// other, and each peer has one batch in flight, so one sender's order holds.
/// </summary>
[NodePlacement, Reentrant]
internal sealed class NodeGrain(ClusterNode node, MqttBroker broker) : Grain, INodeGrain
{
    public Task Receive(PeerBatch batch)
    {
        var key = this.GetPrimaryKeyString();
        if (key != node.NodeId)
        {
            // placement put it elsewhere (a silo of that name is gone): the sender retries until membership settles
            throw new InvalidOperationException($"Batch for node '{key}' reached node '{node.NodeId}'.");
        }
        node.Receive(batch, broker);
        return Task.CompletedTask;
    }
}
