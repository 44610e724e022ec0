using Confluent.Kafka;
using IotRealtime.Broker.Kafka;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Bridges.Feed;

/// <summary>
/// The live feed of the standalone bridges when Kafka history is configured: one consumer assigned to every partition
/// of <see cref="KafkaHistory.Topics"/> from their high watermarks at start (assign(), no consumer group), whose records
/// go to <see cref="FeedHub.Publish"/> with their <see cref="FeedMessage.KafkaPosition"/>. Streams registered before a
/// <see cref="KafkaHistory.ReadAsync"/> miss nothing after it: a consumer reads only below the high watermark, so every
/// record dispatched before a registration is covered by a later read.
/// </summary>
public sealed class KafkaLiveFeed : IAsyncDisposable
{
    readonly KafkaReplayer _replayer;
    readonly KafkaHistory _history;
    readonly FeedHub _hub;
    readonly ILogger _logger;
    readonly CancellationTokenSource _stop = new();
    Thread? _thread;
    long _seq;
    int _disposed;

    public KafkaLiveFeed(KafkaReplayer replayer, KafkaHistory history, FeedHub hub, ILogger<KafkaLiveFeed> logger)
    {
        _replayer = replayer;
        _history = history;
        _hub = hub;
        _logger = logger;
    }

    /// <summary>Takes the high watermarks (the topics must exist) and starts consuming from them.</summary>
    /// <exception cref="KafkaException">Kafka could not be reached.</exception>
    /// <exception cref="ArgumentException">A topic does not exist.</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<KafkaPosition> end;
        var marks = await _replayer.OpenAsync(new ReplayRequest { Topics = _history.Topics, From = ReplayFrom.Earliest, Limit = 0 }, cancellationToken).ConfigureAwait(false);
        await using (marks.ConfigureAwait(false))
        {
            end = marks.End;
        }
        var consumer = new ConsumerBuilder<byte[]?, byte[]>(new ConsumerConfig
        {
            BootstrapServers = _replayer.BootstrapServers,
            // Confluent.Kafka refuses a consumer without group.id; with assign() it never joins the group or commits.
            GroupId = "iotrealtime-bridges-live",
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
            ClientId = "iotrealtime-bridges-live",
            ReconnectBackoffMaxMs = 1_000,
        }).SetLogHandler((_, _) => { }).SetErrorHandler((_, _) => { }).Build();
        consumer.Assign(end.Select(p => new TopicPartitionOffset(p.Topic, p.Partition, p.Offset)));
        var cursor = new KafkaCursor(end);
        _thread = new Thread(() => Run(consumer, cursor)) { IsBackground = true, Name = "bridges-kafka-feed" };
        _thread.Start();
    }

    void Run(IConsumer<byte[]?, byte[]> consumer, KafkaCursor cursor)
    {
        using (consumer)
        {
            while (!_stop.IsCancellationRequested)
            {
                ConsumeResult<byte[]?, byte[]>? result;
                try
                {
                    result = consumer.Consume(_stop.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                catch (ConsumeException e)
                {
                    BridgesLog.KafkaFeedError(_logger, e.Error.Reason);
                    continue;
                }
                if (result is null || result.IsPartitionEOF) continue;
                var record = KafkaRecordFormat.Decode(result);
                cursor.Advance(record.Position);
                if (record.Topic is not { } topic) continue;
                _hub.Publish(new FeedMessage(KafkaHistory.PositionPrefix + cursor, ++_seq, topic, record.Payload, record.QoS, record.Retain, record.Timestamp)
                {
                    KafkaPosition = record.Position,
                });
            }
            consumer.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_thread is { } thread) await Task.Run(thread.Join).ConfigureAwait(false);
        _stop.Dispose();
    }
}
