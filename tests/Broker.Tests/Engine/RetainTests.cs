using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>MQTT 5 §3.3.1.3 / 3.1.1 §3.3.1.3: retained messages; MQTT 5 §3.8.3.1 subscription options (Retain Handling, Retain As Published, No Local).</summary>
public sealed class RetainTests
{
    const MqttQualityOfServiceLevel Qos0 = MqttQualityOfServiceLevel.AtMostOnce;
    const MqttQualityOfServiceLevel Qos1 = MqttQualityOfServiceLevel.AtLeastOnce;

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Retained_message_is_delivered_to_a_later_subscriber_with_retain_set(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        await pub.PublishAsync("sensors/t1", "21.5", Qos1, retain: true);

        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", version);
        await sub.SubscribeGrantedAsync(1, "sensors/+", Qos1);
        var retained = await sub.ReceivePublishAsync();
        Assert.Equal("sensors/t1", retained.Topic);
        Assert.Equal("21.5", retained.Text());
        Assert.True(retained.Retain);
        await sub.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Newer_retained_message_replaces_the_older_one(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        await pub.PublishAsync("state", "old", Qos1, packetId: 1, retain: true);
        await pub.PublishAsync("state", "new", Qos1, packetId: 2, retain: true);

        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", version);
        await sub.SubscribeGrantedAsync(1, "state", Qos1);
        var retained = await sub.ReceivePublishAsync();
        Assert.Equal("new", retained.Text());
        Assert.True(retained.Retain);
        await sub.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Retained_message_is_cleared_by_an_empty_retained_payload(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        await pub.PublishAsync("state", "on", Qos1, packetId: 1, retain: true);
        await pub.PublishAsync("state", "", Qos1, packetId: 2, retain: true);

        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", version);
        await sub.SubscribeGrantedAsync(1, "#", Qos1);
        await sub.ExpectNothingBeforeMarkerAsync();
        Assert.Equal(0, server.Broker.Retained.Count);
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Empty_retained_payload_is_still_delivered_to_existing_subscribers(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", version);
        await sub.SubscribeGrantedAsync(1, "state", Qos1);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        await pub.PublishAsync("state", "", Qos1, retain: true);

        var delivered = await sub.ReceivePublishAsync();
        Assert.Equal("state", delivered.Topic);
        Assert.Equal(0, delivered.Payload.Length);
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Fact]
    public async Task Retained_publish_is_refused_when_retain_is_not_available()
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0, RetainAvailable = false });
        var (client, connAck) = await RawMqttClient.ConnectAsync(server.Port, "c");
        Assert.False(connAck.RetainAvailable);
        await client.SendAsync(Packets.Publish("state", "on", Qos1, id: 1, retain: true));
        var disconnect = await client.ExpectClosedAsync();
        Assert.Equal(MqttDisconnectReasonCode.RetainNotSupported, disconnect?.ReasonCode);
        await client.DisposeAsync();
        Assert.Equal(0, server.Broker.Retained.Count);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Retain_flag_is_cleared_on_live_delivery_to_an_existing_subscription(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", version);
        await sub.SubscribeGrantedAsync(1, "state", Qos1);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        await pub.PublishAsync("state", "live", Qos1, retain: true);

        var live = await sub.ReceivePublishAsync();
        Assert.Equal("live", live.Text());
        Assert.False(live.Retain);

        // the message was still retained: a later subscriber gets it with the flag
        var (late, _) = await RawMqttClient.ConnectAsync(server.Port, "late", version);
        await late.SubscribeGrantedAsync(1, "state", Qos1);
        Assert.True((await late.ReceivePublishAsync()).Retain);
        await pub.DisposeAsync();
        await sub.DisposeAsync();
        await late.DisposeAsync();
    }

    [Fact]
    public async Task Retained_message_carries_the_subscription_identifier_and_the_lower_qos()
    {
        await using var server = EngineServer.Start();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.PublishAsync("state", "on", MqttQualityOfServiceLevel.ExactlyOnce, retain: true);

        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SubscribeGrantedAsync(1, "state", Qos1, subscriptionId: 42);
        var retained = await sub.ReceivePublishAsync();
        Assert.Equal(Qos1, retained.QualityOfServiceLevel);
        Assert.Equal([42u], retained.SubscriptionIdentifiers);
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Fact]
    public async Task Retain_handling_0_sends_retained_messages_on_every_subscribe()
    {
        await using var server = EngineServer.Start();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.PublishAsync("state", "on", Qos1, retain: true);

        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SubscribeGrantedAsync(1, "state", Qos1, configure: f => f.RetainHandling = MqttRetainHandling.SendAtSubscribe);
        Assert.True((await sub.ReceivePublishAsync()).Retain);
        await sub.SubscribeGrantedAsync(2, "state", Qos1, configure: f => f.RetainHandling = MqttRetainHandling.SendAtSubscribe);
        var again = await sub.ReceivePublishAsync();
        Assert.Equal("on", again.Text());
        Assert.True(again.Retain);
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Fact]
    public async Task Retain_handling_1_sends_retained_messages_only_for_a_new_subscription()
    {
        await using var server = EngineServer.Start();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.PublishAsync("state", "on", Qos1, retain: true);

        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SubscribeGrantedAsync(1, "state", Qos1, configure: f => f.RetainHandling = MqttRetainHandling.SendAtSubscribeIfNewSubscriptionOnly);
        Assert.True((await sub.ReceivePublishAsync()).Retain);

        // re-subscribing to the same filter replaces the subscription: no retained message this time
        await sub.SubscribeGrantedAsync(2, "state", Qos1, configure: f => f.RetainHandling = MqttRetainHandling.SendAtSubscribeIfNewSubscriptionOnly);
        await sub.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Fact]
    public async Task Retain_handling_2_never_sends_retained_messages()
    {
        await using var server = EngineServer.Start();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.PublishAsync("state", "on", Qos1, retain: true);

        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SubscribeGrantedAsync(1, "state", Qos1, configure: f => f.RetainHandling = MqttRetainHandling.DoNotSendOnSubscribe);
        await sub.ExpectNothingBeforeMarkerAsync();

        // the subscription itself works: live messages still arrive
        await pub.PublishAsync("state", "off", Qos1, packetId: 2);
        Assert.Equal("off", (await sub.ReceivePublishAsync()).Text());
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Fact]
    public async Task Retain_as_published_keeps_the_retain_flag_on_live_delivery()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SubscribeGrantedAsync(1, "rap", Qos1, configure: f => f.RetainAsPublished = true);
        await sub.SubscribeGrantedAsync(2, "plain", Qos1);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");

        await pub.PublishAsync("rap", "kept", Qos1, packetId: 1, retain: true);
        Assert.True((await sub.ReceivePublishAsync()).Retain);
        await pub.PublishAsync("rap", "not retained", Qos1, packetId: 2, retain: false);
        Assert.False((await sub.ReceivePublishAsync()).Retain);
        await pub.PublishAsync("plain", "cleared", Qos1, packetId: 3, retain: true);
        Assert.False((await sub.ReceivePublishAsync()).Retain);
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }

