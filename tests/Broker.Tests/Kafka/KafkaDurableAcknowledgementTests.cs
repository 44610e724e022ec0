using System.Buffers;
using System.Text;
using Confluent.Kafka;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Kafka.KafkaTestKit;

namespace IotRealtime.Broker.Tests.Kafka;

/// <summary>
/// What a durable-mode publisher is told, seen on the wire with a raw client: QoS 2's PUBREC waits for Kafka's ack and is
/// an error while Kafka is down (MQTT 5); a 3.1.1 publisher, which cannot be told no, is disconnected without an
/// acknowledgement and its resend after reconnecting reaches Kafka and the subscriber.
/// </summary>
public sealed class KafkaDurableAcknowledgementTests
{
    static Task<TestBroker> StartDurableAsync(KafkaMockCluster kafka, string topic) => StartBrokerAsync(kafka, new()
    {
        ["Kafka:DefaultTopic"] = topic,
        ["Kafka:DefaultMode"] = "Durable",
        ["Kafka:DurableTimeoutMs"] = "500",
    });

    static MqttPublishPacket Publish(string topic, string payload, MqttQualityOfServiceLevel qos, ushort id, bool dup = false) => new()
    {
        Topic = topic,
        PayloadSegment = Encoding.UTF8.GetBytes(payload),
        QualityOfServiceLevel = qos,
        PacketIdentifier = id,
        Dup = dup,
    };

