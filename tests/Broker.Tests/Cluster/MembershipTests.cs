using System.Text;
using IotRealtime.Broker.Tests.Infrastructure;
using static IotRealtime.Broker.Tests.Kafka.KafkaTestKit;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>Nodes joining and leaving: a joiner learns the routes that exist, a stopped node's routes go, Kafka sees a message once.</summary>
public sealed class MembershipTests
{
    [Fact]
    public async Task A_node_started_after_the_subscriptions_exist_learns_them()
    {
        await using var nodes = await ClusterNodes.StartAsync(["a", "b"]);
        await using var subscriber = await MqttTestClient.ConnectAsync(nodes["a"]);
        await subscriber.SubscribeAsync("late/+/t");
        await nodes.WaitForRouteAsync("b", "a", "late/+/t");

        await nodes.AddAsync("c");
        await nodes.WaitUntilMeshedAsync();
        Assert.True(nodes.Node("c").Remote.Has("a", new("late/+/t", null)));
        await using var publisher = await MqttTestClient.ConnectAsync(nodes["c"], MQTTnet.Formatter.MqttProtocolVersion.V311);
        await publisher.PublishAsync("late/x/t", "from c");
        var message = await subscriber.WaitForMessageAsync("late/x/t", Timeouts.Default);
        Assert.Equal("from c", message.Payload);
    }

    [Fact]
    public async Task A_stopped_node_loses_its_routes_and_publishers_on_the_others_carry_on()
    {
        await using var nodes = await ClusterNodes.StartAsync(["a", "b", "c"]);
        var onC = await MqttTestClient.ConnectAsync(nodes["c"]);
        await using var onB = await MqttTestClient.ConnectAsync(nodes["b"]);
        await onC.SubscribeAsync("gone/t");
        await onB.SubscribeAsync("gone/t");
        await nodes.WaitForRouteAsync("a", "c", "gone/t");
        await nodes.WaitForRouteAsync("a", "b", "gone/t");
        await onC.DisposeAsync();
        // a subscription that outlives its client keeps c's route until c itself goes
        await using (var persistent = await MqttTestClient.ConnectAsync(nodes["c"], configure: o => o.WithCleanSession(false).WithSessionExpiryInterval(3600)))
        {
            await persistent.SubscribeAsync("gone/kept");
        }
        await nodes.WaitForRouteAsync("a", "c", "gone/kept");

        await nodes.StopAsync("c");
        await Wait.UntilAsync(() => nodes.Node("a").Remote.CountOf("c") == 0 && nodes.Node("b").Remote.CountOf("c") == 0, Timeouts.Default, "c's routes gone from a and b");
        await Wait.UntilAsync(() => nodes.Node("a").Peers.Count == 1 && nodes.Node("b").Peers.Count == 1, Timeouts.Default, "a and b with one peer each");

        await using var publisher = await MqttTestClient.ConnectAsync(nodes["a"]);
        for (var i = 0; i < 20; i++) await publisher.PublishAsync("gone/t", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Wait.UntilAsync(() => onB.Received.Count == 20, Timeouts.Default, "20 messages on b");
        Assert.Equal(0, nodes.Link("a", "b").Queued);
    }

    [Fact]
    public async Task With_Kafka_on_every_node_a_message_published_on_one_is_one_Kafka_record()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("mqtt");
        await using var nodes = await ClusterNodes.StartAsync(["a", "b", "c"], new()
        {
            ["Kafka:BootstrapServers"] = kafka.BootstrapServers,
            ["Kafka:LingerMs"] = "0",
            ["Kafka:ShutdownFlushMs"] = "2000",
        });
        await using var onB = await MqttTestClient.ConnectAsync(nodes["b"]);
        await using var onC = await MqttTestClient.ConnectAsync(nodes["c"]);
        await onB.SubscribeAsync("kafka/#");
        await onC.SubscribeAsync("kafka/#");
        await nodes.WaitForRouteAsync("a", "b", "kafka/#");
        await nodes.WaitForRouteAsync("a", "c", "kafka/#");

        await using var publisher = await MqttTestClient.ConnectAsync(nodes["a"], clientId: "kafka-pub");
        await publisher.PublishAsync("kafka/once", "one");
        await onB.WaitForMessageAsync("kafka/once", Timeouts.Default);
        await onC.WaitForMessageAsync("kafka/once", Timeouts.Default);
        // a second message from b: once it is in Kafka, anything b or c forwarded of the first would be before it
        await using var second = await MqttTestClient.ConnectAsync(nodes["b"], clientId: "kafka-pub-b");
        await second.PublishAsync("kafka/end", "end");
        await Wait.UntilAsync(() => nodes.Ids.Sum(id => Forwarder(nodes[id]).Forwarded) >= 2, Timeouts.Default, "two records confirmed by Kafka");

        var records = await ConsumeAllAsync(kafka, "mqtt", 1);
        Assert.Equal(["one", "end"], records.Select(r => Encoding.UTF8.GetString(r.Message.Value)));
        Assert.Equal(1, Forwarder(nodes["a"]).Forwarded);
        Assert.Equal(1, Forwarder(nodes["b"]).Forwarded);
        Assert.Equal(0, Forwarder(nodes["c"]).Forwarded);
    }
}
