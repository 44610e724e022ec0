namespace IotRealtime.Bridges.Feed;

/// <summary>Where a read starts.</summary>
public enum HistoryStartKind
{
    /// <summary>Nothing from history: live messages only.</summary>
    Live,
    /// <summary>Everything history still holds for the filters.</summary>
    Earliest,
    /// <summary>Everything after a position the client saw.</summary>
    After,
}

public readonly record struct HistoryStart(HistoryStartKind Kind, string? Position)
{
    public static HistoryStart Live { get; } = new(HistoryStartKind.Live, null);

    public static HistoryStart Earliest { get; } = new(HistoryStartKind.Earliest, null);

    public static HistoryStart After(string position) => new(HistoryStartKind.After, position);
}

/// <summary>Why a read could not continue exactly after the requested position.</summary>
public static class GapReason
{
    /// <summary>History evicted messages after the position (per-topic or byte limit, or a whole topic).</summary>
    public const string HistoryTruncated = "history-truncated";

    /// <summary>The position is not one this history issued (another epoch, i.e. before a restart, or malformed).</summary>
    public const string UnknownPosition = "unknown-position";

    /// <summary>The stream's send queue overflowed under the drop-oldest policy.</summary>
    public const string QueueOverflow = "queue-overflow";
}

/// <summary>A gap the client is told about: nothing between <see cref="Requested"/> and <see cref="ResumedFrom"/> can be delivered.</summary>
public sealed record HistoryGap(string Reason, string? Requested, string? ResumedFrom, string Advice);

/// <summary>
/// The result of one read: messages matching the filters in position order, and the gap, if the history no longer
/// reaches the requested position. <see cref="LastSeq"/> is the newest position the read covered (its high-water mark,
/// whether or not a matching message had it): a live message at or below it was either replayed or does not match.
/// <see cref="LastPosition"/> is that mark as a position: a client that resumes after it misses nothing that followed the read.
/// </summary>
public sealed record HistoryRead(IReadOnlyList<FeedMessage> Messages, HistoryGap? Gap, long LastSeq, string LastPosition);

/// <summary>
/// A history of accepted messages that streams resume from: the in-memory history (<see cref="MemoryHistory"/>,
/// <c>&lt;epoch&gt;-&lt;seq&gt;</c> positions) and the Kafka history (<see cref="KafkaHistory"/>, <c>k:</c> cursors).
/// SSE and the WebSocket both resume through it. Guarantees, checked by the shared contract suite
/// (tests/Bridges.Tests/History/HistorySourceContract.cs) for both:
/// <list type="bullet">
/// <item>A read after position P returns every held message matching the filters with a position after P, in
/// position order, and no message at or before P (Kafka: per partition).</item>
/// <item>When any message after P that matched the filters is no longer held, the read says so with a gap
/// (reason history-truncated) and continues from the oldest message still held; never a silent gap.</item>
/// <item>A position this history did not issue (another epoch, malformed, or ahead of the newest) is answered with a
/// gap (reason unknown-position) and everything held.</item>
/// <item>A read sees a prefix of the appended messages; a stream that registered for live messages before the read
/// and passes them through <see cref="Follow"/> gets every later message once and none the read covered.</item>
/// </list>
/// </summary>
public interface IHistorySource
{
    /// <summary>Reads the messages matching <paramref name="filters"/> from <paramref name="start"/>; completes synchronously for the in-memory history.</summary>
    /// <exception cref="Confluent.Kafka.KafkaException">Kafka history only: Kafka could not be reached.</exception>
    ValueTask<HistoryRead> ReadAsync(IReadOnlyList<string> filters, HistoryStart start, CancellationToken cancellationToken = default);

    /// <summary>A new cursor for one stream after <paramref name="read"/>: which live messages it still sends, and with what position.</summary>
    StreamCursor Follow(HistoryRead read);
}