    [Fact]
    public async Task No_local_subscription_does_not_receive_the_clients_own_publishes()
    {
        await using var server = EngineServer.Start();
        var (self, _) = await RawMqttClient.ConnectAsync(server.Port, "self");
        await self.SubscribeGrantedAsync(1, "chat", Qos0, configure: f => f.NoLocal = true);
        var (other, _) = await RawMqttClient.ConnectAsync(server.Port, "other");
        await other.SubscribeGrantedAsync(1, "chat", Qos0);

        await self.PublishAsync("chat", "from self", Qos1);
        Assert.Equal("from self", (await other.ReceivePublishAsync()).Text());
        await self.ExpectNothingBeforeMarkerAsync();

        // messages from other clients still arrive (QoS 0: other is subscribed too, so a PUBACK could race its own echo)
        await other.PublishAsync("chat", "from other", Qos0);
        Assert.Equal("from other", (await self.ReceivePublishAsync()).Text());
        await self.DisposeAsync();
        await other.DisposeAsync();
    }

    [Fact]
    public async Task Without_no_local_a_client_receives_its_own_publishes()
    {
        await using var server = EngineServer.Start();
        var (self, _) = await RawMqttClient.ConnectAsync(server.Port, "self");
        await self.SubscribeGrantedAsync(1, "chat", Qos0);
        await self.PublishAsync("chat", "echo", Qos0);
        Assert.Equal("echo", (await self.ReceivePublishAsync()).Text());
        await self.DisposeAsync();
    }

    [Fact]
    public async Task Expired_retained_message_is_not_delivered()
    {
        await using var server = EngineServer.Start();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.PublishAsync("short", "gone soon", Qos1, packetId: 1, retain: true, configure: p => p.MessageExpiryInterval = 1);
        var expiresAt = DateTime.UtcNow.AddSeconds(1);
        await pub.PublishAsync("long", "stays", Qos1, packetId: 2, retain: true, configure: p => p.MessageExpiryInterval = 3600);

        // wait on the clock, not a sleep: the condition is that the first message's expiry has passed
        await Wait.UntilAsync(() => DateTime.UtcNow > expiresAt.AddMilliseconds(200), TimeSpan.FromSeconds(5), "the retained message to expire");

        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SubscribeGrantedAsync(1, "#", Qos1);
        var delivered = await sub.ReceivePublishAsync();
        Assert.Equal("long", delivered.Topic);
        Assert.InRange(delivered.MessageExpiryInterval, 3500u, 3600u);
        await sub.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }
}
