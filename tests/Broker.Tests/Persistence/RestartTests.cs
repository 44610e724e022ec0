using System.Buffers;
using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Persistence;

/// <summary>Sessions, in-flight state, wills and deadlines survive a graceful restart of the engine on its store.</summary>
public sealed class RestartTests : IDisposable
{
    readonly string _directory = Directory.CreateTempSubdirectory("iotrt-restart-").FullName;

    EngineServer Start() => EngineServer.Start(store: EmbeddedBrokerStore.Open(
        new StoreOptions { Directory = _directory, Durability = DurabilityPolicy.Fsync }, NullLoggerFactory.Instance));

    static void Persistent(MqttConnectPacket c) => c.SessionExpiryInterval = 3600;

    static MqttPublishPacket Publish(string topic, string payload, MqttQualityOfServiceLevel qos, ushort id) => new()
    {
        Topic = topic,
        PayloadSegment = Encoding.UTF8.GetBytes(payload),
        QualityOfServiceLevel = qos,
        PacketIdentifier = id,
    };

    static string Text(MqttPublishPacket p) => Encoding.UTF8.GetString(p.Payload.ToArray());

    [Fact]
    public async Task Subscriptions_queued_and_inflight_messages_and_inbound_qos2_ids_survive_a_restart()
    {
        ushort unackedId;
        await using (var server = Start())
        {
            var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", cleanStart: false, configure: Persistent);
            await sub.SendAsync(new MqttSubscribePacket { PacketIdentifier = 1, SubscriptionIdentifier = 9, TopicFilters = [new MqttTopicFilter { Topic = "r/#", QualityOfServiceLevel = MqttQualityOfServiceLevel.ExactlyOnce }] });
            await sub.ReceiveAsync<MqttSubAckPacket>();

            var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", cleanStart: false, configure: Persistent);
            await pub.SendAsync(Publish("r/1", "in flight", MqttQualityOfServiceLevel.AtLeastOnce, 1));
            await pub.ReceiveAsync<MqttPubAckPacket>();
            var first = await sub.ReceiveAsync<MqttPublishPacket>();
            unackedId = first.PacketIdentifier; // received, never acknowledged
            await sub.DisposeAsync();
            await Wait.UntilAsync(() => server.Broker.ConnectedClients == 1, TimeSpan.FromSeconds(5), "the subscriber to drop");

            await pub.SendAsync(Publish("r/2", "queued 1", MqttQualityOfServiceLevel.ExactlyOnce, 2));
            await pub.ReceiveAsync<MqttPubRecPacket>(); // inbound QoS 2 id 2 now awaits PUBREL
            await pub.SendAsync(Publish("r/3", "queued 2", MqttQualityOfServiceLevel.AtLeastOnce, 3));
            await pub.ReceiveAsync<MqttPubAckPacket>();
        }

        await using (var server = Start())
        {
            var (pub, pubAck) = await RawMqttClient.ConnectAsync(server.Port, "pub", cleanStart: false, configure: Persistent);
            Assert.True(pubAck.IsSessionPresent);
            // the resent QoS 2 publish is recognised after the restart: acknowledged, not routed again
            await pub.SendAsync(Publish("r/2", "queued 1", MqttQualityOfServiceLevel.ExactlyOnce, 2));
            await pub.ReceiveAsync<MqttPubRecPacket>();
            await pub.SendAsync(new MqttPubRelPacket { PacketIdentifier = 2 });
            Assert.Equal(MqttPubCompReasonCode.Success, (await pub.ReceiveAsync<MqttPubCompPacket>()).ReasonCode);

            var (sub, subAck) = await RawMqttClient.ConnectAsync(server.Port, "sub", cleanStart: false, configure: Persistent);
            Assert.True(subAck.IsSessionPresent);
            var again = await sub.ReceiveAsync<MqttPublishPacket>();
            Assert.Equal(("in flight", true, unackedId), (Text(again), again.Dup, again.PacketIdentifier));
            await sub.SendAsync(new MqttPubAckPacket { PacketIdentifier = again.PacketIdentifier });
            var queued1 = await sub.ReceiveAsync<MqttPublishPacket>();
            Assert.Equal(("queued 1", MqttQualityOfServiceLevel.ExactlyOnce), (Text(queued1), queued1.QualityOfServiceLevel));
            Assert.Equal([9u], queued1.SubscriptionIdentifiers);
            await sub.SendAsync(new MqttPubRecPacket { PacketIdentifier = queued1.PacketIdentifier });
            // the PUBREL and the next queued message may come in either order
            var seen = new List<string>();
            while (seen.Count < 2)
            {
                switch (await sub.ReceiveAsync())
                {
                    case MqttPubRelPacket rel:
                        Assert.Equal(queued1.PacketIdentifier, rel.PacketIdentifier);
                        await sub.SendAsync(new MqttPubCompPacket { PacketIdentifier = rel.PacketIdentifier });
                        seen.Add("PUBREL");
                        break;
                    case MqttPublishPacket next:
                        seen.Add(Text(next));
                        await sub.SendAsync(new MqttPubAckPacket { PacketIdentifier = next.PacketIdentifier });
                        break;
                    case var other:
                        Assert.Fail($"unexpected {other}");
                        break;
                }
            }
            Assert.Equal(["PUBREL", "queued 2"], seen.Order());
            await sub.ExpectNothingAsync(TimeSpan.FromMilliseconds(300));

            // the subscription itself came back too: a new publish reaches it
            await pub.SendAsync(Publish("r/4", "live", MqttQualityOfServiceLevel.AtMostOnce, 0));
            Assert.Equal("live", Text(await sub.ReceiveAsync<MqttPublishPacket>()));
        }
    }

