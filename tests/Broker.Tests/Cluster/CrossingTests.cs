using IotRealtime.Broker.Tests.Infrastructure;
using IotRealtime.Broker.Tests.Operations;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>What crosses between nodes: only to nodes with a match, once per node, and no longer once the route is gone.</summary>
public sealed class CrossingTests(ThreeNodeCluster cluster) : IClassFixture<ThreeNodeCluster>
{
    readonly ClusterNodes _nodes = cluster.Nodes;

    [Fact]
    public async Task A_message_crosses_only_to_nodes_with_a_match_and_once_per_node_however_many_subscribers()
    {
        await using var b1 = await MqttTestClient.ConnectAsync(_nodes["b"]);
        await using var b2 = await MqttTestClient.ConnectAsync(_nodes["b"], MQTTnet.Formatter.MqttProtocolVersion.V311);
        await using var b3 = await MqttTestClient.ConnectAsync(_nodes["b"]);
        await using var c = await MqttTestClient.ConnectAsync(_nodes["c"]);
        foreach (var s in new[] { b1, b2, b3 }) await s.SubscribeAsync("once/x");
        await b3.SubscribeAsync("once/+");
        await c.SubscribeAsync("once-marker");
        await _nodes.WaitForRouteAsync("a", "b", "once/x");
        await _nodes.WaitForRouteAsync("a", "b", "once/+");
        await _nodes.WaitForRouteAsync("a", "c", "once-marker");
        var toB = _nodes.Link("a", "b").Crossed;
        var toC = _nodes.Link("a", "c").Crossed;

        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["a"]);
        for (var i = 0; i < 10; i++) await publisher.PublishAsync("once/x", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await publisher.PublishAsync("once-marker", "m");

        foreach (var s in new[] { b1, b2, b3 }) await Wait.UntilAsync(() => s.Received.Count == 10, Timeouts.Default, "10 messages on each subscriber of b");
        await c.WaitForMessageAsync("once-marker", Timeouts.Default);
        await Wait.UntilAsync(() => _nodes.Link("a", "b").Crossed - toB == 10, Timeouts.Default, "10 crossings to b acknowledged");
        // c had no match for once/x: only the marker crossed to it, and it came after the ten (one ordered link per peer)
        Assert.Equal(1, _nodes.Link("a", "c").Crossed - toC);
        Assert.Equal(10, _nodes.Link("a", "b").Crossed - toB);
        Assert.All(new[] { b1, b2, b3 }, s => Assert.Equal(10, s.Received.Count));
    }

    [Fact]
    public async Task Unsubscribe_on_a_node_stops_crossings_to_it()
    {
        await using var subscriber = await MqttTestClient.ConnectAsync(_nodes["b"]);
        await using var marker = await MqttTestClient.ConnectAsync(_nodes["b"]);
        await subscriber.SubscribeAsync("unsub/t");
        await marker.SubscribeAsync("unsub-marker");
        await _nodes.WaitForRouteAsync("a", "b", "unsub/t");
        await _nodes.WaitForRouteAsync("a", "b", "unsub-marker");
        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["a"]);
        await publisher.PublishAsync("unsub/t", "before");
        await subscriber.WaitForMessageAsync("unsub/t", Timeouts.Default);

        await subscriber.Client.UnsubscribeAsync(new MQTTnet.MqttClientUnsubscribeOptionsBuilder().WithTopicFilter("unsub/t").Build());
        await _nodes.WaitForRouteAsync("a", "b", "unsub/t", present: false);
        var crossed = _nodes.Link("a", "b").Crossed;
        await publisher.PublishAsync("unsub/t", "after");
        await publisher.PublishAsync("unsub-marker", "m");
        await marker.WaitForMessageAsync("unsub-marker", Timeouts.Default);
        await Wait.UntilAsync(() => _nodes.Link("a", "b").Crossed > crossed, Timeouts.Default, "the marker's crossing acknowledged");

