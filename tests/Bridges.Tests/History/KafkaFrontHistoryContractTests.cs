using System.Text;
using System.Threading.Channels;
using Confluent.Kafka;
using IotRealtime.Bridges.Configuration;
using IotRealtime.Bridges.Feed;
using IotRealtime.Broker.Kafka;
using Microsoft.Extensions.Logging.Abstractions;

namespace IotRealtime.Bridges.Tests.History;

/// <summary>
/// <see cref="KafkaFrontHistory"/> (the live feed's newest messages in memory, Kafka behind them) over librdkafka's
/// mock cluster, fed by a real <see cref="KafkaLiveFeed"/>: records are produced as in <see cref="KafkaHistoryContractTests"/>
/// and appended once the live feed handed them to a listener. Memory holds about <c>messagesPerTopic</c> of them, as
/// the partition does, so reads are answered from memory while it reaches the position and from Kafka past it.
/// </summary>
public sealed class KafkaFrontHistoryContractTests : HistorySourceContract
{
    protected override async Task<IHistoryHarness> CreateAsync(int messagesPerTopic)
    {
        var kafka = KafkaMockCluster.Start();
        try
        {
            kafka.CreateTopic(KafkaHistoryContractTests.Topic);
            var (producer, padding) = KafkaHistoryContractTests.Producer(kafka, messagesPerTopic);
            var replayer = new KafkaReplayer(kafka.BootstrapServers) { RequestTimeout = Timeouts.Default };
            var kafkaHistory = new KafkaHistory(replayer, [KafkaHistoryContractTests.Topic]);
            var hub = new FeedHub(new MemoryHistory(new HistoryOptions()));
            // a message of the contract ("a/1", one-character payload) counts 1 + 2 * 3 + 200 bytes
            var front = new KafkaFrontHistory(kafkaHistory, hub, messagesPerTopic * 207L + 100);
            var live = new KafkaLiveFeed(replayer, kafkaHistory, front, NullLogger<KafkaLiveFeed>.Instance);
            var listener = new Listener();
            hub.Subscribe(listener, ["#"]);
            await live.StartAsync(CancellationToken.None);
            return new Harness(kafka, producer, padding, front, live, listener);
        }
        catch
        {
            await kafka.DisposeAsync();
            throw;
        }
    }

    sealed class Listener : FeedListener
    {
        public Channel<FeedMessage> Messages { get; } = Channel.CreateUnbounded<FeedMessage>();

        public override void Offer(FeedMessage message) => Messages.Writer.TryWrite(message);
    }

    sealed class Harness(KafkaMockCluster kafka, IProducer<byte[]?, byte[]> producer, byte[] padding, KafkaFrontHistory front, KafkaLiveFeed live, Listener listener)
        : IHistoryHarness
    {
        public IHistorySource Source => front;

        public async Task<FeedMessage> AppendMessageAsync(string topic, string payload)
        {
            var delivered = await KafkaHistoryContractTests.ProduceAsync(producer, topic, payload, padding);
            // the live feed's message for it, once memory holds it: its id is the feed's cursor just after it
            var message = await listener.Messages.Reader.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
            Assert.Equal(payload, Encoding.UTF8.GetString(message.Payload.Span));
            Assert.Equal(new KafkaPosition(KafkaHistoryContractTests.Topic, 0, delivered.Offset.Value), message.KafkaPosition);
            return message;
        }

        public async ValueTask DisposeAsync()
        {
            await live.DisposeAsync();
            producer.Dispose();
            await kafka.DisposeAsync();
        }
    }
}