    [Fact]
    public async Task Delayed_will_pending_at_shutdown_is_published_after_the_restart()
    {
        await using (var server = Start())
        {
            var (dying, _) = await RawMqttClient.ConnectAsync(server.Port, "dying", cleanStart: false, configure: c =>
            {
                c.SessionExpiryInterval = 3600;
                c.WillFlag = true;
                c.WillTopic = "wills/dying";
                c.WillMessage = Encoding.UTF8.GetBytes("gone");
                c.WillDelayInterval = 2;
            });
            await dying.DisposeAsync(); // abnormal: the will waits for its delay
            await Wait.UntilAsync(() => server.Broker.ConnectedClients == 0, TimeSpan.FromSeconds(5), "the client to drop");
        }

        await using (var server = Start())
        {
            var (watcher, _) = await RawMqttClient.ConnectAsync(server.Port, "watcher");
            await watcher.SendAsync(new MqttSubscribePacket { PacketIdentifier = 1, TopicFilters = [new MqttTopicFilter { Topic = "wills/#" }] });
            await watcher.ReceiveAsync<MqttSubAckPacket>();
            var will = await watcher.ReceiveAsync<MqttPublishPacket>(TimeSpan.FromSeconds(10));
            Assert.Equal(("wills/dying", "gone"), (will.Topic, Text(will)));
        }
    }

    [Fact]
    public async Task Session_expiry_keeps_running_across_a_restart()
    {
        await using (var server = Start())
        {
            var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "brief", cleanStart: false, configure: c => c.SessionExpiryInterval = 1);
            await client.SendAsync(new MqttSubscribePacket { PacketIdentifier = 1, TopicFilters = [new MqttTopicFilter { Topic = "x" }] });
            await client.ReceiveAsync<MqttSubAckPacket>();
            await client.SendAsync(new MqttDisconnectPacket());
            await Wait.UntilAsync(() => server.Broker.ConnectedClients == 0, TimeSpan.FromSeconds(5), "the client to leave");
        }
        await using (var server = Start())
        {
            Assert.Equal(1, server.Broker.SessionCount);
            await Wait.UntilAsync(() => server.Broker.SessionCount == 0, TimeSpan.FromSeconds(10), "the session to expire after the restart");
        }
        await using (var server = Start())
        {
            Assert.Equal(0, server.Broker.SessionCount); // its end was recorded: it does not come back
            var (_, ack) = await RawMqttClient.ConnectAsync(server.Port, "brief", cleanStart: false, configure: c => c.SessionExpiryInterval = 1);
            Assert.False(ack.IsSessionPresent);
        }
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
