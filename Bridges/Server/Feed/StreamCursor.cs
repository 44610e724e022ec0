namespace IotRealtime.Bridges.Feed;

/// <summary>
/// Where one stream (an SSE stream, a WebSocket channel) stands after its history read, made by
/// <see cref="IHistorySource.Follow"/>: it drops live messages the read already covered, and names the position each
/// message it lets through is sent with. Used by the stream's writer only (not thread-safe).
/// </summary>
public abstract class StreamCursor
{
    /// <summary>
    /// Whether to send <paramref name="live"/>; if so, <paramref name="ownId"/> is the position to send it with, or null
    /// when it is the message's own <see cref="FeedMessage.Id"/> (so the frames built once per message can be shared).
    /// </summary>
    public abstract bool Take(FeedMessage live, out string? ownId);
}

/// <summary>The in-memory history's cursor: the read's high-water mark, advanced by each message sent; a live message at or below it was sent already.</summary>
sealed class SeqStreamCursor(long replayedUpTo) : StreamCursor
{
    long _sentUpTo = replayedUpTo;

    public override bool Take(FeedMessage live, out string? ownId)
    {
        ownId = null;
        if (live.Seq <= _sentUpTo) return false;
        _sentUpTo = live.Seq;
        return true;
    }
}
