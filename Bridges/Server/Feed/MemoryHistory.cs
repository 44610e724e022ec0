using System.Security.Cryptography;
using IotRealtime.Bridges.Configuration;
using IotRealtime.Broker.Engine.Routing;

namespace IotRealtime.Bridges.Feed;

/// <summary>Why history let a message go.</summary>
public enum HistoryEviction
{
    /// <summary>The topic holds <see cref="HistoryOptions.MessagesPerTopic"/> newer messages.</summary>
    TopicLength,
    /// <summary><see cref="HistoryOptions.MaxTopics"/> reached: the topic updated least recently went, whole.</summary>
    TopicCount,
    /// <summary><see cref="HistoryOptions.MaxBytes"/> reached: the oldest message of the topic updated least recently went.</summary>
    Bytes,
}

/// <summary>
/// The embedded history: the newest messages of each topic in memory, bounded by messages per topic, topics and bytes,
/// with positions <c>&lt;epoch&gt;-&lt;seq&gt;</c>. It remembers, per topic, up to which seq it evicted — and for topics
/// evicted whole, their last seq (bounded; beyond, folded into one conservative watermark) — so a read can tell
/// exactly whether anything after a position is gone. Appends and reads take one lock (<see cref="Sync"/>), which the
/// live feed shares so that registering a listener is atomic with respect to appends.
/// </summary>
public sealed class MemoryHistory : IHistorySource
{
    readonly HistoryOptions _options;
    readonly Dictionary<string, TopicHistory> _topics = new(StringComparer.Ordinal);
    // least recently appended first
    readonly LinkedList<TopicHistory> _byRecency = new();
    readonly Dictionary<string, long> _evictedTopics = new(StringComparer.Ordinal);
    readonly Queue<string> _evictedOrder = new();
    readonly long[] _evictions = new long[3];
    long _foldedWatermark;
    long _seq;
    long _bytes;
    long _count;

    public MemoryHistory(HistoryOptions options, string? epoch = null)
    {
        _options = options;
        Epoch = epoch ?? Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();
    }

    internal Lock Sync { get; } = new();

    public string Epoch { get; }

    public long LastSeq
    {
        get
        {
            lock (Sync) return _seq;
        }
    }

    public long HeldMessages
    {
        get
        {
            lock (Sync) return _count;
        }
    }

    public long HeldBytes
    {
        get
        {
            lock (Sync) return _bytes;
        }
    }

    public int HeldTopics
    {
        get
        {
            lock (Sync) return _topics.Count;
        }
    }

    public long Evicted(HistoryEviction reason) => Interlocked.Read(ref _evictions[(int)reason]);

    /// <summary>Assigns the next position and keeps the message; the caller holds <see cref="Sync"/>.</summary>
    internal FeedMessage AppendLocked(string topic, ReadOnlyMemory<byte> payload, int qos, bool retain, DateTimeOffset receivedAt)
    {
        var seq = ++_seq;
        var message = new FeedMessage(seq, Epoch, topic, payload, qos, retain, receivedAt);
        if (!_topics.TryGetValue(topic, out var history))
        {
            if (_topics.Count >= _options.MaxTopics) EvictTopic(_byRecency.First!.Value, HistoryEviction.TopicCount);
            history = new TopicHistory(topic);
            if (_evictedTopics.Remove(topic, out var evictedUpTo)) history.EvictedUpTo = evictedUpTo;
            history.Node = _byRecency.AddLast(history);
            _topics[topic] = history;
        }
        else
        {
            _byRecency.Remove(history.Node!);
            _byRecency.AddLast(history.Node!);
        }
        history.Messages.Enqueue(message);
        _bytes += message.Size;
        _count++;
        if (history.Messages.Count > _options.MessagesPerTopic) EvictOldest(history, HistoryEviction.TopicLength);
        while (_bytes > _options.MaxBytes && _byRecency.First is { } oldest)
        {
            EvictOldest(oldest.Value, HistoryEviction.Bytes);
        }
        return message;
    }

    /// <summary>
    /// Recording (re)starts after a pause in which messages may have gone unrecorded: a position from before now can no
    /// longer be resumed exactly, so it is made a hole that every such resume reports as a gap. The caller holds <see cref="Sync"/>.
    /// </summary>
    internal void MarkHoleLocked()
    {
        if (_seq == 0) return;
        _foldedWatermark = ++_seq;
    }

    /// <summary>Appends under the lock (for sources that feed history without a live feed, e.g. tests).</summary>
    public FeedMessage Append(string topic, ReadOnlyMemory<byte> payload, int qos = 0, bool retain = false, DateTimeOffset receivedAt = default)
    {
        lock (Sync) return AppendLocked(topic, payload, qos, retain, receivedAt);
    }

