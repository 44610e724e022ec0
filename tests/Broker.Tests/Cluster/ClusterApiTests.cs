using System.Net;
using IotRealtime.Broker.Tests.Infrastructure;
using IotRealtime.Broker.Tests.Operations;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary><c>GET /api/cluster</c>: this node's figures and its links', behind the admin token like the rest of /api.</summary>
public sealed class ClusterApiTests
{
    const string Token = "cluster-api-token";

    [Fact]
    public async Task Api_cluster_shows_the_node_and_per_peer_link_figures_to_the_admin_only()
    {
        await using var nodes = await ClusterNodes.StartAsync(["a", "b"], new Dictionary<string, string?> { ["Admin:Token"] = Token });
        await using var subscriber = await MqttTestClient.ConnectAsync(nodes["b"]);
        await subscriber.SubscribeAsync("api/t", MqttQualityOfServiceLevel.AtLeastOnce);
        await nodes.WaitForRouteAsync("a", "b", "api/t");
        await using var publisher = await MqttTestClient.ConnectAsync(nodes["a"]);
        for (var i = 0; i < 5; i++) await publisher.PublishAsync("api/t", "12345", MqttQualityOfServiceLevel.AtLeastOnce);
        await Wait.UntilAsync(() => nodes.Link("a", "b").Crossed == 5, Timeouts.Default, "five crossings from a to b acknowledged");

        using (var anonymous = OperationsHttp.Create(nodes["a"]))
        {
            using var denied = await anonymous.GetAsync("api/cluster");
            Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
        }

        using var http = OperationsHttp.Create(nodes["a"], Token);
        var body = await http.GetJsonAsync("api/cluster");
        Assert.Equal("a", body.GetProperty("node").GetString());
        var list = body.GetProperty("nodes").EnumerateArray().ToList();
        Assert.Equal(2, list.Count);
        var self = list.Single(n => n.GetProperty("node").GetString() == "a");
        Assert.Equal("self", self.GetProperty("status").GetString());
        Assert.Equal(1, self.GetProperty("connections").GetInt32()); // the publisher
        Assert.Equal(0, self.GetProperty("subscriptions").GetInt32());
        Assert.True(self.GetProperty("uptimeSeconds").GetDouble() >= 0);
        var peer = list.Single(n => n.GetProperty("node").GetString() == "b");
        Assert.Equal("linked", peer.GetProperty("status").GetString());
        Assert.Equal(1, peer.GetProperty("routes").GetInt32());
        var link = peer.GetProperty("link");
        Assert.Equal(5, link.GetProperty("messages").GetInt64());
        Assert.Equal(5 * ("api/t".Length + 5), link.GetProperty("bytes").GetInt64());
        Assert.Equal(0, link.GetProperty("queued").GetInt32());
        Assert.Equal(0, link.GetProperty("dropped").GetInt64());
        Assert.True(link.GetProperty("batches").GetInt64() >= 1);

        // b's view: its subscriber and its route
        using var httpB = OperationsHttp.Create(nodes["b"], Token);
        var selfB = (await httpB.GetJsonAsync("api/cluster")).GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("status").GetString() == "self");
        Assert.Equal(1, selfB.GetProperty("subscriptions").GetInt32());
        Assert.Equal(1, selfB.GetProperty("routes").GetInt32());
    }

    [Fact]
    public async Task Api_cluster_is_not_there_on_a_single_node()
    {
        await using var broker = await TestBroker.StartAsync();
        using var http = OperationsHttp.Create(broker);
        using var response = await http.GetAsync("api/cluster");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
