using System.Text;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>A PUBLISH accepted on one node reaches the matching subscriptions on the others, as one broker would deliver it.</summary>
public sealed class CrossNodeDeliveryTests(ThreeNodeCluster cluster) : IClassFixture<ThreeNodeCluster>
{
    readonly ClusterNodes _nodes = cluster.Nodes;

    [Theory]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.ExactlyOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.ExactlyOnce)]
    public async Task Publish_on_one_node_reaches_subscribers_on_the_others_once_at_the_granted_QoS(MqttProtocolVersion version, MqttQualityOfServiceLevel publishQos)
    {
        var topic = $"qos/{version}/{(int)publishQos}";
        await using var b0 = await MqttTestClient.ConnectAsync(_nodes["b"], version);
        await using var b2 = await MqttTestClient.ConnectAsync(_nodes["b"], version);
        await using var c1 = await MqttTestClient.ConnectAsync(_nodes["c"], version);
        await b0.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtMostOnce);
        await b2.SubscribeAsync(topic, MqttQualityOfServiceLevel.ExactlyOnce);
        await c1.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        await b0.SubscribeAsync(topic + "/end", MqttQualityOfServiceLevel.AtLeastOnce);
        await b2.SubscribeAsync(topic + "/end", MqttQualityOfServiceLevel.AtLeastOnce);
        await c1.SubscribeAsync(topic + "/end", MqttQualityOfServiceLevel.AtLeastOnce);
        await _nodes.WaitForRouteAsync("a", "b", topic + "/end");
        await _nodes.WaitForRouteAsync("a", "c", topic + "/end");

        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["a"], version);
        await publisher.PublishAsync(topic, "hello", publishQos);
        await publisher.PublishAsync(topic + "/end", "end", MqttQualityOfServiceLevel.AtLeastOnce);

        foreach (var (client, granted) in new[] { (b0, MqttQualityOfServiceLevel.AtMostOnce), (b2, MqttQualityOfServiceLevel.ExactlyOnce), (c1, MqttQualityOfServiceLevel.AtLeastOnce) })
        {
            // per-publisher order holds across nodes: once the end marker is there, so is every copy of the message
            await client.WaitForMessageAsync(topic + "/end", Timeouts.Default);
            var copies = client.Received.Where(m => m.Topic == topic).ToList();
            var copy = Assert.Single(copies);
            Assert.Equal("hello", copy.Payload);
            Assert.Equal((MqttQualityOfServiceLevel)Math.Min((int)granted, (int)publishQos), copy.QoS);
        }
    }

    [Fact]
    public async Task Overlapping_subscriptions_of_one_session_on_another_node_get_one_copy_with_every_subscription_identifier()
    {
        var received = new List<MqttApplicationMessage>();
        using var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            lock (received) received.Add(e.ApplicationMessage);
            return Task.CompletedTask;
        };
        await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", _nodes["b"].MqttPort)
            .WithProtocolVersion(MqttProtocolVersion.V500).WithClientId("overlap-b").Build());
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("ov/+/x", MqttQualityOfServiceLevel.AtLeastOnce).WithSubscriptionIdentifier(7).Build());
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("ov/#", MqttQualityOfServiceLevel.ExactlyOnce).WithSubscriptionIdentifier(9).Build());
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("ov-end", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await _nodes.WaitForRouteAsync("a", "b", "ov/+/x");
        await _nodes.WaitForRouteAsync("a", "b", "ov/#");
        await _nodes.WaitForRouteAsync("a", "b", "ov-end");

        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["a"]);
        await publisher.PublishAsync("ov/1/x", "both", MqttQualityOfServiceLevel.ExactlyOnce);
        await publisher.PublishAsync("ov-end", "end");
        await Wait.UntilAsync(() => { lock (received) return received.Any(m => m.Topic == "ov-end"); }, Timeouts.Default, "the end marker");

        List<MqttApplicationMessage> copies;
        lock (received) copies = received.Where(m => m.Topic == "ov/1/x").ToList();
        var copy = Assert.Single(copies);
        Assert.Equal(MqttQualityOfServiceLevel.ExactlyOnce, copy.QualityOfServiceLevel);
        Assert.Equal([7u, 9u], copy.SubscriptionIdentifiers.Order().ToArray());
        await client.DisconnectAsync();
    }

    [Fact]
    public async Task Wildcard_subscriptions_on_other_nodes_match_as_on_one_broker()
    {
        await using var plus = await MqttTestClient.ConnectAsync(_nodes["b"], MqttProtocolVersion.V311);
        await using var hash = await MqttTestClient.ConnectAsync(_nodes["c"]);
        await plus.SubscribeAsync("wc/+/temp");
        await hash.SubscribeAsync("wc/#");
        await _nodes.WaitForRouteAsync("a", "b", "wc/+/temp");
        await _nodes.WaitForRouteAsync("a", "c", "wc/#");

        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["a"]);
        await publisher.PublishAsync("wc/dev1/temp", "1");
        await publisher.PublishAsync("wc/dev1/hum", "2");
        await publisher.PublishAsync("wc", "3");
        await publisher.PublishAsync("wc/dev2/temp", "4");

        await plus.WaitForMessageAsync(m => m.Payload == "4", Timeouts.Default, "the last temperature");
        await hash.WaitForMessageAsync(m => m.Payload == "4", Timeouts.Default, "the last temperature");
        Assert.Equal(["1", "4"], plus.Received.Select(m => m.Payload));
        Assert.Equal(["1", "2", "3", "4"], hash.Received.Select(m => m.Payload));
    }

    [Fact]
    public async Task Two_thousand_QoS_1_messages_from_one_publisher_arrive_in_order_on_another_node()
    {
        const int count = 2000;
        await using var subscriber = await MqttTestClient.ConnectAsync(_nodes["b"]);
        await subscriber.SubscribeAsync("order/seq");
        await _nodes.WaitForRouteAsync("a", "b", "order/seq");

        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["a"]);
        var sends = new List<Task>(count);
        for (var i = 0; i < count; i++)
        {
            var message = new MqttApplicationMessageBuilder().WithTopic("order/seq").WithPayload(Encoding.UTF8.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture)))
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
            sends.Add(publisher.Client.PublishAsync(message));
        }
        await Task.WhenAll(sends).WaitAsync(TimeSpan.FromSeconds(60));

        await Wait.UntilAsync(() => subscriber.Received.Count >= count, TimeSpan.FromSeconds(60), $"{count} messages on node b");
        var payloads = subscriber.Received.Select(m => int.Parse(m.Payload, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(Enumerable.Range(0, count), payloads);
    }

    [Fact]
    public async Task MQTT_5_properties_cross_with_the_message_and_the_expiry_counts_down()
    {
        var received = new List<MqttApplicationMessage>();
        using var subscriber = new MqttClientFactory().CreateMqttClient();
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            lock (received) received.Add(e.ApplicationMessage);
            return Task.CompletedTask;
        };
        await subscriber.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", _nodes["b"].MqttPort)
            .WithProtocolVersion(MqttProtocolVersion.V500).WithClientId("props-b").Build());
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("props/x", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await _nodes.WaitForRouteAsync("a", "b", "props/x");

        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["a"]);
        var message = new MqttApplicationMessageBuilder().WithTopic("props/x").WithPayload("{\"t\":1}")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithContentType("application/json").WithResponseTopic("props/reply").WithCorrelationData([1, 2, 3])
            .WithPayloadFormatIndicator(MqttPayloadFormatIndicator.CharacterData).WithMessageExpiryInterval(600)
            .WithUserProperty("site", Encoding.UTF8.GetBytes("north")).WithUserProperty("site", Encoding.UTF8.GetBytes("south")).Build();
        await publisher.Client.PublishAsync(message);

        await Wait.UntilAsync(() => { lock (received) return received.Count == 1; }, Timeouts.Default, "the message on node b");
        var copy = received[0];
        Assert.Equal("application/json", copy.ContentType);
        Assert.Equal("props/reply", copy.ResponseTopic);
        Assert.Equal([1, 2, 3], copy.CorrelationData);
        Assert.Equal(MqttPayloadFormatIndicator.CharacterData, copy.PayloadFormatIndicator);
        Assert.InRange(copy.MessageExpiryInterval, 1u, 600u);
        Assert.Equal([("site", "north"), ("site", "south")], copy.UserProperties.Select(p => (p.Name, p.ReadValueAsString())));
        await subscriber.DisconnectAsync();
    }
}
