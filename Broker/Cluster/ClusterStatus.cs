using System.Text.Json;
using IotRealtime.Broker.Engine;

namespace IotRealtime.Broker.Cluster;

/// <summary>
/// The body of <c>GET /api/cluster</c>: this node's figures and, per peer it links to, the link's figures. Written
/// by hand with <see cref="Utf8JsonWriter"/> so the host's JSON context holds no cluster type.
/// </summary>
internal static class ClusterStatus
{
    public static void Write(Utf8JsonWriter w, ClusterNode node, MqttBroker broker, DateTimeOffset now)
    {
        w.WriteStartObject();
        w.WriteString("node", node.NodeId);
        w.WriteStartArray("nodes");
        w.WriteStartObject();
        w.WriteString("node", node.NodeId);
        w.WriteString("status", "self");
        w.WriteString("silo", node.LocalSilo);
        w.WriteNumber("uptimeSeconds", Math.Round((now - broker.StartedAt).TotalSeconds, 3));
        w.WriteNumber("connections", broker.ConnectedClients);
        w.WriteNumber("subscriptions", broker.SubscriptionCount);
        w.WriteNumber("routes", node.LocalRouteCountNow);
        w.WriteEndObject();
        foreach (var peer in node.Peers)
        {
            w.WriteStartObject();
            w.WriteString("node", peer.Node);
            w.WriteString("status", peer.Synced ? "linked" : "joining");
            w.WriteString("silo", peer.Silo);
            w.WriteNumber("routes", node.Remote.CountOf(peer.Node));
            w.WriteStartObject("link");
            w.WriteNumber("messages", peer.Crossed);
            w.WriteNumber("bytes", peer.CrossedBytes);
            w.WriteNumber("queued", peer.Queued);
            w.WriteNumber("dropped", peer.Dropped);
            w.WriteNumber("retries", peer.Retries);
            w.WriteNumber("batches", peer.Batches);
            w.WriteNumber("roundTripMs", peer.Batches == 0 ? 0 : Math.Round(peer.RoundTripSeconds * 1000 / peer.Batches, 3));
            w.WriteNumber("retainedSyncLeft", peer.RetainedSyncLeft);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
