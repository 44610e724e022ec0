using System.Buffers;
using System.Text;
using Confluent.Kafka;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Kafka;

/// <summary>
/// Durable Kafka mode together with the default store (Fsync; the in-process host tests run with Store:Durability=None):
/// a PUBACK means the record is in Kafka and the change is in the log, so it survives a SIGKILL of the broker process.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class KafkaDurableStoreCrashTests
{
    const int Messages = 5;

    [Fact]
    public async Task Durable_Kafka_with_the_default_Fsync_store_acknowledges_only_what_Kafka_and_the_log_hold_across_kill_9()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("stored");
        string[] settings = [$"Kafka:BootstrapServers={kafka.BootstrapServers}", "Kafka:DefaultTopic=stored", "Kafka:DefaultMode=Durable",
            "Kafka:DurableTimeoutMs=500", "Kafka:LingerMs=0", "Kafka:ShutdownFlushMs=1000"];
        var dataDirectory = Directory.CreateTempSubdirectory("iotrt-kafkastore-").FullName;
        try
        {
            var port = BrokerProcess.FreePort();
            await using (var broker = await BrokerProcess.StartAsync(dataDirectory, port, settings)) // Store:Durability left at its default
            {
                var (subscriber, _) = await ConnectPersistentAsync(port, "stored-subscriber");
                await using (subscriber)
                {
                    await subscriber.SendAsync(new MqttSubscribePacket { PacketIdentifier = 1, TopicFilters = [new MqttTopicFilter { Topic = "stored/#", QualityOfServiceLevel = MqttQualityOfServiceLevel.AtLeastOnce }] });
                    await subscriber.ReceiveAsync<MqttSubAckPacket>(Timeouts.Default);
                    await subscriber.SendAsync(new MqttDisconnectPacket());
                    await subscriber.ExpectClosedAsync(Timeouts.Default);
                }

                using var reader = new ConsumerBuilder<byte[]?, byte[]>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "watermarks" }).Build();
                var (publisher, _) = await RawMqttClient.ConnectAsync(port, "stored-publisher");
                await using (publisher)
                {
                    for (ushort i = 0; i < Messages; i++)
                    {
                        await publisher.SendAsync(Publish($"stored/{i}", $"s{i}", (ushort)(i + 1), retain: true));
                        var ack = await publisher.ReceiveAsync<MqttPubAckPacket>(Timeouts.Default);
                        Assert.Equal(MqttPubAckReasonCode.Success, ack.ReasonCode);
                        // asked of Kafka right after the PUBACK, never waited for: the record must already be there
                        Assert.Equal(i + 1, reader.QueryWatermarkOffsets(new TopicPartition("stored", 0), Timeouts.Default).High.Value);
                    }

                    kafka.SetBrokersDown();
                    await publisher.SendAsync(Publish("stored/down", "refused", 10, retain: true));
                    var refused = await publisher.ReceiveAsync<MqttPubAckPacket>(Timeouts.Default);
                    // 0x89 (server busy) is no PUBACK reason code in MQTT 5: a durable timeout is 0x80 unspecified error
                    Assert.Equal(MqttPubAckReasonCode.UnspecifiedError, refused.ReasonCode);
                    kafka.SetBrokersUp();
                }
                broker.Kill();
                await broker.WaitForExitAsync(TimeSpan.FromSeconds(10));
            }

            var restartPort = BrokerProcess.FreePort();
            await using var restarted = await BrokerProcess.StartAsync(dataDirectory, restartPort, settings);
            Assert.Contains(restarted.Lines, line => line.Contains("Store log", StringComparison.Ordinal) && line.Contains("replayed", StringComparison.Ordinal));

            // the persistent subscriber's queue: every acknowledged message, never the refused one
            var (again, connAck) = await ConnectPersistentAsync(restartPort, "stored-subscriber");
            await using (again)
            {
                Assert.True(connAck.IsSessionPresent, "the subscriber's session survived the crash");
                await PublishMarkerAsync(again, "stored/marker");
                var queued = await ReceiveUntilAsync(again, "stored/marker");
                Assert.Equal(Enumerable.Range(0, Messages).Select(i => $"stored/{i}"), queued.Distinct().Order());
            }

            // the retained messages: every acknowledged one, never the refused one
            var (checker, _) = await RawMqttClient.ConnectAsync(restartPort, "stored-checker");
            await using (checker)
            {
                await checker.SendAsync(new MqttSubscribePacket { PacketIdentifier = 1, TopicFilters = [new MqttTopicFilter { Topic = "stored/#" }] });
                await PublishMarkerAsync(checker, "stored/marker");
                var retained = await ReceiveUntilAsync(checker, "stored/marker");
                Assert.Equal(Enumerable.Range(0, Messages).Select(i => $"stored/{i}"), retained.Order());
            }
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    static Task<(RawMqttClient Client, MqttConnAckPacket ConnAck)> ConnectPersistentAsync(int port, string clientId) =>
        RawMqttClient.ConnectAsync(port, clientId, cleanStart: false, configure: c => c.SessionExpiryInterval = 3600);

    static MqttPublishPacket Publish(string topic, string payload, ushort id, bool retain = false) => new()
    {
        Topic = topic,
        PayloadSegment = Encoding.UTF8.GetBytes(payload),
        QualityOfServiceLevel = MqttQualityOfServiceLevel.AtLeastOnce,
        PacketIdentifier = id,
        Retain = retain,
    };

    /// <summary>
    /// A marker the client publishes to itself (QoS 0, so Kafka's pace does not matter): read after its CONNECT or
    /// SUBSCRIBE, it is routed after the queued and retained messages those send, so it arrives after them.
    /// </summary>
    static Task PublishMarkerAsync(RawMqttClient client, string topic) =>
        client.SendAsync(new MqttPublishPacket { Topic = topic, PayloadSegment = "marker"u8.ToArray() });

    /// <summary>The topics of the messages received (acknowledging QoS 1) before the one on <paramref name="markerTopic"/>; SUBACK may come before, among or after retained messages.</summary>
    static async Task<List<string>> ReceiveUntilAsync(RawMqttClient client, string markerTopic)
    {
        var topics = new List<string>();
        while (true)
        {
            var packet = await client.ReceiveAsync(Timeouts.Default);
            if (packet is MqttSubAckPacket)
            {
                continue;
            }
            var publish = Assert.IsType<MqttPublishPacket>(packet);
            if (publish.QualityOfServiceLevel == MqttQualityOfServiceLevel.AtLeastOnce)
            {
                await client.SendAsync(new MqttPubAckPacket { PacketIdentifier = publish.PacketIdentifier });
            }
            if (publish.Topic == markerTopic)
            {
                return topics;
            }
            Assert.NotEqual("refused", Encoding.UTF8.GetString(publish.Payload.ToArray()));
            topics.Add(publish.Topic);
        }
    }
}
