using System.Runtime.CompilerServices;
using Confluent.Kafka;
using IotRealtime.Broker.Engine.Routing;

namespace IotRealtime.Broker.Kafka;

/// <summary>
/// One open replay: its resolved <see cref="Start"/> and <see cref="End"/> per partition and the records between
/// them. Read once, from one reader at a time; dispose to close the consumer.
/// </summary>
public sealed class KafkaReplay : IAsyncDisposable
{
    readonly IConsumer<byte[]?, byte[]> _consumer;
    readonly ReplayRequest _request;
    readonly TimeSpan _timeout;
    int _disposed;

    KafkaReplay(IConsumer<byte[]?, byte[]> consumer, ReplayRequest request, TimeSpan timeout, IReadOnlyList<KafkaPosition> start, IReadOnlyList<KafkaPosition> end)
    {
        _consumer = consumer;
        _request = request;
        _timeout = timeout;
        Start = start;
        End = end;
    }

    /// <summary>Per partition, the offset of the first record this replay may return.</summary>
    public IReadOnlyList<KafkaPosition> Start { get; }

    /// <summary>Per partition, the high watermark when the replay opened: records at or past it are not returned.</summary>
    public IReadOnlyList<KafkaPosition> End { get; }

    internal static KafkaReplay Open(KafkaReplayer replayer, ReplayRequest request, CancellationToken cancellationToken)
    {
        if (request.MqttFilter is { } filter && !TopicValidation.IsValidTopicFilter(filter))
        {
            throw new ArgumentException($"'{filter}' is not a valid MQTT topic filter.", nameof(request));
        }
        if (request.Limit is < 0) throw new ArgumentException($"Limit must not be negative (got {request.Limit}).", nameof(request));
        var topics = request.Topics.Count > 0 ? request.Topics : request.From.Positions.Select(p => p.Topic).Distinct().ToList();
        if (topics.Count == 0) throw new ArgumentException("Name a Kafka topic to replay.", nameof(request));

        var consumer = replayer.CreateConsumer();
        try
        {
            var partitions = Partitions(consumer, topics, replayer.RequestTimeout);
            var start = new List<KafkaPosition>();
            var end = new List<KafkaPosition>();
            foreach (var tp in partitions)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var marks = consumer.QueryWatermarkOffsets(tp, replayer.RequestTimeout);
                var first = StartOffset(consumer, tp, marks.Low.Value, marks.High.Value, request.From, replayer.RequestTimeout, cancellationToken);
                start.Add(new KafkaPosition(tp.Topic, tp.Partition.Value, first));
                end.Add(new KafkaPosition(tp.Topic, tp.Partition.Value, marks.High.Value));
            }
            consumer.Assign(start.Zip(end).Where(p => p.First.Offset < p.Second.Offset)
                .Select(p => new TopicPartitionOffset(p.First.Topic, p.First.Partition, p.First.Offset)));
            return new KafkaReplay(consumer, request, replayer.RequestTimeout, start, end);
        }
        catch
        {
            consumer.Dispose();
            throw;
        }
    }

    static List<TopicPartition> Partitions(IConsumer<byte[]?, byte[]> consumer, IReadOnlyList<string> topics, TimeSpan timeout)
    {
        using var admin = new DependentAdminClientBuilder(consumer.Handle).Build();
        var partitions = new List<TopicPartition>();
        foreach (var topic in topics)
        {
            var metadata = admin.GetMetadata(topic, timeout).Topics.SingleOrDefault(t => t.Topic == topic);
            if (metadata is null || metadata.Error.Code == ErrorCode.UnknownTopicOrPart || metadata.Partitions.Count == 0)
            {
                throw new ArgumentException($"Kafka topic '{topic}' does not exist.");
            }
            if (metadata.Error.IsError) throw new KafkaException(metadata.Error);
            partitions.AddRange(metadata.Partitions.OrderBy(p => p.PartitionId).Select(p => new TopicPartition(topic, p.PartitionId)));
        }
        return partitions;
    }

    static long StartOffset(IConsumer<byte[]?, byte[]> consumer, TopicPartition tp, long low, long high, ReplayFrom from, TimeSpan timeout, CancellationToken ct)
    {
        long requested;
        switch (from.Kind)
        {
            case ReplayFromKind.Earliest:
                return low;
            case ReplayFromKind.Time:
                return OffsetForTime(consumer, tp, low, high, from.Time, timeout, ct);
            case ReplayFromKind.Offset:
                requested = from.Offset;
                break;
            default:
                var listed = from.Positions.Where(p => p.Topic == tp.Topic && p.Partition == tp.Partition.Value).Select(p => (long?)p.Offset).FirstOrDefault();
                if (listed is null) return low;
                requested = from.Kind == ReplayFromKind.After ? listed.Value + 1 : Math.Max(0, listed.Value);
                break;
        }
        if (requested < low) throw new KafkaHistoryGapException(new KafkaPosition(tp.Topic, tp.Partition.Value, requested), low);
        return Math.Min(requested, high);
    }

    /// <summary>
    /// The first offset whose record is stamped at or after <paramref name="time"/>. Kafka's own index answers first; an
    /// answer that does not hold up (librdkafka's mock cluster answers End for every time) is replaced by a binary
    /// search over record timestamps, which assumes they grow with the offset, as the forwarder's receive times do.
    /// </summary>
    static long OffsetForTime(IConsumer<byte[]?, byte[]> consumer, TopicPartition tp, long low, long high, DateTimeOffset time, TimeSpan timeout, CancellationToken ct)
    {
        if (low >= high) return high;
        var target = time.ToUnixTimeMilliseconds();
        long? answer = null;
        try
        {
            var result = consumer.OffsetsForTimes([new TopicPartitionTimestamp(tp, new Timestamp(time))], timeout).Single();
            answer = result.Offset.Value < 0 ? high : Math.Clamp(result.Offset.Value, low, high);
        }
        catch (KafkaException)
        {
            // Some servers do not support ListOffsets by time; the search below still answers.
        }
        if (answer is { } offset && Holds(offset)) return offset;

        var (lo, hi) = (low, high);
        while (lo < hi)
        {
            ct.ThrowIfCancellationRequested();
            var mid = lo + ((hi - lo) / 2);
            var (at, stamp) = Probe(consumer, tp, mid, high, timeout);
            if (at >= high || stamp >= target) hi = mid;
            else lo = at + 1;
        }
        consumer.Unassign();
        return lo;

        // The answer is right when the record before it is older than the time and the record at it is not.
        bool Holds(long offset)
        {
            if (offset > low && Probe(consumer, tp, offset - 1, high, timeout).Stamp >= target) return false;
            var ok = offset >= high || Probe(consumer, tp, offset, high, timeout).Stamp >= target;
            consumer.Unassign();
            return ok;
        }
    }

    /// <summary>The offset and timestamp (Unix ms) of the first record at or after <paramref name="offset"/>.</summary>
    static (long Offset, long Stamp) Probe(IConsumer<byte[]?, byte[]> consumer, TopicPartition tp, long offset, long high, TimeSpan timeout)
    {
        consumer.Assign(new TopicPartitionOffset(tp, offset));
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (result is null) continue;
            if (result.IsPartitionEOF) return (high, long.MaxValue);
            if (result.TopicPartition == tp && result.Offset.Value >= offset) return (result.Offset.Value, result.Message.Timestamp.UnixTimestampMs);
        }
        throw new KafkaException(new Error(ErrorCode.Local_TimedOut, $"No record read from {tp.Topic}/{tp.Partition.Value} at offset {offset} within {timeout.TotalSeconds:0.#} s."));
    }

    /// <summary>
    /// The records from <see cref="Start"/> up to <see cref="End"/> (or <see cref="ReplayRequest.To"/>, or
    /// <see cref="ReplayRequest.Limit"/> records), in offset order within each partition.
    /// </summary>
    /// <exception cref="KafkaException">No record arrived within the request timeout although some were due (Kafka down).</exception>
    public async IAsyncEnumerable<KafkaRecord> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var remaining = new Dictionary<TopicPartition, long>();
        foreach (var (first, end) in Start.Zip(End))
        {
            if (first.Offset < end.Offset) remaining[first.TopicPartition] = end.Offset;
        }
        var to = _request.To?.ToUnixTimeMilliseconds();
        var filter = _request.MqttFilter;
        long returned = 0;
        var lastProgress = DateTime.UtcNow;
        while (remaining.Count > 0 && (_request.Limit is not { } limit || returned < limit))
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Records already fetched come without a thread hop; only an empty queue waits on the thread pool.
            var result = _consumer.Consume(TimeSpan.Zero)
                ?? await Task.Run(() => _consumer.Consume(TimeSpan.FromMilliseconds(100)), cancellationToken).ConfigureAwait(false);
            if (result is null || result.IsPartitionEOF || result.Message is null)
            {
                if (DateTime.UtcNow - lastProgress > _timeout)
                {
                    throw new KafkaException(new Error(ErrorCode.Local_TimedOut,
                        $"Kafka delivered nothing for {_timeout.TotalSeconds:0.#} s; still due: {string.Join(", ", remaining.Select(r => $"{r.Key.Topic}/{r.Key.Partition.Value} up to {r.Value}"))}."));
                }
                continue;
            }
            lastProgress = DateTime.UtcNow;
            var tp = result.TopicPartition;
            if (!remaining.TryGetValue(tp, out var endOffset)) continue;
            var offset = result.Offset.Value;
            if (offset >= endOffset)
            {
                Finish(tp);
                continue;
            }
            if (offset + 1 >= endOffset) Finish(tp);
            if (to is { } last && result.Message.Timestamp.UnixTimestampMs > last)
            {
                Finish(tp);
                continue;
            }
            var record = KafkaRecordFormat.Decode(result);
            if (filter is not null && (record.Topic is null || !TopicFilter.Matches(filter, record.Topic))) continue;
            returned++;
            yield return record;
        }

        void Finish(TopicPartition tp)
        {
            if (remaining.Remove(tp)) _consumer.Pause([tp]);
        }
    }

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return ValueTask.CompletedTask;
        // Close and Dispose join librdkafka threads: off the caller's thread.
        return new ValueTask(Task.Run(() =>
        {
            try
            {
                _consumer.Close();
            }
            catch (KafkaException)
            {
                // Nothing was committed; a consumer that cannot say goodbye loses nothing.
            }
            _consumer.Dispose();
        }));
    }
}
