using IotRealtime.Broker.Engine.Sessions;

namespace IotRealtime.Broker.Engine.Routing;

/// <summary>
/// Where the <see cref="Router"/> hands a message it matched: one call per target and message, after the router has
/// picked the QoS, retain flag, subscription ids and shared-group member. A local <see cref="Session"/> is the first
/// implementation (it queues the delivery and wakes its connection's writer). Peer nodes are not targets: a message
/// crosses once per node, before any session's QoS is picked (<see cref="Cluster.IClusterLink"/>).
/// Must not block: it runs on the publisher's reader.
/// </summary>
internal interface IDeliveryTarget
{
    /// <param name="origin">The connection whose reader is routing, if any: it may send wake-up signals once per read batch.</param>
    void Deliver(Delivery delivery, MqttConnection? origin);
}
