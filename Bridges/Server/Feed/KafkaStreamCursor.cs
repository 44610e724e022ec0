using IotRealtime.Broker.Kafka;

namespace IotRealtime.Bridges.Feed;

/// <summary>
/// The Kafka history's cursor: the stream's own <see cref="KafkaCursor"/>, starting where its read ended and advanced
/// by each live message it sends, so a message at or below the cursor for its partition is skipped (deduplication by
/// offset) and each message is sent with the cursor just after it — a position from which a resume, even on another
/// bridges process, misses nothing of this stream and repeats nothing.
/// </summary>
sealed class KafkaStreamCursor : StreamCursor
{
    readonly KafkaCursor _cursor;

    /// <param name="covered">The read's <see cref="HistoryRead.LastPosition"/>: the last offset covered per partition.</param>
    public KafkaStreamCursor(IReadOnlyList<KafkaPosition> covered)
    {
        _cursor = new KafkaCursor(covered.Select(p => p with { Offset = p.Offset + 1 }));
    }

    public override bool Take(FeedMessage live, out string? ownId)
    {
        ownId = null;
        if (live.KafkaPosition is not { } at || Covered(at)) return false;
        _cursor.Advance(at);
        ownId = KafkaHistory.PositionPrefix + _cursor;
        return true;
    }

    bool Covered(KafkaPosition at)
    {
        foreach (var p in _cursor.Positions)
        {
            if (p.Topic == at.Topic && p.Partition == at.Partition) return at.Offset <= p.Offset;
        }
        return false;
    }
}
