using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>$SYS in a cluster: every node's figures under $SYS/broker/nodes/&lt;node&gt;/ and the totals under $SYS/broker/cluster/, on every node.</summary>
public sealed class ClusterSysTopicsTests
{
    [Fact]
    public async Task Every_node_publishes_its_own_figures_to_all_nodes_and_the_cluster_totals_to_its_subscribers()
    {
        await using var nodes = await ClusterNodes.StartAsync(["a", "b", "c"], new Dictionary<string, string?> { ["Broker:SysInterval"] = "1" });
        await using var onA = await MqttTestClient.ConnectAsync(nodes["a"]);
        await using var onB = await MqttTestClient.ConnectAsync(nodes["b"]);
        await using var subscriber = await MqttTestClient.ConnectAsync(nodes["c"]);
        await subscriber.SubscribeAsync("$SYS/broker/nodes/#", MqttQualityOfServiceLevel.AtMostOnce);
        await subscriber.SubscribeAsync("$SYS/broker/cluster/#", MqttQualityOfServiceLevel.AtMostOnce);

        // one client on each node: every node reports 1, the cluster 3
        foreach (var id in new[] { "a", "b", "c" })
        {
            await subscriber.WaitForMessageAsync(m => m.Topic == $"$SYS/broker/nodes/{id}/clients/connected" && m.Payload == "1",
                TimeSpan.FromSeconds(30), $"node {id}'s connected clients on node c");
            await subscriber.WaitForMessageAsync(m => m.Topic == $"$SYS/broker/nodes/{id}/uptime" && m.Payload.EndsWith(" seconds", StringComparison.Ordinal),
                TimeSpan.FromSeconds(30), $"node {id}'s uptime on node c");
            await subscriber.WaitForMessageAsync(m => m.Topic == $"$SYS/broker/nodes/{id}/messages/received", TimeSpan.FromSeconds(30), $"node {id}'s messages in");
            await subscriber.WaitForMessageAsync(m => m.Topic == $"$SYS/broker/nodes/{id}/messages/sent", TimeSpan.FromSeconds(30), $"node {id}'s messages out");
        }
        await subscriber.WaitForMessageAsync(m => m.Topic == "$SYS/broker/cluster/nodes" && m.Payload == "3", TimeSpan.FromSeconds(30), "three nodes");
        await subscriber.WaitForMessageAsync(m => m.Topic == "$SYS/broker/cluster/clients/connected" && m.Payload == "3", TimeSpan.FromSeconds(30), "three clients in the cluster");
    }
}