    void EvictOldest(TopicHistory history, HistoryEviction reason)
    {
        var message = history.Messages.Dequeue();
        history.EvictedUpTo = message.Seq;
        _bytes -= message.Size;
        _count--;
        _evictions[(int)reason]++;
        if (history.Messages.Count == 0) RemoveTopic(history);
    }

    void EvictTopic(TopicHistory history, HistoryEviction reason)
    {
        foreach (var message in history.Messages)
        {
            _bytes -= message.Size;
            _count--;
            _evictions[(int)reason]++;
            history.EvictedUpTo = message.Seq;
        }
        history.Messages.Clear();
        RemoveTopic(history);
    }

    void RemoveTopic(TopicHistory history)
    {
        _topics.Remove(history.Topic);
        _byRecency.Remove(history.Node!);
        history.Node = null;
        // remember what went, bounded: beyond MaxTopics remembered topics, the oldest fold into one watermark that
        // makes every resume from before it report a gap (conservative, never silent)
        _evictedTopics[history.Topic] = history.EvictedUpTo;
        _evictedOrder.Enqueue(history.Topic);
        while (_evictedOrder.Count > _options.MaxTopics)
        {
            var topic = _evictedOrder.Dequeue();
            if (_evictedTopics.Remove(topic, out var upTo)) _foldedWatermark = Math.Max(_foldedWatermark, upTo);
        }
    }

    public HistoryRead Read(IReadOnlyList<string> filters, HistoryStart start)
    {
        lock (Sync) return ReadLocked(filters, start);
    }

    public ValueTask<HistoryRead> ReadAsync(IReadOnlyList<string> filters, HistoryStart start, CancellationToken cancellationToken = default) =>
        new(Read(filters, start));

    public StreamCursor Follow(HistoryRead read)
    {
        ArgumentNullException.ThrowIfNull(read);
        return new SeqStreamCursor(read.LastSeq);
    }

    internal HistoryRead ReadLocked(IReadOnlyList<string> filters, HistoryStart start)
    {
        if (start.Kind == HistoryStartKind.Live) return new HistoryRead([], null, _seq, new FeedPosition(Epoch, _seq).ToString());
        long after = 0;
        HistoryGap? gap = null;
        if (start.Kind == HistoryStartKind.After)
        {
            if (!FeedPosition.TryParse(start.Position, out var position) || position.Epoch != Epoch || position.Seq > _seq)
            {
                gap = new HistoryGap(GapReason.UnknownPosition, start.Position, null,
                    "the position is not from this server's history (it restarted, or the position is malformed): everything still held follows; refetch state if exactness matters");
            }
            else
            {
                after = position.Seq;
                if (IsTruncatedAfter(filters, after))
                {
                    gap = new HistoryGap(GapReason.HistoryTruncated, start.Position, null,
                        "history no longer reaches the requested position: messages in between are lost to this stream; refetch current state (e.g. retained messages or the history API)");
                }
            }
        }
        var messages = new List<FeedMessage>();
        foreach (var history in _topics.Values)
        {
            if (!MatchesAny(filters, history.Topic)) continue;
            foreach (var message in history.Messages)
            {
                if (message.Seq > after) messages.Add(message);
            }
        }
        messages.Sort(static (a, b) => a.Seq.CompareTo(b.Seq));
        if (gap is not null) gap = gap with { ResumedFrom = messages.Count > 0 ? messages[0].Id : null };
        return new HistoryRead(messages, gap, _seq, new FeedPosition(Epoch, _seq).ToString());
    }

    bool IsTruncatedAfter(IReadOnlyList<string> filters, long after)
    {
        if (_foldedWatermark > after) return true;
        foreach (var history in _topics.Values)
        {
            if (history.EvictedUpTo > after && MatchesAny(filters, history.Topic)) return true;
        }
        foreach (var (topic, upTo) in _evictedTopics)
        {
            if (upTo > after && MatchesAny(filters, topic)) return true;
        }
        return false;
    }

    internal static bool MatchesAny(IReadOnlyList<string> filters, string topic)
    {
        for (var i = 0; i < filters.Count; i++)
        {
            if (TopicFilter.Matches(filters[i], topic)) return true;
        }
        return false;
    }

    sealed class TopicHistory(string topic)
    {
        public string Topic { get; } = topic;
        public Queue<FeedMessage> Messages { get; } = new();
        public long EvictedUpTo { get; set; }
        public LinkedListNode<TopicHistory>? Node { get; set; }
    }
}
