using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>A retained set or clear on any node reaches every node's retained store, routes or not, and is delivered at subscribe time there.</summary>
public sealed class RetainedReplicationTests(ThreeNodeCluster cluster) : IClassFixture<ThreeNodeCluster>
{
    readonly ClusterNodes _nodes = cluster.Nodes;

    static MqttBroker Engine(TestBroker broker) => broker.Host.Services.GetRequiredService<MqttBroker>();

    static string? RetainedPayload(TestBroker broker, string topic)
    {
        var found = Engine(broker).Retained.Match(topic, DateTimeOffset.UtcNow);
        return found.Count == 0 ? null : System.Text.Encoding.UTF8.GetString(found[0].Payload.Span);
    }

    [Fact]
    public async Task A_retained_set_on_one_node_is_stored_on_every_node_without_subscriptions_and_delivered_at_subscribe_time()
    {
        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["a"]);
        await publisher.PublishAsync("rr/set/1", "one", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);

        foreach (var id in new[] { "b", "c" })
        {
            await Wait.UntilAsync(() => RetainedPayload(_nodes[id], "rr/set/1") == "one", Timeouts.Default, $"node {id} to store the retained message");
        }

        await using var subscriber = await MqttTestClient.ConnectAsync(_nodes["c"]);
        await subscriber.SubscribeAsync("rr/set/#", MqttQualityOfServiceLevel.AtLeastOnce);
        var got = await subscriber.WaitForMessageAsync("rr/set/1", Timeouts.Default);
        Assert.Equal("one", got.Payload);
        Assert.True(got.Retain);
    }

    [Fact]
    public async Task A_retained_clear_on_another_node_clears_it_everywhere_in_order_with_that_nodes_messages()
    {
        await using var onA = await MqttTestClient.ConnectAsync(_nodes["a"]);
        await onA.PublishAsync("rr/clear/1", "first", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        foreach (var id in new[] { "b", "c" })
        {
            await Wait.UntilAsync(() => RetainedPayload(_nodes[id], "rr/clear/1") == "first", Timeouts.Default, $"node {id} to store the retained message");
        }

        // the clear and then a marker from b: once the marker is stored on a node, the clear before it is applied there
        await using var onB = await MqttTestClient.ConnectAsync(_nodes["b"]);
        await onB.PublishAsync("rr/clear/1", "", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        await onB.PublishAsync("rr/clear/marker", "m", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        foreach (var id in new[] { "a", "c" })
        {
            await Wait.UntilAsync(() => RetainedPayload(_nodes[id], "rr/clear/marker") == "m", Timeouts.Default, $"node {id} to store the marker");
            Assert.Null(RetainedPayload(_nodes[id], "rr/clear/1"));
        }

        await using var subscriber = await MqttTestClient.ConnectAsync(_nodes["c"]);
        await subscriber.SubscribeAsync("rr/clear/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await subscriber.WaitForMessageAsync("rr/clear/marker", Timeouts.Default);
        Assert.DoesNotContain(subscriber.Received, m => m.Topic == "rr/clear/1");
    }

    [Fact]
    public async Task Successive_sets_from_one_node_leave_every_node_with_the_last()
    {
        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["b"]);
        for (var i = 0; i < 200; i++)
        {
            await publisher.PublishAsync("rr/last", "v" + i, MqttQualityOfServiceLevel.AtMostOnce, retain: true);
        }
        await publisher.PublishAsync("rr/last-marker", "m", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        foreach (var id in new[] { "a", "c" })
        {
            await Wait.UntilAsync(() => RetainedPayload(_nodes[id], "rr/last-marker") == "m", Timeouts.Default, $"node {id} to store the marker");
            Assert.Equal("v199", RetainedPayload(_nodes[id], "rr/last"));
        }
    }

    [Fact]
    public async Task Concurrent_writes_of_one_topic_on_two_nodes_converge_to_the_same_message_everywhere()
    {
        await using var onA = await MqttTestClient.ConnectAsync(_nodes["a"]);
        await using var onC = await MqttTestClient.ConnectAsync(_nodes["c"]);
        const int Writes = 300;
        async Task WriteAsync(MqttTestClient client, string who)
        {
            for (var i = 0; i < Writes; i++)
            {
                await client.PublishAsync("rr/conflict", who + i, MqttQualityOfServiceLevel.AtMostOnce, retain: true);
            }
            await client.PublishAsync("rr/conflict-end/" + who, "end", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        }
        await Task.WhenAll(WriteAsync(onA, "a"), WriteAsync(onC, "c"));

        // once both end markers are stored on a node, every write of both nodes has been applied there
        foreach (var id in _nodes.Ids)
        {
            await Wait.UntilAsync(() => RetainedPayload(_nodes[id], "rr/conflict-end/a") == "end" && RetainedPayload(_nodes[id], "rr/conflict-end/c") == "end",
                Timeouts.Default, $"node {id} to store both end markers");
        }
        var values = _nodes.Ids.Select(id => RetainedPayload(_nodes[id], "rr/conflict")).ToList();
        Assert.Single(values.Distinct());
        Assert.Contains(values[0], new[] { "a" + (Writes - 1), "c" + (Writes - 1) });
    }
}