        Assert.Equal(1, _nodes.Link("a", "b").Crossed - crossed); // the marker only
        Assert.Equal(["before"], subscriber.Received.Select(m => m.Payload));
    }

    [Fact]
    public async Task A_route_held_by_two_local_subscriptions_stays_until_the_last_goes()
    {
        await using var first = await MqttTestClient.ConnectAsync(_nodes["c"]);
        await using var second = await MqttTestClient.ConnectAsync(_nodes["c"]);
        await first.SubscribeAsync("ref/t");
        await second.SubscribeAsync("ref/t");
        await _nodes.WaitForRouteAsync("a", "c", "ref/t");

        await first.Client.UnsubscribeAsync(new MQTTnet.MqttClientUnsubscribeOptionsBuilder().WithTopicFilter("ref/t").Build());
        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["a"]);
        await publisher.PublishAsync("ref/t", "still");
        await second.WaitForMessageAsync("ref/t", Timeouts.Default);
        Assert.True(_nodes.Node("a").Remote.Has("c", new("ref/t", null)));

        await second.DisposeAsync(); // a clean session's end removes its subscriptions
        await _nodes.WaitForRouteAsync("a", "c", "ref/t", present: false);
    }

    [Fact]
    public async Task A_shared_subscription_on_another_node_gets_a_message_only_when_no_local_member_has_it()
    {
        await using var remote = await MqttTestClient.ConnectAsync(_nodes["b"]);
        await remote.SubscribeAsync("$share/g1/sh/t");
        await _nodes.WaitForRouteAsync("a", "b", "sh/t", "g1");
        await _nodes.WaitForRouteAsync("c", "b", "sh/t", "g1");
        await using var publisherOnA = await MqttTestClient.ConnectAsync(_nodes["a"]);
        await publisherOnA.PublishAsync("sh/t", "no local member");
        await remote.WaitForMessageAsync(m => m.Payload == "no local member", Timeouts.Default, "the message on b's member");

        await using var local = await MqttTestClient.ConnectAsync(_nodes["a"]);
        await local.SubscribeAsync("$share/g1/sh/t");
        await using var marker = await MqttTestClient.ConnectAsync(_nodes["b"]);
        await marker.SubscribeAsync("sh-marker");
        await _nodes.WaitForRouteAsync("a", "b", "sh-marker");
        await publisherOnA.PublishAsync("sh/t", "local member");
        await publisherOnA.PublishAsync("sh-marker", "m");
        await local.WaitForMessageAsync(m => m.Payload == "local member", Timeouts.Default, "the message on a's member");
        await marker.WaitForMessageAsync("sh-marker", Timeouts.Default);
        Assert.DoesNotContain(remote.Received, m => m.Payload == "local member");
    }

    [Fact]
    public async Task Per_peer_figures_are_on_the_metrics_endpoint()
    {
        await using var subscriber = await MqttTestClient.ConnectAsync(_nodes["c"]);
        await subscriber.SubscribeAsync("metrics/t");
        await _nodes.WaitForRouteAsync("b", "c", "metrics/t");
        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["b"]);
        await publisher.PublishAsync("metrics/t", "x");
        await subscriber.WaitForMessageAsync("metrics/t", Timeouts.Default);
        await Wait.UntilAsync(() => _nodes.Link("b", "c").Crossed > 0, Timeouts.Default, "a crossing from b to c acknowledged");

        using var http = OperationsHttp.Create(_nodes["b"]);
        var text = await http.GetStringAsync("metrics");
        Assert.Contains("iotrealtime_cluster_peers 2\n", text);
        Assert.Contains("# TYPE iotrealtime_cluster_peer_messages_total counter\n", text);
        Assert.Matches("iotrealtime_cluster_peer_messages_total\\{peer=\"c\"\\} [1-9]", text);
        Assert.Matches("iotrealtime_cluster_peer_bytes_total\\{peer=\"c\"\\} [1-9]", text);
        Assert.Contains("iotrealtime_cluster_peer_queued{peer=\"c\"} 0\n", text);
        Assert.Contains("iotrealtime_cluster_peer_dropped_total{peer=\"c\"} 0\n", text);
        Assert.Contains("iotrealtime_cluster_peer_retries_total{peer=\"a\"}", text);
        Assert.Matches("iotrealtime_cluster_peer_batch_seconds_count\\{peer=\"c\"\\} [1-9]", text);
    }
}