    [Fact]
    public async Task QoS2_PUBREC_in_durable_mode_comes_after_the_Kafka_ack_and_is_0x80_while_Kafka_is_down()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("exactly");
        await using var broker = await StartDurableAsync(kafka, "exactly");
        await using var subscriber = await MqttTestClient.ConnectAsync(broker, clientId: "exactly-sub");
        await subscriber.SubscribeAsync("q2/#", MqttQualityOfServiceLevel.ExactlyOnce);
        using var reader = new ConsumerBuilder<byte[]?, byte[]>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "watermarks" }).Build();
        var partition = new TopicPartition("exactly", 0);
        var (publisher, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, "exactly-pub");
        await using var _ = publisher;

        await publisher.SendAsync(Publish("q2/one", "one", MqttQualityOfServiceLevel.ExactlyOnce, 1));
        var rec = await publisher.ReceiveAsync<MqttPubRecPacket>(Timeouts.Default);
        Assert.Equal(MqttPubRecReasonCode.Success, rec.ReasonCode);
        // asked of Kafka right after the PUBREC, never waited for: the record must already be there
        Assert.Equal(1, reader.QueryWatermarkOffsets(partition, Timeouts.Default).High.Value);
        await publisher.SendAsync(new MqttPubRelPacket { PacketIdentifier = 1 });
        Assert.Equal(1, (await publisher.ReceiveAsync<MqttPubCompPacket>(Timeouts.Default)).PacketIdentifier);

        kafka.SetBrokersDown();
        await publisher.SendAsync(Publish("q2/two", "two", MqttQualityOfServiceLevel.ExactlyOnce, 2));
        var refused = await publisher.ReceiveAsync<MqttPubRecPacket>(Timeouts.Default);
        Assert.Equal(2, refused.PacketIdentifier);
        // 0x89 (server busy) is no PUBREC reason code in MQTT 5: a durable timeout is 0x80 unspecified error
        Assert.Equal(MqttPubRecReasonCode.UnspecifiedError, refused.ReasonCode);
        kafka.SetBrokersUp();
        // librdkafka keeps the refused record and delivers it once it has reconnected: then Kafka takes the retry in time
        await Wait.UntilAsync(() => Forwarder(broker).Forwarded == 2, Timeouts.Default, "the forwarder to reach Kafka again");

        // an error PUBREC ends the flow (MQTT-4.3.3): the id is free, and the publisher's retry is a new message
        await publisher.SendAsync(Publish("q2/two", "two", MqttQualityOfServiceLevel.ExactlyOnce, 2));
        Assert.Equal(MqttPubRecReasonCode.Success, (await publisher.ReceiveAsync<MqttPubRecPacket>(Timeouts.Default)).ReasonCode);
        await publisher.SendAsync(new MqttPubRelPacket { PacketIdentifier = 2 });
        Assert.Equal(2, (await publisher.ReceiveAsync<MqttPubCompPacket>(Timeouts.Default)).PacketIdentifier);

        await publisher.SendAsync(Publish("q2/marker", "marker", MqttQualityOfServiceLevel.ExactlyOnce, 3));
        Assert.Equal(MqttPubRecReasonCode.Success, (await publisher.ReceiveAsync<MqttPubRecPacket>(Timeouts.Default)).ReasonCode);
        await publisher.SendAsync(new MqttPubRelPacket { PacketIdentifier = 3 });
        await publisher.ReceiveAsync<MqttPubCompPacket>(Timeouts.Default);
        await subscriber.WaitForMessageAsync("q2/marker", Timeouts.Default);
        // the refused attempt was never routed: "two" reached the subscriber once, from the accepted retry
        Assert.Equal(["one", "two", "marker"], subscriber.Received.Select(m => m.Payload));
        var inKafka = (await ConsumeAllAsync(kafka, "exactly", 1)).Select(r => Encoding.UTF8.GetString(r.Message.Value)).ToList();
        Assert.Contains("two", inKafka);
    }

    [Theory]
    [InlineData(MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttQualityOfServiceLevel.ExactlyOnce)]
    public async Task Mqtt311_publish_refused_by_a_durable_timeout_closes_without_ack_and_the_resend_reaches_Kafka_and_the_subscriber(MqttQualityOfServiceLevel qos)
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("closing");
        await using var broker = await StartDurableAsync(kafka, "closing");
        await using var subscriber = await MqttTestClient.ConnectAsync(broker, MqttProtocolVersion.V311, clientId: "closing-sub");
        await subscriber.SubscribeAsync("closed/#", MqttQualityOfServiceLevel.ExactlyOnce);

        kafka.SetBrokersDown();
        var (publisher, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, "closing-pub", MqttProtocolVersion.V311, cleanStart: false);
        await using (publisher)
        {
            await publisher.SendAsync(Publish("closed/x", "resent", qos, 7));
            // 3.1.1 has no error acknowledgement: the broker closes the connection and sends none
            while (await publisher.ReceiveAsync(Timeouts.Default) is { } packet)
            {
                Assert.Fail($"the refused 3.1.1 publish got {packet} before the connection closed");
            }
        }
        kafka.SetBrokersUp();
        // librdkafka keeps the refused record and delivers it once it has reconnected: then Kafka takes the resend in time
        await Wait.UntilAsync(() => Forwarder(broker).Forwarded == 1, Timeouts.Default, "the forwarder to reach Kafka again");

        // MQTT-4.4.0-1: on reconnecting to its session the client resends the unacknowledged PUBLISH, with DUP
        var (again, connAck) = await RawMqttClient.ConnectAsync(broker.MqttPort, "closing-pub", MqttProtocolVersion.V311, cleanStart: false);
        await using (again)
        {
            Assert.True(connAck.IsSessionPresent);
            await again.SendAsync(Publish("closed/x", "resent", qos, 7, dup: true));
            if (qos == MqttQualityOfServiceLevel.AtLeastOnce)
            {
                Assert.Equal(7, (await again.ReceiveAsync<MqttPubAckPacket>(Timeouts.Default)).PacketIdentifier);
            }
            else
            {
                Assert.Equal(7, (await again.ReceiveAsync<MqttPubRecPacket>(Timeouts.Default)).PacketIdentifier);
                await again.SendAsync(new MqttPubRelPacket { PacketIdentifier = 7 });
                Assert.Equal(7, (await again.ReceiveAsync<MqttPubCompPacket>(Timeouts.Default)).PacketIdentifier);
            }
            await again.SendAsync(Publish("closed/marker", "marker", MqttQualityOfServiceLevel.AtLeastOnce, 8));
            await again.ReceiveAsync<MqttPubAckPacket>(Timeouts.Default);
        }

        await subscriber.WaitForMessageAsync("closed/marker", Timeouts.Default);
        // QoS 2: the id recorded for de-duplication when the refused PUBLISH arrived must be gone with the refusal, or
        // the resend is taken for a duplicate, acknowledged, and never routed
        Assert.Equal(["resent", "marker"], subscriber.Received.Select(m => m.Payload));
        var inKafka = (await ConsumeAllAsync(kafka, "closing", 1)).Select(r => Encoding.UTF8.GetString(r.Message.Value)).ToList();
        Assert.Contains("resent", inKafka);
        Assert.Contains("marker", inKafka);
    }
}
