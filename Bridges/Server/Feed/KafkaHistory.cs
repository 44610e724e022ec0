using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Kafka;
using IotRealtime.Hosting.Kafka;

namespace IotRealtime.Bridges.Feed;

/// <summary>
/// History read back from Kafka: the records the broker's Kafka forwarding wrote to <see cref="Topics"/>, as feed
/// messages. Positions are <c>k:&lt;cursor&gt;</c>, where the cursor is a <see cref="KafkaCursor"/> text naming, for
/// every partition of the topics, the last record covered; a message's position is the cursor just after it. Such a
/// position survives restarts of the bridges (it names records in Kafka, not an in-memory instance), so a resume from
/// it delivers every later matching record exactly once while Kafka retains them.
/// <para>
/// Guarantees (the same as <see cref="IHistorySource"/>, per Kafka partition; across partitions Kafka has no global
/// order, so messages come partition after partition in the order Kafka returns them):
/// a read after a position returns every matching record after it and none at or before it; a position older than what
/// Kafka retains gives a gap (history-truncated) and continues from the oldest record each such partition still holds;
/// a position that is not a Kafka cursor gives a gap (unknown-position) and everything held. Stateless: every read
/// opens its own replay (assign(), no consumer group), so reads never disturb each other.
/// </para>
/// </summary>
public sealed class KafkaHistory : IHistorySource
{
    /// <summary>The prefix that marks a position as a Kafka cursor.</summary>
    public const string PositionPrefix = "k:";

    readonly KafkaReplayer _replayer;

    /// <param name="replayer">Reads Kafka (its bootstrap servers and request timeout).</param>
    /// <param name="topics">The Kafka topics the broker forwards the streamed MQTT topics to.</param>
    public KafkaHistory(KafkaReplayer replayer, IReadOnlyList<string> topics)
    {
        ArgumentNullException.ThrowIfNull(replayer);
        ArgumentNullException.ThrowIfNull(topics);
        if (topics.Count == 0) throw new ArgumentException("Name at least one Kafka topic to read history from.", nameof(topics));
        foreach (var topic in topics)
        {
            if (!KafkaTopicName.IsValid(topic)) throw new ArgumentException($"'{topic}' is not a valid Kafka topic name.", nameof(topics));
        }
        _replayer = replayer;
        Topics = topics.Distinct(StringComparer.Ordinal).ToArray();
    }

    public IReadOnlyList<string> Topics { get; }

    /// <summary>Whether <paramref name="position"/> is a Kafka cursor position (<c>k:</c>…), i.e. one this history answers.</summary>
    public static bool IsKafkaPosition(string? position) => position is not null && position.StartsWith(PositionPrefix, StringComparison.Ordinal);

    /// <summary>
    /// Reads the records matching <paramref name="filters"/> from <paramref name="start"/> up to the high watermarks
    /// taken when the read opens. <see cref="HistoryRead.LastPosition"/> is the cursor at those watermarks: resuming
    /// after it misses nothing Kafka received later. <see cref="HistoryRead.LastSeq"/> is not used (-1).
    /// </summary>
    /// <exception cref="Confluent.Kafka.KafkaException">Kafka could not be reached within the replayer's request timeout.</exception>
    /// <exception cref="ArgumentException">A topic does not exist.</exception>
    public async ValueTask<HistoryRead> ReadAsync(IReadOnlyList<string> filters, HistoryStart start, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filters);
        if (start.Kind == HistoryStartKind.Live)
        {
            var marks = await _replayer.OpenAsync(new ReplayRequest { Topics = Topics, From = ReplayFrom.Earliest, Limit = 0 }, cancellationToken).ConfigureAwait(false);
            await using (marks.ConfigureAwait(false))
            {
                return new HistoryRead([], null, -1, PositionPrefix + new KafkaCursor(marks.End));
            }
        }
        if (start.Kind == HistoryStartKind.Earliest) return (await ReadFromAsync(filters, ReplayFrom.Earliest, null, null, cancellationToken).ConfigureAwait(false))!;

