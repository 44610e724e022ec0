using IotRealtime.Bridges.Configuration;
using IotRealtime.Broker.Engine.Routing;

namespace IotRealtime.Bridges.Feed;

/// <summary>
/// The live feed: every accepted message gets its position and is kept in <see cref="History"/>, then handed to each
/// listener whose filter matches, all under one lock so that every listener sees messages in position order and a
/// listener registered before a history read misses nothing after that read. Listeners are grouped by filter in a
/// <see cref="TopicFilterIndex{T}"/>: a filter without wildcards is one dictionary lookup per message, and a message
/// costs one match per distinct wildcard filter, never one per stream.
/// <para>
/// Recording follows <see cref="HistoryRecording"/>: with <see cref="HistoryRecording.WhileListened"/> the broker's
/// publish path pays one volatile read while no browser listens; recording starts with the first listener and stops
/// <c>grace</c> after the last one left. A pause leaves a hole in history, so a resume from before it is told of a gap.
/// </para>
/// </summary>
public sealed class FeedHub
{
    // filter -> the listeners registered for it
    readonly TopicFilterIndex<HashSet<FeedListener>> _listenersByFilter = new();
    readonly HistoryRecording _mode;
    long _appended;
    int _listeners;
    volatile bool _recording;
    long _idleSince;

    public FeedHub(MemoryHistory history, HistoryRecording mode = HistoryRecording.Always)
    {
        History = history;
        _mode = mode;
        _recording = mode == HistoryRecording.Always;
    }

    /// <summary>Whether accepted messages are recorded (and dispatched) now.</summary>
    public bool Recording => _recording;

    public MemoryHistory History { get; }

    public int ListenerCount => Volatile.Read(ref _listeners);

    public long Appended => Interlocked.Read(ref _appended);

    /// <summary>Records and dispatches a message; null while not recording (nobody listens under WhileListened).</summary>
    public FeedMessage? Append(string topic, ReadOnlyMemory<byte> payload, int qos, bool retain, DateTimeOffset receivedAt)
    {
        if (!_recording) return null;
        lock (History.Sync)
        {
            var message = History.AppendLocked(topic, payload, qos, retain, receivedAt);
            _appended++;
            if (_listeners > 0) Dispatch(message);
            return message;
        }
    }

    /// <summary>
    /// Hands a message that already has its position (the Kafka live feed) to the listeners, without recording it in
    /// <see cref="History"/>. Seq must increase from call to call and start above 0.
    /// </summary>
    public void Publish(FeedMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        lock (History.Sync) PublishLocked(message);
    }

    /// <summary>As <see cref="Publish"/>, for a caller that holds the feed's lock (<see cref="KafkaFrontHistory"/>: keeping and dispatching are one step).</summary>
    internal void PublishLocked(FeedMessage message)
    {
        _appended++;
        if (_listeners > 0) Dispatch(message);
    }

    void Dispatch(FeedMessage message)
    {
        foreach (var listeners in _listenersByFilter.Matching(message.Topic))
        {
            Offer(listeners, message);
        }
    }

    static void Offer(HashSet<FeedListener> listeners, FeedMessage message)
    {
        foreach (var listener in listeners)
        {
            // a listener with several matching filters gets the message once
            if (listener.LastOffered == message.Seq) continue;
            listener.LastOffered = message.Seq;
            if (listener.Accepts(message.Topic)) listener.Offer(message);
        }
    }

    /// <summary>Registers <paramref name="listener"/> for <paramref name="filters"/>: it gets every message appended from now on.</summary>
    public void Subscribe(FeedListener listener, IReadOnlyList<string> filters)
    {
        lock (History.Sync)
        {
            StartRecordingLocked();
            listener.Filters = filters.Distinct(StringComparer.Ordinal).ToArray();
            foreach (var filter in listener.Filters)
            {
                if (!_listenersByFilter.TryGetValue(filter, out var list))
                {
                    list = new HashSet<FeedListener>(ReferenceEqualityComparer.Instance);
                    _listenersByFilter.TryAdd(filter, list);
                }
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
                if (_listenersByFilter.TryGetValue(filter, out var list) && list.Remove(listener) && list.Count == 0) _listenersByFilter.Remove(filter);
            }
            listener.Filters = [];
            if (--_listeners == 0) _idleSince = Environment.TickCount64;
        }
    }

    void StartRecordingLocked()
    {
        if (_recording) return;
        History.MarkHoleLocked();
        _recording = true;
    }

    /// <summary>Under WhileListened: stops recording when nobody has listened for <paramref name="grace"/>. Called about once a second.</summary>
    public void StopRecordingIfIdle(TimeSpan grace)
    {
        if (_mode == HistoryRecording.Always || !_recording) return;
        lock (History.Sync)
        {
            if (_listeners == 0 && Environment.TickCount64 - _idleSince >= (long)grace.TotalMilliseconds) _recording = false;
        }
    }
}
