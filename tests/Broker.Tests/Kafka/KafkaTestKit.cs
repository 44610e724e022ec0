using System.Text;
using Confluent.Kafka;
using IotRealtime.Broker.Kafka;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Kafka;

/// <summary>Brokers that forward to a mock Kafka cluster, publishing, and reading Kafka topics back with a plain consumer.</summary>
internal static class KafkaTestKit
{
    public static Task<TestBroker> StartBrokerAsync(KafkaMockCluster kafka, Dictionary<string, string?> settings)
    {
        settings["Kafka:BootstrapServers"] = kafka.BootstrapServers;
        settings.TryAdd("Kafka:LingerMs", "0");
        // Shutdown must not wait for records a test left undeliverable on purpose.
        settings.TryAdd("Kafka:ShutdownFlushMs", "2000");
        return TestBroker.StartAsync(settings);
    }

    public static KafkaForwarder Forwarder(TestBroker broker) => broker.Host.Services.GetRequiredService<KafkaForwarder>();

    public static Task<MqttClientPublishResult> PublishAsync(MqttTestClient client, string topic, string payload,
        MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce, Action<MqttApplicationMessageBuilder>? configure = null)
    {
        var builder = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(qos);
        configure?.Invoke(builder);
        using var timeout = new CancellationTokenSource(Timeouts.Default);
        return client.Client.PublishAsync(builder.Build(), timeout.Token);
    }

    /// <summary>Reads partition 0 of <paramref name="topic"/> from the beginning until <paramref name="count"/> records arrived.</summary>
    public static Task<List<ConsumeResult<byte[]?, byte[]>>> ConsumeAsync(KafkaMockCluster kafka, string topic, int count) => Task.Run(() =>
    {
        using var consumer = CreateConsumer(kafka);
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var records = new List<ConsumeResult<byte[]?, byte[]>>();
        var deadline = DateTime.UtcNow + Timeouts.Default;
        while (records.Count < count)
        {
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"Timed out waiting for {count} records on Kafka topic {topic}; got {records.Count}.");
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false, Message: not null } record) records.Add(record);
        }
        consumer.Close();
        return records;
    });

    /// <summary>Every record in partitions 0..<paramref name="partitions"/>-1 of <paramref name="topic"/>, up to the high watermarks read now.</summary>
    public static Task<List<ConsumeResult<byte[]?, byte[]>>> ConsumeAllAsync(KafkaMockCluster kafka, string topic, int partitions) => Task.Run(() =>
    {
        using var consumer = CreateConsumer(kafka);
        var ends = new Dictionary<int, long>();
        for (var p = 0; p < partitions; p++)
        {
            var high = consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), Timeouts.Default).High.Value;
            if (high > 0) ends[p] = high;
        }
        consumer.Assign(ends.Keys.Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var records = new List<ConsumeResult<byte[]?, byte[]>>();
        var deadline = DateTime.UtcNow + Timeouts.Default;
        while (ends.Count > 0)
        {
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"Timed out reading Kafka topic {topic}; got {records.Count} records.");
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is not { IsPartitionEOF: false, Message: not null } record) continue;
            records.Add(record);
            if (ends.TryGetValue(record.Partition.Value, out var end) && record.Offset.Value + 1 >= end) ends.Remove(record.Partition.Value);
        }
        consumer.Close();
        return records;
    });

    static IConsumer<byte[]?, byte[]> CreateConsumer(KafkaMockCluster kafka) => new ConsumerBuilder<byte[]?, byte[]>(new ConsumerConfig
    {
        BootstrapServers = kafka.BootstrapServers,
        GroupId = "test-" + Guid.NewGuid().ToString("N"),
        EnableAutoCommit = false,
    }).Build();

    public static string? Header(ConsumeResult<byte[]?, byte[]> record, string name) =>
        record.Message.Headers.TryGetLastBytes(name, out var value) ? Encoding.UTF8.GetString(value) : null;
}
