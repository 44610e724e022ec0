namespace IotRealtime.Broker.Engine.Cluster;

/// <summary>
/// What the engine asks of a cluster about sessions, so a client id is live on one node at a time. Set on
/// <see cref="MqttBroker.ClusterSessions"/> before connections are served; unset (the default), CONNECT does what a
/// single broker does, with nothing more to await.
/// </summary>
public interface IClusterSessions
{
    /// <summary>
    /// Called by CONNECT after authentication and before the session is attached, for every client id (assigned ones
    /// too). The cluster makes this node the owner of <paramref name="clientId"/>: where another node holds the session it
    /// asks that node to hand it over (<see cref="MqttBroker.HandOver"/>, with <paramref name="cleanStart"/>) and adopts the
    /// snapshot here (<see cref="MqttBroker.Adopt"/>) before completing; the attach that follows then resumes it with
    /// session present = 1. Throwing (the owner is in the membership but does not answer) refuses the CONNECT with 0x88
    /// Server unavailable (3.1.1: return code 3), so the client retries instead of getting a second, empty session for
    /// an id that may still be live elsewhere. An owner that has left the membership is the cluster's to give up on:
    /// then the claim completes without a snapshot and the client gets a new session.
    /// </summary>
    ValueTask ClaimAsync(string clientId, bool cleanStart, CancellationToken cancellationToken);

    /// <summary>
    /// A session ended on this node and none of <paramref name="clientId"/> is left here (expired, ended with its
    /// connection, deleted), so ownership can be released. Not called for a handover (the cluster asked for it) nor for a
    /// clean start that replaces a session here. Called outside the engine's locks, and may race a new claim for the same
    /// id: release only if this node is still the owner and <see cref="MqttBroker.HasSession"/> is false.
    /// </summary>
    void SessionEnded(string clientId);
}
