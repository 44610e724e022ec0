namespace IotRealtime.Bridges.Feed;

/// <summary>
/// A live receiver of feed messages (an SSE stream, a WebSocket channel). <see cref="Offer"/> is called under the
/// feed's lock, in position order, once per message even when several of its filters match: it must not block.
/// </summary>
public abstract class FeedListener
{
    internal long LastOffered;

    internal string[] Filters { get; set; } = [];

    /// <summary>Per-message check after the filter matched (an ACL that allows a filter only in part).</summary>
    public virtual bool Accepts(string topic) => true;

    public abstract void Offer(FeedMessage message);
}
