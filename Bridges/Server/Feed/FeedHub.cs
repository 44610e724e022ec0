using IotRealtime.Broker.Engine.Routing;

namespace IotRealtime.Bridges.Feed;

/// <summary>
/// The live feed: every accepted message gets its position and is kept in <see cref="History"/>, then handed to each
/// listener whose filter matches, all under one lock so that every listener sees messages in position order and a
/// listener registered before a history read misses nothing after that read. Listeners are grouped by filter, so a
/// message costs one match per distinct filter, not one per stream.
/// </summary>
public sealed class FeedHub
{
    readonly Dictionary<string, List<FeedListener>> _byFilter = new(StringComparer.Ordinal);
    long _appended;
    int _listeners;

    public FeedHub(MemoryHistory history) => History = history;

    public MemoryHistory History { get; }

    public int ListenerCount => Volatile.Read(ref _listeners);

    public long Appended => Interlocked.Read(ref _appended);

    public FeedMessage Append(string topic, ReadOnlyMemory<byte> payload, int qos, bool retain, DateTimeOffset receivedAt)
    {
        lock (History.Sync)
        {
            var message = History.AppendLocked(topic, payload, qos, retain, receivedAt);
            _appended++;
            if (_listeners > 0) Dispatch(message);
            return message;
        }
    }

    void Dispatch(FeedMessage message)
    {
        foreach (var (filter, listeners) in _byFilter)
        {
            if (!TopicValidation.Matches(filter, message.Topic)) continue;
            foreach (var listener in listeners)
            {
                if (listener.LastOffered == message.Seq) continue;
                listener.LastOffered = message.Seq;
                if (listener.Accepts(message.Topic)) listener.Offer(message);
            }
        }
    }

    /// <summary>Registers <paramref name="listener"/> for <paramref name="filters"/>: it gets every message appended from now on.</summary>
    public void Subscribe(FeedListener listener, IReadOnlyList<string> filters)
    {
        lock (History.Sync)
        {
            listener.Filters = filters.Distinct(StringComparer.Ordinal).ToArray();
            foreach (var filter in listener.Filters)
            {
                if (!_byFilter.TryGetValue(filter, out var list)) _byFilter[filter] = list = [];
                list.Add(listener);
            }
            _listeners++;
        }
    }

    public void Unsubscribe(FeedListener listener)
    {
        lock (History.Sync)
        {
            if (listener.Filters.Length == 0) return;
            foreach (var filter in listener.Filters)
            {
                if (_byFilter.TryGetValue(filter, out var list) && list.Remove(listener) && list.Count == 0) _byFilter.Remove(filter);
            }
            listener.Filters = [];
            _listeners--;
        }
    }
}
