using System.Text;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>
/// MQTT 5 §4.7 topic rules as the routing layer implements them: <see cref="TopicValidation"/> directly, and the
/// (internal) subscription trie through what the broker exposes of it.
/// </summary>
public sealed class SubscriptionTrieTests
{
    const MqttQualityOfServiceLevel Qos1 = MqttQualityOfServiceLevel.AtLeastOnce;

    [Theory]
    [InlineData("a/b", "a/b")]
    [InlineData("a/+", "a/b")]
    [InlineData("a/+", "a/")]
    [InlineData("+/b", "/b")]
    [InlineData("+/+", "/")]
    [InlineData("a/+/c", "a//c")]
    [InlineData("a/#", "a")]
    [InlineData("a/#", "a/")]
    [InlineData("a/#", "a/b/c/d")]
    [InlineData("a/+/#", "a/b")]
    [InlineData("#", "a")]
    [InlineData("#", "/")]
    [InlineData("/#", "/")]
    [InlineData("/+", "/a")]
    [InlineData("+", "a")]
    [InlineData("a/b/", "a/b/")]
    [InlineData("$SYS/#", "$SYS")]
    [InlineData("$SYS/#", "$SYS/broker/version")]
    [InlineData("$SYS/+/version", "$SYS/broker/version")]
    [InlineData("$foo", "$foo")]
    [InlineData("a/$b", "a/$b")]
    [InlineData("a/+", "a/$b")]
    [InlineData("sport/tennis/+", "sport/tennis/player1")]
    [InlineData("sport/#", "sport")]
    [InlineData("ünï/+", "ünï/cödé")]
    public void Filter_matches_topic(string filter, string topic) => Assert.True(TopicValidation.Matches(filter, topic));

    [Theory]
    [InlineData("a/b", "a/c")]
    [InlineData("a/b", "A/b")]
    [InlineData("a/b", "a/b/")]
    [InlineData("a/b", "a/b/c")]
    [InlineData("a/b/c", "a/b")]
    [InlineData("a/+", "a")]
    [InlineData("a/+", "a/b/c")]
    [InlineData("a/+/+", "a/b")]
    [InlineData("+", "/")]
    [InlineData("+", "a/b")]
    [InlineData("+/+/#", "a")]
    [InlineData("a/#", "ab")]
    [InlineData("a/#", "b/a")]
    [InlineData("/#", "a")]
    [InlineData("#", "$SYS")]
    [InlineData("#", "$SYS/broker/version")]
    [InlineData("+/broker/version", "$SYS/broker/version")]
    [InlineData("+", "$foo")]
    [InlineData("+/#", "$foo/bar")]
    [InlineData("$SYS/#", "$SYs/x")]
    [InlineData("sport/tennis/+", "sport/tennis/player1/ranking")]
    public void Filter_does_not_match_topic(string filter, string topic) => Assert.False(TopicValidation.Matches(filter, topic));

    [Theory]
    [InlineData("#")]
    [InlineData("+")]
    [InlineData("a")]
    [InlineData("/")]
    [InlineData("//")]
    [InlineData("a/#")]
    [InlineData("a/+/b")]
    [InlineData("+/+/#")]
    [InlineData("/+")]
    [InlineData("$SYS/#")]
    [InlineData("a b/c d")]
    [InlineData("$share/g/a/#")]
    [InlineData("$share/g/+")]
    [InlineData("$share/group-1/#")]
    [InlineData("$sharex/a")]
    [InlineData("a/$share/g/b")]
    public void Valid_topic_filter_is_accepted(string filter) => Assert.True(TopicValidation.IsValidTopicFilter(filter));

    [Theory]
    [InlineData("")]
    [InlineData("a/#/b")]
    [InlineData("#/a")]
    [InlineData("a#")]
    [InlineData("a/b#")]
    [InlineData("a+")]
    [InlineData("+a")]
    [InlineData("a/+b/c")]
    [InlineData("a/b+")]
    [InlineData("##")]
    [InlineData("++")]
    [InlineData("a\0b")]
    [InlineData("$share/g")]
    [InlineData("$share/g/")]
    [InlineData("$share//a")]
    [InlineData("$share/g+/a")]
    [InlineData("$share/g#/a")]
    [InlineData("$share/g/a/#/b")]
    [InlineData("$share/g/a+")]
    public void Invalid_topic_filter_is_rejected(string filter) => Assert.False(TopicValidation.IsValidTopicFilter(filter));

    [Theory]
    [InlineData("a")]
    [InlineData("/")]
    [InlineData("a/b/c")]
    [InlineData("a//b")]
    [InlineData("$SYS/broker")]
    [InlineData("a b")]
    [InlineData("ünïcödé/✓")]
    public void Valid_topic_name_is_accepted(string topic) => Assert.True(TopicValidation.IsValidTopicName(topic));

    [Theory]
    [InlineData("")]
    [InlineData("a/+")]
    [InlineData("+")]
    [InlineData("a/#")]
    [InlineData("#")]
    [InlineData("a+b")]
    [InlineData("a#b")]
    [InlineData("a\0b")]
    [InlineData("a\uFFFDb")]
    public void Invalid_topic_name_is_rejected(string topic) => Assert.False(TopicValidation.IsValidTopicName(topic));

