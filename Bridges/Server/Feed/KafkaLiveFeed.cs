using Confluent.Kafka;
using IotRealtime.Broker.Kafka;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Bridges.Feed;

/// <summary>
/// The live feed of the standalone bridges when Kafka history is configured: one consumer assigned to every partition
/// of <see cref="KafkaHistory.Topics"/> from their high watermarks at start (assign(), no consumer group), whose records
/// go, with their <see cref="FeedMessage.KafkaPosition"/>, to <see cref="KafkaFrontHistory"/>, which keeps the newest
/// in memory and hands them to the feed hub's streams. Streams registered before a <see cref="KafkaHistory.ReadAsync"/>
/// miss nothing after it: a consumer reads only below the high watermark, so every record dispatched before a
/// registration is covered by a later read (and a memory read is atomic with the dispatch).
/// </summary>
public sealed class KafkaLiveFeed : IAsyncDisposable
{
    readonly KafkaReplayer _replayer;
    readonly KafkaHistory _history;
    readonly KafkaFrontHistory _front;
    readonly ILogger _logger;
    readonly CancellationTokenSource _stop = new();
    Thread? _thread;
    long _seq;
    int _disposed;

    public KafkaLiveFeed(KafkaReplayer replayer, KafkaHistory history, KafkaFrontHistory front, ILogger<KafkaLiveFeed> logger)
    {
        _replayer = replayer;
        _history = history;
        _front = front;
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
        _front.Start(end);
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
                _front.Append(record.Position, record.Topic is not { } topic ? null
                    : new FeedMessage(KafkaHistory.PositionPrefix + cursor, ++_seq, topic, record.Payload, record.QoS, record.Retain, record.Timestamp)
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
