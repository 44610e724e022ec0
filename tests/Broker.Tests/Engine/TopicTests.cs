using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>MQTT 5 §4.7 / 3.1.1 §4.7: topic names, filters and wildcards, $ topics, $SYS, overlapping subscriptions (§3.3.4/§3.3.5).</summary>
public sealed class TopicTests
{
    const MqttQualityOfServiceLevel Qos0 = MqttQualityOfServiceLevel.AtMostOnce;
    const MqttQualityOfServiceLevel Qos1 = MqttQualityOfServiceLevel.AtLeastOnce;
    const MqttQualityOfServiceLevel Qos2 = MqttQualityOfServiceLevel.ExactlyOnce;

    public static TheoryData<MqttProtocolVersion, string, string, bool> Routing()
    {
        var cases = new (string Filter, string Topic, bool Matches)[]
        {
            ("a/b", "a/b", true),
            ("a/b", "a/B", false),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/+", "a", false),
            ("a/+", "a/", true),        // + matches an empty level
            ("+/b", "/b", true),        // ... also the empty first level
            ("a/+/c", "a//c", true),
            ("+/+", "a/b", true),
            ("a/#", "a", true),         // # also matches the parent level
            ("a/#", "a/b/c", true),
            ("a/#", "ab", false),
            ("#", "a/b/c", true),
            ("#", "/", true),
            ("+/#", "a", true),
            ("#", "$SYS/x", false),     // wildcards at the first level never match $ topics
            ("+/x", "$SYS/x", false),
            ("#", "$foo", false),
            ("+", "$foo", false),
            ("$SYS/#", "$SYS/broker/load", true),
            ("$SYS/+/load", "$SYS/broker/load", true),
            ("$foo", "$foo", true),
            ("a/$foo/#", "a/$foo/b", true), // $ only matters at the first level
        };
        var data = new TheoryData<MqttProtocolVersion, string, string, bool>();
        foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
        {
            foreach (var (filter, topic, matches) in cases)
            {
                data.Add(version, filter, topic, matches);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Routing))]
    public async Task Message_is_routed_only_where_the_filter_matches_the_topic(MqttProtocolVersion version, string filter, string topic, bool matches)
    {
        // no $SYS/broker/clients/<id>/... presence messages: "$SYS/#" must see only what the test publishes
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0, PresenceTopics = false });
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", version);
        await sub.SubscribeGrantedAsync(1, filter, Qos1);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        await pub.PublishAsync(topic, "x", Qos1);

        if (matches)
        {
            var delivered = await sub.ReceivePublishAsync();
            Assert.Equal(topic, delivered.Topic);
        }
        else
        {
            await sub.ExpectNothingBeforeMarkerAsync();
        }
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Fact]
    public async Task Sys_topics_publish_version_and_connected_clients()
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 1 });
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SubscribeGrantedAsync(1, "$SYS/#", Qos0);

        var seen = new Dictionary<string, string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        // a retained value from before this client connected may say 0: the next publication counts it
        while (!(seen.ContainsKey("$SYS/broker/version") && seen.TryGetValue("$SYS/broker/clients/connected", out var count) && count != "0"))
        {
            var left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero, $"$SYS topics seen so far: {string.Join(", ", seen.Keys)}");
            var publish = await sub.ReceivePublishAsync(left);
            Assert.StartsWith("$SYS/", publish.Topic);
            seen[publish.Topic] = publish.Text();
        }
        Assert.StartsWith("IotRealtime ", seen["$SYS/broker/version"]);
        Assert.True(int.TryParse(seen["$SYS/broker/clients/connected"], out var connected), seen["$SYS/broker/clients/connected"]);
        Assert.True(connected >= 1, $"clients/connected was {connected}");
        await sub.DisposeAsync();
    }

    [Fact]
    public async Task Sys_topics_are_not_matched_by_a_hash_subscription()
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 1 });
        var (all, _) = await RawMqttClient.ConnectAsync(server.Port, "all");
        await all.SubscribeGrantedAsync(1, "#", Qos0);
        var (sys, _) = await RawMqttClient.ConnectAsync(server.Port, "sys");
        await sys.SubscribeGrantedAsync(1, "$SYS/broker/version", Qos0);

        // once $SYS has been published live (proven by the second client: retain 0), the first must have had nothing
        while ((await sys.ReceivePublishAsync(TimeSpan.FromSeconds(5))).Retain)
        {
        }
        await all.ExpectNothingBeforeMarkerAsync();
        await all.DisposeAsync();
        await sys.DisposeAsync();
    }

    [Fact]
    public async Task Retained_dollar_topics_are_not_sent_to_wildcard_subscriptions()
    {
        await using var server = EngineServer.Start();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.PublishAsync("$app/state", "dollar", Qos1, packetId: 1, retain: true);
        await pub.PublishAsync("app/state", "plain", Qos1, packetId: 2, retain: true);

        var (all, _) = await RawMqttClient.ConnectAsync(server.Port, "all");
        await all.SubscribeGrantedAsync(1, "#", Qos1);
        Assert.Equal("app/state", (await all.ReceivePublishAsync()).Topic);
        await all.ExpectNothingBeforeMarkerAsync();

        var (dollar, _) = await RawMqttClient.ConnectAsync(server.Port, "dollar");
        await dollar.SubscribeGrantedAsync(1, "$app/#", Qos1);
        Assert.Equal("$app/state", (await dollar.ReceivePublishAsync()).Topic);
        await pub.DisposeAsync();
        await all.DisposeAsync();
        await dollar.DisposeAsync();
    }

    [Fact]
    public async Task Overlapping_subscriptions_give_one_delivery_at_the_highest_qos_with_every_subscription_identifier()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SubscribeGrantedAsync(1, "a/#", Qos0, subscriptionId: 1);
        await sub.SubscribeGrantedAsync(2, "a/b", Qos2, subscriptionId: 2);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");

        await pub.PublishAsync("a/b", "once", Qos2);
        var delivered = await sub.ReceivePublishAsync();
        Assert.Equal("once", delivered.Text());
        Assert.Equal(Qos2, delivered.QualityOfServiceLevel);
        Assert.Equal([1u, 2u], delivered.SubscriptionIdentifiers.Order());
        await sub.ExpectNothingBeforeMarkerAsync();

        // a topic only the wildcard matches carries only its identifier, at its QoS
        await pub.PublishAsync("a/c", "wildcard only", Qos2, packetId: 2);
        var other = await sub.ReceivePublishAsync();
        Assert.Equal(Qos0, other.QualityOfServiceLevel);
        Assert.Equal([1u], other.SubscriptionIdentifiers);
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Fact]
    public async Task Overlapping_subscriptions_give_one_delivery_at_the_highest_qos_in_mqtt_311()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", MqttProtocolVersion.V311);
        await sub.SubscribeGrantedAsync(1, "a/#", Qos0);
        await sub.SubscribeGrantedAsync(2, "a/+", Qos1);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", MqttProtocolVersion.V311);

        await pub.PublishAsync("a/b", "once", Qos2);
        var delivered = await sub.ReceivePublishAsync();
        Assert.Equal(Qos1, delivered.QualityOfServiceLevel);
        await sub.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Fact]
    public async Task Delivery_qos_is_the_lower_of_publish_and_subscription_qos()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SubscribeGrantedAsync(1, "low", Qos1);
        await sub.SubscribeGrantedAsync(2, "high", Qos2);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");

        await pub.PublishAsync("low", "x", Qos2, packetId: 1);
        Assert.Equal(Qos1, (await sub.ReceivePublishAsync()).QualityOfServiceLevel);
        await pub.PublishAsync("high", "x", Qos1, packetId: 2);
        Assert.Equal(Qos1, (await sub.ReceivePublishAsync()).QualityOfServiceLevel);
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Theory]
    [InlineData("a/#/b")]
    [InlineData("a+")]
    [InlineData("a/b#")]
    [InlineData("+a/b")]
    [InlineData("")]
    public async Task Invalid_topic_filter_gets_suback_0x8F_in_mqtt_5(string filter)
    {
        await using var server = EngineServer.Start();
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "c");
        await client.SendAsync(new MqttSubscribePacket
        {
            PacketIdentifier = 1,
            TopicFilters =
            [
                new MqttTopicFilter { Topic = filter, QualityOfServiceLevel = Qos1 },
                new MqttTopicFilter { Topic = "ok/+", QualityOfServiceLevel = Qos1 },
            ],
        });
        var subAck = await client.ReceiveAsync<MqttSubAckPacket>();
        Assert.Equal([MqttSubscribeReasonCode.TopicFilterInvalid, MqttSubscribeReasonCode.GrantedQoS1], subAck.ReasonCodes);
        Assert.Equal(0x8F, (int)subAck.ReasonCodes[0]);
        // the connection stays usable (QoS 0: a PUBACK could come before or after the echo of our own message)
        await client.PublishAsync("ok/1", "x", Qos0);
        Assert.Equal("ok/1", (await client.ReceivePublishAsync()).Topic);
        await client.DisposeAsync();
    }

    [Theory]
    [InlineData("a/#/b")]
    [InlineData("a+")]
    public async Task Invalid_topic_filter_closes_the_connection_in_mqtt_311(string filter)
    {
        await using var server = EngineServer.Start();
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "c", MqttProtocolVersion.V311);
        await client.SendAsync(new MqttSubscribePacket { PacketIdentifier = 1, TopicFilters = [new MqttTopicFilter { Topic = filter, QualityOfServiceLevel = Qos1 }] });
        Assert.Null(await client.ExpectClosedAsync());
        await client.DisposeAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Publish_to_a_topic_with_a_wildcard_closes_the_connection(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "c", version);
        await client.SendAsync(Packets.Publish("a/+", "x", Qos0));
        var disconnect = await client.ExpectClosedAsync();
        if (version == MqttProtocolVersion.V500)
        {
            Assert.Equal(MqttDisconnectReasonCode.TopicNameInvalid, disconnect?.ReasonCode);
        }
        else
        {
            Assert.Null(disconnect);
        }
        await client.DisposeAsync();
    }
}
