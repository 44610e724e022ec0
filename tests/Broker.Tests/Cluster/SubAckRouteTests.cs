using IotRealtime.Broker.Engine.Cluster;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>
/// SUBACK leaves only once every peer knows the route the SUBSCRIBE added, so a message published on another node after
/// the SUBACK reaches the new subscriber (the Paho suites publish from a client on another node right after a subscribe).
/// </summary>
public sealed class SubAckRouteTests(ThreeNodeCluster cluster) : IClassFixture<ThreeNodeCluster>
{
    readonly ClusterNodes _nodes = cluster.Nodes;

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Every_peer_knows_a_new_route_when_its_SUBACK_arrives(MqttProtocolVersion version)
    {
        var filter = $"suback/{version}/+";
        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["a"], version);
        await using var subscriber = await MqttTestClient.ConnectAsync(_nodes["b"], version);

        await subscriber.SubscribeAsync(filter);
        // no waiting for the route here: the SUBACK is the promise
        Assert.True(_nodes.Node("a").Remote.Has("b", new ClusterRoute(filter, null)), "node a knows b's route when the SUBACK arrives");
        Assert.True(_nodes.Node("c").Remote.Has("b", new ClusterRoute(filter, null)), "node c knows b's route when the SUBACK arrives");
        await publisher.PublishAsync($"suback/{version}/1", "right after the SUBACK");

        var message = await subscriber.WaitForMessageAsync($"suback/{version}/1", Timeouts.Default);
        Assert.Equal("right after the SUBACK", message.Payload);
    }

    [Fact]
    public async Task Every_peer_knows_a_new_shared_route_when_its_SUBACK_arrives()
    {
        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["c"], MqttProtocolVersion.V500);
        await using var member = await MqttTestClient.ConnectAsync(_nodes["b"], MqttProtocolVersion.V500);

        await member.SubscribeAsync("$share/suback-group/suback-shared/x", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.True(_nodes.Node("a").Remote.Has("b", new ClusterRoute("suback-shared/x", "suback-group")));
        Assert.True(_nodes.Node("c").Remote.Has("b", new ClusterRoute("suback-shared/x", "suback-group")));
        await publisher.PublishAsync("suback-shared/x", "to the group");

        var message = await member.WaitForMessageAsync("suback-shared/x", Timeouts.Default);
        Assert.Equal("to the group", message.Payload);
    }
}
