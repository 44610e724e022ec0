using System.Text;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Kafka;
using IotRealtime.Hosting.Metrics;

namespace IotRealtime.Bridges.Feed;

/// <summary>
/// The history of the standalone bridges with Kafka history on: the newest messages of the Kafka live feed kept in
/// memory (oldest out first, up to <c>Bridges:History:MaxBytes</c>) in front of <see cref="KafkaHistory"/>. A resume
/// after a <c>k:</c> cursor is answered from memory when memory still holds every record the live feed consumed after
/// that cursor in every partition; otherwise — the cursor is older than memory (evicted, or from before this process
/// started), names a partition memory does not know or an offset the live feed has not reached, or is not a cursor —
/// and for <c>from=earliest</c> and live starts, from Kafka. Positions and guarantees are those of
/// <see cref="KafkaHistory"/> either way, so a client cannot tell which answered, except by speed.
/// Appends (from <see cref="KafkaLiveFeed"/>) and memory reads share the feed hub's lock, so a stream registered before
/// its read misses nothing.
/// </summary>
public sealed class KafkaFrontHistory : IHistorySource, IMetricsSource
{
    readonly KafkaHistory _kafka;
    readonly FeedHub _hub;
    readonly long _maxBytes;
    readonly Queue<FeedMessage> _held = new();
    // per partition: the first offset from which memory holds every record the live feed consumed
    readonly Dictionary<(string Topic, int Partition), long> _heldFrom = [];
    // per partition: the last offset the live feed consumed
    readonly Dictionary<(string Topic, int Partition), long> _consumed = [];
    long _bytes;
    long _memoryReads;
    long _kafkaReads;

    public KafkaFrontHistory(KafkaHistory kafka, FeedHub hub, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(kafka);
        ArgumentNullException.ThrowIfNull(hub);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        _kafka = kafka;
        _hub = hub;
        _maxBytes = maxBytes;
    }

    /// <summary>Reads answered from memory.</summary>
    public long MemoryReads => Interlocked.Read(ref _memoryReads);

    /// <summary>Reads answered by Kafka.</summary>
    public long KafkaReads => Interlocked.Read(ref _kafkaReads);

    /// <summary>The live feed starts consuming at <paramref name="start"/> (the first offset it will read, per partition).</summary>
    internal void Start(IReadOnlyList<KafkaPosition> start)
    {
        lock (_hub.History.Sync)
        {
            foreach (var p in start)
            {
                _heldFrom[(p.Topic, p.Partition)] = p.Offset;
                _consumed[(p.Topic, p.Partition)] = p.Offset - 1;
            }
        }
    }

    /// <summary>The live feed consumed the record at <paramref name="position"/>: keeps <paramref name="message"/> (null: not an MQTT message) and hands it to the streams.</summary>
    internal void Append(KafkaPosition position, FeedMessage? message)
    {
        lock (_hub.History.Sync)
        {
            _consumed[(position.Topic, position.Partition)] = position.Offset;
            if (message is null) return;
            _held.Enqueue(message);
            _bytes += message.Size;
            while (_bytes > _maxBytes && _held.TryDequeue(out var oldest))
            {
                _bytes -= oldest.Size;
                var at = oldest.KafkaPosition!.Value;
                _heldFrom[(at.Topic, at.Partition)] = at.Offset + 1;
            }
            _hub.PublishLocked(message);
        }
    }

    public async ValueTask<HistoryRead> ReadAsync(IReadOnlyList<string> filters, HistoryStart start, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filters);
        if (start.Kind == HistoryStartKind.After && TryParseCursor(start.Position, out var after))
        {
            lock (_hub.History.Sync)
            {
                if (ReadHeldLocked(filters, after) is { } held)
                {
                    Interlocked.Increment(ref _memoryReads);
                    return held;
                }
            }
        }
        Interlocked.Increment(ref _kafkaReads);
        return await _kafka.ReadAsync(filters, start, cancellationToken).ConfigureAwait(false);
    }

    public StreamCursor Follow(HistoryRead read) => _kafka.Follow(read);

    /// <returns>Null when memory does not hold everything after <paramref name="after"/>.</returns>
    HistoryRead? ReadHeldLocked(IReadOnlyList<string> filters, IReadOnlyList<KafkaPosition> after)
    {
        if (_consumed.Count == 0 || after.Count != _consumed.Count) return null;
        var covered = new Dictionary<(string, int), long>(after.Count);
        foreach (var p in after)
        {
            var key = (p.Topic, p.Partition);
            // an offset memory evicted after, or one the live feed has not reached (maybe never issued): Kafka decides
            if (!_heldFrom.TryGetValue(key, out var from) || p.Offset + 1 < from || p.Offset > _consumed[key]) return null;
            covered[key] = p.Offset;
        }
        var cursor = new KafkaCursor(after.Select(p => p with { Offset = p.Offset + 1 }));
        var messages = new List<FeedMessage>();
        foreach (var message in _held)
        {
            var at = message.KafkaPosition!.Value;
            if (at.Offset <= covered[(at.Topic, at.Partition)]) continue;
            cursor.Advance(at);
            if (!MatchesAny(filters, message.Topic)) continue;
            messages.Add(new FeedMessage(KafkaHistory.PositionPrefix + cursor, messages.Count, message.Topic, message.Payload, message.QoS, message.Retain, message.ReceivedAt)
            {
                KafkaPosition = at,
            });
        }
        foreach (var ((topic, partition), offset) in _consumed) cursor.Advance(new KafkaPosition(topic, partition, offset));
        return new HistoryRead(messages, null, -1, KafkaHistory.PositionPrefix + cursor);
    }

    static bool MatchesAny(IReadOnlyList<string> filters, string topic)
    {
        foreach (var filter in filters)
        {
            if (TopicFilter.Matches(filter, topic)) return true;
        }
        return false;
    }

    static bool TryParseCursor(string? position, out IReadOnlyList<KafkaPosition> positions)
    {
        positions = [];
        if (!KafkaHistory.IsKafkaPosition(position)) return false;
        try
        {
            positions = KafkaPosition.ParseList(position![KafkaHistory.PositionPrefix.Length..]);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    public void WriteMetrics(StringBuilder w)
    {
        ArgumentNullException.ThrowIfNull(w);
        PrometheusText.Header(w, "iotrealtime_bridges_history_reads_total", "counter", "Resume reads of the Kafka history mode, by what answered them.");
        PrometheusText.Sample(w, "iotrealtime_bridges_history_reads_total", "source", "memory", MemoryReads);
        PrometheusText.Sample(w, "iotrealtime_bridges_history_reads_total", "source", "kafka", KafkaReads);
    }
}
