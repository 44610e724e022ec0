namespace IotRealtime.Broker.Cluster;

/// <summary>What a peer's queue does when it holds <c>Cluster:PeerQueueMessages</c> messages and another one comes.</summary>
public enum PeerOverflowPolicy
{
    /// <summary>The new message is dropped (counted): what reached the queue keeps its order, the gap is at the end.</summary>
    DropNew,

    /// <summary>The oldest queued message is dropped (counted) to make room: the peer gets the freshest data once it catches up.</summary>
    DropOldest,
}