        var requested = start.Position;
        if (!TryParseCursor(requested, out var after))
        {
            return await HeldWithGapAsync(filters, GapReason.UnknownPosition, requested, null, null, cancellationToken).ConfigureAwait(false);
        }
        try
        {
            var read = await ReadFromAsync(filters, ReplayFrom.After(after), null, null, cancellationToken, after).ConfigureAwait(false);
            if (read is not null) return read;
            // the cursor is ahead of what Kafka holds (a topic recreated, another cluster): not a position of this history
            return await HeldWithGapAsync(filters, GapReason.UnknownPosition, requested, null, null, cancellationToken).ConfigureAwait(false);
        }
        catch (KafkaHistoryGapException)
        {
            // Some partition no longer reaches the cursor: read everything held and skip, per partition, what the
            // cursor already covered; the truncated partitions continue from their oldest record.
            var skip = after.ToDictionary(p => (p.Topic, p.Partition), p => p.Offset);
            return await HeldWithGapAsync(filters, GapReason.HistoryTruncated, requested, skip, after, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Live messages (from <see cref="KafkaLiveFeed"/>) are deduplicated by offset against a cursor of the stream's own.</summary>
    public StreamCursor Follow(HistoryRead read)
    {
        ArgumentNullException.ThrowIfNull(read);
        if (!TryParseCursor(read.LastPosition, out var covered)) throw new ArgumentException($"'{read.LastPosition}' is not a read of this history.", nameof(read));
        return new KafkaStreamCursor(covered);
    }

    /// <summary>Everything held (less what <paramref name="skip"/> covers), after a gap event.</summary>
    async Task<HistoryRead> HeldWithGapAsync(IReadOnlyList<string> filters, string reason, string? requested, Dictionary<(string, int), long>? skip,
        IReadOnlyList<KafkaPosition>? cursorStart, CancellationToken cancellationToken)
    {
        var read = (await ReadFromAsync(filters, ReplayFrom.Earliest, skip, cursorStart, cancellationToken).ConfigureAwait(false))!;
        return read with { Gap = Gap(reason, requested, read) };
    }

    static HistoryGap Gap(string reason, string? requested, HistoryRead read) => new(reason, requested,
        read.Messages.Count > 0 ? read.Messages[0].Id : null,
        reason == GapReason.HistoryTruncated
            ? "Kafka no longer retains some messages after this position; reload the state you need (e.g. from=earliest)."
            : "This position is not a Kafka history position; everything Kafka still holds follows.");

    /// <returns>Null when a position of <paramref name="notAhead"/> is at or past its partition's high watermark (Kafka never issued it).</returns>
    async Task<HistoryRead?> ReadFromAsync(IReadOnlyList<string> filters, ReplayFrom from, Dictionary<(string, int), long>? skip,
        IReadOnlyList<KafkaPosition>? cursorStart, CancellationToken cancellationToken, IReadOnlyList<KafkaPosition>? notAhead = null)
    {
        var replay = await _replayer.OpenAsync(new ReplayRequest { Topics = Topics, From = from }, cancellationToken).ConfigureAwait(false);
        await using (replay.ConfigureAwait(false))
        {
            if (notAhead is not null && notAhead.Any(p => !replay.End.Any(e => e.Topic == p.Topic && e.Partition == p.Partition && p.Offset < e.Offset))) return null;
            var cursor = new KafkaCursor(replay.Start);
            if (cursorStart is not null)
            {
                foreach (var position in cursorStart) cursor.Advance(position);
            }
            var messages = new List<FeedMessage>();
            await foreach (var record in replay.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                var position = record.Position;
                if (skip is not null && skip.TryGetValue((position.Topic, position.Partition), out var covered) && position.Offset <= covered) continue;
                cursor.Advance(position);
                if (record.Topic is not { } topic || !Matches(filters, topic)) continue;
                messages.Add(new FeedMessage(PositionPrefix + cursor, messages.Count, topic, record.Payload, record.QoS, record.Retain, record.Timestamp)
                {
                    KafkaPosition = position,
                });
            }
            foreach (var end in replay.End) cursor.Advance(end with { Offset = end.Offset - 1 });
            return new HistoryRead(messages, null, -1, PositionPrefix + cursor);
        }
    }

    static bool Matches(IReadOnlyList<string> filters, string topic)
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
        if (!IsKafkaPosition(position)) return false;
        try
        {
            positions = KafkaPosition.ParseList(position![PositionPrefix.Length..]);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
