using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Engine.Packets;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>MQTT 5 §4.9 flow control, Maximum Packet Size, topic aliases, message expiry and keep alive.</summary>
public sealed class FlowControlTests
{
    [Fact]
    public async Task Broker_never_exceeds_the_clients_receive_maximum()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", configure: c => c.ReceiveMaximum = 3);
        await sub.SendAsync(Subscribe(1, "f", MqttQualityOfServiceLevel.AtLeastOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        for (ushort i = 1; i <= 10; i++)
        {
            await pub.SendAsync(Publish("f", i.ToString(), MqttQualityOfServiceLevel.AtLeastOnce, i));
            await pub.ReceiveAsync<MqttPubAckPacket>();
        }

        var window = new List<MqttPublishPacket>();
        for (var i = 0; i < 3; i++)
        {
            window.Add(await sub.ReceiveAsync<MqttPublishPacket>());
        }
        // window full: the other 7 wait in the session's queue for an acknowledgement (a marker would queue behind them)
        await WaitForWindowAsync(server, "sub", inflight: 3, queued: 7);
        await sub.SendAsync(new MqttPubAckPacket { PacketIdentifier = window[0].PacketIdentifier });
        Assert.Equal("4", (await sub.ReceiveAsync<MqttPublishPacket>()).Text());
        await WaitForWindowAsync(server, "sub", inflight: 3, queued: 6);
    }

    /// <summary>Waits until the broker holds exactly <paramref name="inflight"/> unacknowledged deliveries and <paramref name="queued"/> waiting ones for the client: had it sent more, fewer would wait.</summary>
    static Task WaitForWindowAsync(EngineServer server, string clientId, int inflight, int queued) =>
        Wait.UntilAsync(() => server.Broker.GetSession(clientId) is { } s && s.Inflight == inflight && s.QueueDepth == queued, Timeouts.Default,
            $"{inflight} in flight and {queued} queued for {clientId} (now {server.Broker.GetSession(clientId)?.Inflight} and {server.Broker.GetSession(clientId)?.QueueDepth})");

    [Fact]
    public async Task Exceeding_our_receive_maximum_gets_disconnect_0x93()
    {
        await using var server = EngineServer.Start(new BrokerOptions { ReceiveMaximum = 2, SysInterval = 0 });
        var (pub, ack) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        Assert.Equal(2, ack.ReceiveMaximum);
        for (ushort i = 1; i <= 3; i++)
        {
            // QoS 2 without PUBREL keeps each one counted against the window
            await pub.SendAsync(Publish("t", "x", MqttQualityOfServiceLevel.ExactlyOnce, i));
        }
        var disconnect = await pub.ExpectClosedAsync();
        Assert.Equal(MqttDisconnectReasonCode.ReceiveMaximumExceeded, disconnect?.ReasonCode);
    }

    [Fact]
    public async Task Packet_above_maximum_packet_size_gets_disconnect_0x95()
    {
        await using var server = EngineServer.Start(new BrokerOptions { MaximumPacketSize = 1024, SysInterval = 0 });
        var (pub, ack) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        Assert.Equal(1024u, ack.MaximumPacketSize);
        await pub.SendAsync(Publish("t", new string('x', 2000), MqttQualityOfServiceLevel.AtMostOnce));
        var disconnect = await pub.ExpectClosedAsync();
        Assert.Equal(MqttDisconnectReasonCode.PacketTooLarge, disconnect?.ReasonCode);
    }

    [Fact]
    public async Task Message_larger_than_the_clients_maximum_packet_size_is_not_sent_to_it()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", configure: c => c.MaximumPacketSize = 200);
        await sub.SendAsync(Subscribe(1, "big/#", MqttQualityOfServiceLevel.AtLeastOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.SendAsync(Publish("big/1", new string('x', 500), MqttQualityOfServiceLevel.AtLeastOnce, 1));
        await pub.SendAsync(Publish("big/2", "small", MqttQualityOfServiceLevel.AtLeastOnce, 2));
        var got = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("small", got.Text());
    }

    [Fact]
    public async Task Inbound_topic_alias_is_resolved()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SendAsync(Subscribe(1, "alias/t", MqttQualityOfServiceLevel.AtMostOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var (pub, ack) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        Assert.True(ack.TopicAliasMaximum > 0);
        var first = Publish("alias/t", "1", MqttQualityOfServiceLevel.AtMostOnce);
        first.TopicAlias = 1;
        await pub.SendAsync(first);
        var second = Publish("", "2", MqttQualityOfServiceLevel.AtMostOnce);
        second.TopicAlias = 1;
        await pub.SendAsync(second);
        Assert.Equal("alias/t", (await sub.ReceiveAsync<MqttPublishPacket>()).Topic);
        var resolved = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal(("alias/t", "2"), (resolved.Topic, resolved.Text()));
    }

    [Fact]
    public async Task Unknown_or_out_of_range_topic_alias_closes_the_connection()
    {
        await using var server = EngineServer.Start(new BrokerOptions { TopicAliasMaximum = 5, SysInterval = 0 });
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        var bad = Publish("t", "x", MqttQualityOfServiceLevel.AtMostOnce);
        bad.TopicAlias = 6;
        await pub.SendAsync(bad);
        Assert.Equal(MqttDisconnectReasonCode.TopicAliasInvalid, (await pub.ExpectClosedAsync())?.ReasonCode);

        var (pub2, _) = await RawMqttClient.ConnectAsync(server.Port, "pub2");
        var undefined = Publish("", "x", MqttQualityOfServiceLevel.AtMostOnce);
        undefined.TopicAlias = 2;
        await pub2.SendAsync(undefined);
        Assert.Equal(MqttDisconnectReasonCode.ProtocolError, (await pub2.ExpectClosedAsync())?.ReasonCode);
    }

    [Fact]
    public async Task Outbound_topic_alias_is_used_when_the_client_allows_it()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", configure: c => c.TopicAliasMaximum = 10);
        await sub.SendAsync(Subscribe(1, "oa/t", MqttQualityOfServiceLevel.AtMostOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.SendAsync(Publish("oa/t", "1", MqttQualityOfServiceLevel.AtMostOnce));
        await pub.SendAsync(Publish("oa/t", "2", MqttQualityOfServiceLevel.AtMostOnce));
        var first = await sub.ReceiveAsync<MqttPublishPacket>();
        var second = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("oa/t", first.Topic);
        Assert.NotEqual(0, first.TopicAlias);
        Assert.Equal(string.Empty, second.Topic);
        Assert.Equal(first.TopicAlias, second.TopicAlias);
    }

    [Fact]
    public async Task Queued_message_past_its_expiry_is_not_delivered_and_the_rest_carries_the_remaining_interval()
    {
        await using var server = EngineServer.Start();
        void Persistent(MqttConnectPacket c) => c.SessionExpiryInterval = 300;
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", cleanStart: false, configure: Persistent);
        await sub.SendAsync(Subscribe(1, "e/#", MqttQualityOfServiceLevel.AtLeastOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        await sub.DisposeAsync();
        await Wait.UntilAsync(() => server.Broker.ConnectedClients == 0, TimeSpan.FromSeconds(5), "subscriber gone");

        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        var shortLived = Publish("e/short", "gone", MqttQualityOfServiceLevel.AtLeastOnce, 1);
        shortLived.MessageExpiryInterval = 1;
        await pub.SendAsync(shortLived);
        var longLived = Publish("e/long", "kept", MqttQualityOfServiceLevel.AtLeastOnce, 2);
        longLived.MessageExpiryInterval = 100;
        await pub.SendAsync(longLived);
        await pub.ReceiveAsync<MqttPubAckPacket>();
        await pub.ReceiveAsync<MqttPubAckPacket>();
        var expiredAt = DateTime.UtcNow.AddSeconds(1.2);
        await Wait.UntilAsync(() => DateTime.UtcNow > expiredAt, TimeSpan.FromSeconds(3), "the short message to expire");

        var (sub2, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", cleanStart: false, configure: Persistent);
        var got = await sub2.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("kept", got.Text());
        Assert.InRange(got.MessageExpiryInterval, 95u, 99u);
    }

    [Fact]
    public async Task Client_silent_for_one_and_a_half_keep_alives_is_disconnected_and_its_will_sent()
    {
        await using var server = EngineServer.Start();
        var (watcher, _) = await RawMqttClient.ConnectAsync(server.Port, "watcher");
        await watcher.SendAsync(Subscribe(1, "will/ka", MqttQualityOfServiceLevel.AtMostOnce));
        await watcher.ReceiveAsync<MqttSubAckPacket>();
        var (silent, _) = await RawMqttClient.ConnectAsync(server.Port, "silent", configure: c =>
        {
            c.KeepAlivePeriod = 1;
            c.WillFlag = true;
            c.WillTopic = "will/ka";
            c.WillMessage = Encoding.UTF8.GetBytes("gone");
        });
        var disconnect = await silent.ExpectClosedAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(MqttDisconnectReasonCode.KeepAliveTimeout, disconnect?.ReasonCode);
        Assert.Equal("gone", (await watcher.ReceiveAsync<MqttPublishPacket>()).Text());
    }

    [Fact]
    public async Task Server_keep_alive_caps_a_longer_request()
    {
        await using var server = EngineServer.Start(new BrokerOptions { MaxKeepAlive = 60, SysInterval = 0 });
        var (_, ack) = await RawMqttClient.ConnectAsync(server.Port, "ka", configure: c => c.KeepAlivePeriod = 120);
        Assert.Equal(60, ack.ServerKeepAlive);
        var (_, ok) = await RawMqttClient.ConnectAsync(server.Port, "ka2", configure: c => c.KeepAlivePeriod = 30);
        Assert.Equal(0, ok.ServerKeepAlive);
    }

    [Theory]
    [InlineData(QueueOverflowPolicy.DropOldest, "3,4,5")]
    [InlineData(QueueOverflowPolicy.DropNew, "1,2,3")]
    public async Task Full_offline_queue_applies_the_overflow_policy(QueueOverflowPolicy policy, string expected)
    {
        await using var server = EngineServer.Start(new BrokerOptions { MaxQueuedMessages = 3, QueueOverflowPolicy = policy, SysInterval = 0 });
        void Persistent(MqttConnectPacket c) => c.SessionExpiryInterval = 300;
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", cleanStart: false, configure: Persistent);
        await sub.SendAsync(Subscribe(1, "q", MqttQualityOfServiceLevel.AtLeastOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        await sub.DisposeAsync();
        await Wait.UntilAsync(() => server.Broker.ConnectedClients == 0, TimeSpan.FromSeconds(5), "subscriber gone");
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        for (ushort i = 1; i <= 5; i++)
        {
            await pub.SendAsync(Publish("q", i.ToString(), MqttQualityOfServiceLevel.AtLeastOnce, i));
            await pub.ReceiveAsync<MqttPubAckPacket>();
        }
        Assert.Equal(2, server.Broker.Dropped(DropReason.QueueFull));
        var (sub2, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", cleanStart: false, configure: Persistent);
        var got = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            got.Add((await sub2.ReceiveAsync<MqttPublishPacket>()).Text());
        }
        Assert.Equal(expected, string.Join(",", got));
    }
}
