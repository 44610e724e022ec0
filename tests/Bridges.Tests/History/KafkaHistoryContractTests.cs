using System.Text;
using Confluent.Kafka;
using IotRealtime.Bridges.Feed;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Kafka;

namespace IotRealtime.Bridges.Tests.History;

/// <summary>
/// <see cref="KafkaHistory"/> over librdkafka's mock cluster, with records in the broker forwarder's format on one
/// single-partition topic (Kafka orders only within a partition). The mock cluster keeps 5 MiB per partition and drops
/// the oldest record batches beyond that; the harness pads each record (a header the history ignores) so that exactly
/// <c>messagesPerTopic</c> of them fit, which is how eviction happens here.
/// </summary>
public sealed class KafkaHistoryContractTests : HistorySourceContract
{
    internal const string Topic = "history";

    /// <summary>What the mock cluster holds per partition before it drops the oldest batch (rdkafka_mock.c: max_size).</summary>
    const int MockPartitionBytes = 5 * 1024 * 1024;

    protected override async Task<IHistoryHarness> CreateAsync(int messagesPerTopic)
    {
        var kafka = KafkaMockCluster.Start();
        try
        {
            kafka.CreateTopic(Topic);
            var (producer, padding) = Producer(kafka, messagesPerTopic);
            var history = new KafkaHistory(new KafkaReplayer(kafka.BootstrapServers) { RequestTimeout = Timeouts.Default }, [Topic]);
            return new Harness(kafka, producer, history, padding);
        }
        catch
        {
            await kafka.DisposeAsync();
            throw;
        }
    }

    /// <summary>Produces the record the broker's forwarder writes for a publish to <paramref name="topic"/>, padded, one batch per record (awaited one at a time).</summary>
    internal static async Task<DeliveryResult<byte[]?, byte[]>> ProduceAsync(IProducer<byte[]?, byte[]> producer, string topic, string payload, byte[] padding)
    {
        var record = KafkaRecordFormat.Encode(new MqttMessage
        {
            Topic = topic,
            Payload = Encoding.UTF8.GetBytes(payload),
            QoS = MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce,
            PublisherClientId = "history-contract",
            ReceivedAt = DateTimeOffset.UtcNow,
        }, KafkaKeySource.ClientId);
        record.Headers.Add("x-padding", padding);
        var delivered = await producer.ProduceAsync(Topic, record).WaitAsync(Timeouts.Default);
        Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
        return delivered;
    }

    /// <summary>A producer to the mock cluster that takes padded records, and the padding with which <paramref name="messagesPerTopic"/> of them fit a partition.</summary>
    internal static (IProducer<byte[]?, byte[]> Producer, byte[] Padding) Producer(KafkaMockCluster kafka, int messagesPerTopic)
    {
        // n + 1 padded records exceed the partition's bytes, n do not
        var padding = (int)(MockPartitionBytes / (messagesPerTopic + 0.5));
        var producer = new ProducerBuilder<byte[]?, byte[]>(new ProducerConfig
        {
            BootstrapServers = kafka.BootstrapServers,
            LingerMs = 0,
            Acks = Acks.All,
            MessageMaxBytes = 2 * MockPartitionBytes,
        }).SetLogHandler((_, _) => { }).Build();
        return (producer, new byte[padding]);
    }

    sealed class Harness(KafkaMockCluster kafka, IProducer<byte[]?, byte[]> producer, KafkaHistory history, byte[] padding) : IHistoryHarness
    {
        public IHistorySource Source => history;

        public async Task<FeedMessage> AppendMessageAsync(string topic, string payload)
        {
            var delivered = await ProduceAsync(producer, topic, payload, padding);
            // the history's message for it (the newest on its topic): its id is its position, and it names its record in
            // Kafka as the live feed's messages do
            var read = await history.ReadAsync([topic], HistoryStart.Earliest);
            var last = read.Messages[^1];
            Assert.Equal(payload, Encoding.UTF8.GetString(last.Payload.Span));
            Assert.Equal(new KafkaPosition(Topic, 0, delivered.Offset.Value), last.KafkaPosition);
            return last;
        }

        public async ValueTask DisposeAsync()
        {
            producer.Dispose();
            await kafka.DisposeAsync();
        }
    }
}