    [Theory]
    [InlineData("$share/g/a/b", "g", "a/b")]
    [InlineData("$share/grp/#", "grp", "#")]
    [InlineData("$share/g/$SYS/x", "g", "$SYS/x")]
    public void Shared_filter_splits_into_group_and_filter(string filter, string group, string inner)
    {
        Assert.True(TopicValidation.TryParseShared(filter, out var g, out var f));
        Assert.Equal(group, g);
        Assert.Equal(inner, f);
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("$share")]
    [InlineData("$share/g")]
    [InlineData("$sharex/g/a")]
    public void Non_shared_filter_is_not_split(string filter) => Assert.False(TopicValidation.TryParseShared(filter, out _, out _));

    [Fact]
    public void Mqtt_utf8_rejects_nul_and_invalid_sequences()
    {
        Assert.True(TopicValidation.IsValidMqttUtf8(Encoding.UTF8.GetBytes("a/ü/✓/😀")));
        Assert.False(TopicValidation.IsValidMqttUtf8([(byte)'a', 0x00, (byte)'b']));
        Assert.False(TopicValidation.IsValidMqttUtf8([0xC3]));             // truncated sequence
        Assert.False(TopicValidation.IsValidMqttUtf8([0xC0, 0xAF]));       // overlong encoding
        Assert.False(TopicValidation.IsValidMqttUtf8([0xED, 0xA0, 0x80])); // UTF-16 surrogate
    }

    // ------------------------------------------------ the trie, through the broker

    [Fact]
    public async Task Subscription_count_follows_subscribe_resubscribe_and_unsubscribe()
    {
        await using var server = EngineServer.Start();
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "c");
        Assert.Equal(0, server.Broker.SubscriptionCount);
        await client.SubscribeGrantedAsync(1, "a/+", Qos1);
        await client.SubscribeGrantedAsync(2, "a/#", Qos1);
        await client.SubscribeGrantedAsync(3, "$share/g/a/#", Qos1);
        Assert.Equal(3, server.Broker.SubscriptionCount);

        // the same filter again replaces the subscription, it does not add one
        await client.SubscribeGrantedAsync(4, "a/+", MqttQualityOfServiceLevel.ExactlyOnce);
        Assert.Equal(3, server.Broker.SubscriptionCount);

        await client.UnsubscribeAsync(5, "a/+");
        Assert.Equal(2, server.Broker.SubscriptionCount);
        await client.UnsubscribeAsync(6, "$share/g/a/#");
        Assert.Equal(1, server.Broker.SubscriptionCount);
        await client.DisposeAsync();
        await Wait.UntilAsync(() => server.Broker.SubscriptionCount == 0, TimeSpan.FromSeconds(5), "the ended session's subscriptions to be removed");
    }

    [Fact]
    public async Task Resubscribe_replaces_the_qos_of_the_existing_subscription()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SubscribeGrantedAsync(1, "a/+", MqttQualityOfServiceLevel.ExactlyOnce);
        await sub.SubscribeGrantedAsync(2, "a/+", MqttQualityOfServiceLevel.AtMostOnce);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.PublishAsync("a/b", "x", MqttQualityOfServiceLevel.ExactlyOnce);

        var delivered = await sub.ReceivePublishAsync();
        Assert.Equal(MqttQualityOfServiceLevel.AtMostOnce, delivered.QualityOfServiceLevel);
        await sub.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Fact]
    public async Task Unsubscribe_of_an_unknown_filter_reports_no_subscription_existed()
    {
        await using var server = EngineServer.Start();
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "c");
        await client.SubscribeGrantedAsync(1, "a/b", Qos1);
        await client.SendAsync(new MQTTnet.Packets.MqttUnsubscribePacket { PacketIdentifier = 2, TopicFilters = ["a/b", "a/+"] });
        var unsubAck = await client.ReceiveAsync<MQTTnet.Packets.MqttUnsubAckPacket>();
        Assert.Equal([MqttUnsubscribeReasonCode.Success, MqttUnsubscribeReasonCode.NoSubscriptionExisted], unsubAck.ReasonCodes);
        await client.DisposeAsync();
    }

    [Fact]
    public async Task Many_subscribers_on_shared_levels_each_get_their_own_matches()
    {
        await using var server = EngineServer.Start();
        var filters = new[] { "f/a/b", "f/+/b", "f/a/+", "f/#", "f/+/#", "f/a/b/#", "f/+/+", "f/b/b" };
        var clients = new List<RawMqttClient>();
        for (var i = 0; i < filters.Length; i++)
        {
            var (client, _) = await RawMqttClient.ConnectAsync(server.Port, $"c{i}");
            await client.SubscribeGrantedAsync(1, filters[i], Qos1);
            clients.Add(client);
        }
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", MqttProtocolVersion.V311);
        await pub.PublishAsync("f/a/b", "x", Qos1);
        // every filter but the last matches f/a/b
        for (var i = 0; i < filters.Length - 1; i++)
        {
            Assert.Equal("f/a/b", (await clients[i].ReceivePublishAsync()).Topic);
            await clients[i].ExpectNothingBeforeMarkerAsync();
        }
        await clients[^1].ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        foreach (var c in clients) await c.DisposeAsync();
    }
}
