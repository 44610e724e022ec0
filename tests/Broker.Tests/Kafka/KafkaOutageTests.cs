using System.Collections.Concurrent;
using System.Text;
using Confluent.Kafka;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet;
using static IotRealtime.Broker.Tests.Kafka.KafkaTestKit;

namespace IotRealtime.Broker.Tests.Kafka;

/// <summary>Durable mode under Kafka failures: a success PUBACK always means the record is in Kafka, exactly once.</summary>
public sealed class KafkaOutageTests
{
    [Fact]
    public async Task QoS1_PUBACK_in_durable_mode_arrives_only_after_the_record_is_in_Kafka_and_none_claims_success_while_Kafka_is_down()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("acked");
        await using var broker = await StartBrokerAsync(kafka, new()
        {
            ["Kafka:DefaultTopic"] = "acked",
            ["Kafka:DefaultMode"] = "Durable",
            ["Kafka:DurableTimeoutMs"] = "500",
        });
        await using var device = await MqttTestClient.ConnectAsync(broker, clientId: "acked-dev");
        using var reader = new ConsumerBuilder<byte[]?, byte[]>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "watermarks" }).Build();
        var partition = new TopicPartition("acked", 0);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(device, "a/" + i, "m" + i)).ReasonCode);
            // Asked of Kafka right after the PUBACK, never waited for: the record must already be there.
            Assert.Equal(i + 1, reader.QueryWatermarkOffsets(partition, Timeouts.Default).High.Value);
        }

        kafka.SetBrokersDown();
        var whileDown = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => PublishAsync(device, "a/down", "down" + i)));
        Assert.All(whileDown, r => Assert.True((int)r.ReasonCode >= 0x80, $"expected an error reason code while Kafka is down, got {r.ReasonCode}"));
    }

    [Fact]
    public async Task Every_acknowledged_message_is_in_Kafka_exactly_once_after_all_brokers_were_down_under_load()
    {
        const int Publishers = 4;
        const int PerPublisher = 200;
        await using var kafka = KafkaMockCluster.Start(brokers: 3);
        kafka.CreateTopic("proof", partitions: 3);
        await using var broker = await StartBrokerAsync(kafka, new()
        {
            ["Kafka:DefaultTopic"] = "proof",
            ["Kafka:DefaultMode"] = "Durable",
            ["Kafka:DurableTimeoutMs"] = "1000",
            ["Kafka:ShutdownFlushMs"] = "5000",
        });
        var forwarder = Forwarder(broker);
        var acked = new ConcurrentBag<string>();
        var refused = new ConcurrentBag<string>();

        async Task PublishAllAsync(int publisher)
        {
            await using var client = await MqttTestClient.ConnectAsync(broker, clientId: "proof-" + publisher);
            for (var i = 0; i < PerPublisher; i++)
            {
                var payload = $"{publisher}-{i}";
                var result = await PublishAsync(client, $"proof/{publisher}", payload);
                (result.ReasonCode == MqttClientPublishReasonCode.Success ? acked : refused).Add(payload);
            }
        }

        var load = Task.WhenAll(Enumerable.Range(0, Publishers).Select(p => Task.Run(() => PublishAllAsync(p))));
        await Wait.UntilAsync(() => acked.Count >= 150 || load.IsCompleted, Timeouts.Default, "150 acknowledged publishes before the outage");
        kafka.SetBrokersDown();
        // Down for as long as it takes every publisher to be refused about three times: several seconds at 1 s per refusal.
        await Wait.UntilAsync(() => refused.Count >= 3 * Publishers || load.IsCompleted, Timeouts.Default, "publishes refused during the outage");
        kafka.SetBrokersUp();
        await load.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(Publishers * PerPublisher, acked.Count + refused.Count);
        Assert.True(refused.Count >= 3 * Publishers, $"the outage refused only {refused.Count} publishes");
        Assert.True(acked.Count > 150, $"only {acked.Count} publishes succeeded");
        // Refused records stay queued in the producer and may still arrive: wait for every delivery report.
        await Wait.UntilAsync(() => forwarder.Forwarded + forwarder.Failed == Publishers * PerPublisher, Timeouts.Default, "a delivery report for every record");

        var records = await ConsumeAllAsync(kafka, "proof", 3);
        var inKafka = records.Select(r => Encoding.UTF8.GetString(r.Message.Value)).ToList();
        var duplicates = inKafka.GroupBy(p => p).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(duplicates.Count == 0, "in Kafka more than once: " + string.Join(", ", duplicates.Take(10)));
        var missing = acked.Except(inKafka).ToList();
        Assert.True(missing.Count == 0, $"acknowledged with success but not in Kafka: {string.Join(", ", missing.Take(10))}");
        Assert.Empty(inKafka.Except(acked).Except(refused));
        Assert.Equal(forwarder.Forwarded, records.Count);
        // One publisher's records share a key, so a partition, and keep their publish order across the outage.
        foreach (var group in records.GroupBy(r => Encoding.UTF8.GetString(r.Message.Key!)))
        {
            var sequence = group.OrderBy(r => r.Offset.Value).Select(r => int.Parse(Encoding.UTF8.GetString(r.Message.Value).Split('-')[1])).ToList();
            Assert.Equal(sequence.Order(), sequence);
        }
    }
}
