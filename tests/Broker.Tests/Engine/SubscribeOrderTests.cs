using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Engine.Packets;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>
/// Ordering across connections: once a client's SUBSCRIBE has reached the broker, a PUBLISH that reaches it later from
/// another client is delivered to the new subscription (Eclipse Paho's test_subscribe_options relies on it).
/// </summary>
public sealed class SubscribeOrderTests
{
    const int Rounds = 400;

    [Theory]
    [InlineData(MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttQualityOfServiceLevel.AtLeastOnce)]
    public async Task Publish_sent_after_another_clients_subscribe_reaches_it_every_time(MqttQualityOfServiceLevel qos)
    {
        await using var broker = await TestBroker.StartAsync();
        var (subscriber, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, "order-sub");
        var (publisher, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, "order-pub");
        await using var _s = subscriber;
        await using var _p = publisher;
        var missed = new List<int>();
        ushort publishId = 0;
        for (var round = 0; round < Rounds; round++)
        {
            var topic = $"order/{round}";
            var subscribeId = (ushort)(round % 60000 + 1);
            // the SUBSCRIBE is in the broker's socket before the PUBLISH is written: no waiting for SUBACK in between
            await subscriber.SendAsync(Subscribe(subscribeId, topic, qos));
            await publisher.SendAsync(Publish(topic, "first", qos, qos == 0 ? (ushort)0 : ++publishId));
            if (qos > 0)
            {
                await publisher.ReceiveAsync<MqttPubAckPacket>();
            }
            var seenFirst = false;
            // the SUBACK first (a publish may come before it), then a marker after the message on the same publisher:
            // the subscription is surely in effect for the marker, which arrives after "first" or "first" was never routed
            var subAcked = false;
            while (!subAcked)
            {
                var packet = await NextAsync(subscriber);
                if (packet is MqttSubAckPacket)
                {
                    subAcked = true;
                }
                else
                {
                    seenFirst |= await ReadPublishAsync(subscriber, packet) == "first";
                }
            }
            await publisher.SendAsync(Publish(topic, "marker", qos, qos == 0 ? (ushort)0 : ++publishId));
            if (qos > 0)
            {
                await publisher.ReceiveAsync<MqttPubAckPacket>();
            }
            while (true)
            {
                var text = await ReadPublishAsync(subscriber, await NextAsync(subscriber));
                if (text == "marker")
                {
                    break;
                }
                Assert.Equal("first", text);
                seenFirst = true;
            }
            if (!seenFirst)
            {
                missed.Add(round);
            }
            await subscriber.SendAsync(new MqttUnsubscribePacket { PacketIdentifier = subscribeId, TopicFilters = [topic] });
            await subscriber.ReceiveAsync<MqttUnsubAckPacket>();
        }
        Assert.True(missed.Count == 0, $"{missed.Count} of {Rounds} publishes missed a subscription made before them: rounds {string.Join(", ", missed.Take(20))}");
    }

    static async Task<MqttPacket> NextAsync(RawMqttClient client) =>
        await client.ReceiveAsync(TimeSpan.FromSeconds(10)) ?? throw new Xunit.Sdk.XunitException("The broker closed the subscriber.");

    static async Task<string> ReadPublishAsync(RawMqttClient subscriber, MqttPacket packet)
    {
        var publish = Assert.IsType<MqttPublishPacket>(packet);
        if (publish.QualityOfServiceLevel > 0)
        {
            await subscriber.SendAsync(new MqttPubAckPacket { PacketIdentifier = publish.PacketIdentifier });
        }
        return publish.Text();
    }
}
