using System.Collections.Concurrent;
using IotRealtime.Bridges.Feed;
using IotRealtime.Bridges.Fleet;

namespace IotRealtime.Bridges.Operations;

/// <summary>An open SSE stream or WebSocket, as the registry drives it.</summary>
public interface IBridgeStream
{
    /// <summary>Called about once a second: send a heartbeat or ping when due, close when idle too long.</summary>
    void Tick(DateTimeOffset now);

    /// <summary>Close because the server drains: tell the client to come back after <paramref name="retryAfter"/>.</summary>
    void CloseForDrain(TimeSpan retryAfter);
}

/// <summary>
/// Every open stream: per-client limits, one timer for all heartbeats and idle checks (not one per stream), and
/// closing everything when the broker drains so clients reconnect elsewhere, spread over the drain window.
/// </summary>
public sealed class StreamRegistry : IAsyncDisposable
{
    readonly ConcurrentDictionary<IBridgeStream, byte> _streams = new();
    readonly ConcurrentDictionary<string, int> _perClient = new(StringComparer.Ordinal);
    readonly IBrokerLink _broker;
    readonly FeedHub _hub;
    readonly TimeSpan _recordingGrace;
    readonly TimeProvider _time;
    readonly ITimer _timer;
    int _ticking;
    bool _draining;

    public StreamRegistry(IBrokerLink broker, FeedHub hub, TimeSpan recordingGrace, TimeProvider time)
    {
        _broker = broker;
        _hub = hub;
        _recordingGrace = recordingGrace;
        _time = time;
        _timer = time.CreateTimer(static s => ((StreamRegistry)s!).Tick(), this, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public int Count => _streams.Count;

    /// <summary>Whether streams are refused and closed: the broker (or this bridges host) drains.</summary>
    public bool Draining => _draining || _broker.IsDraining;

    /// <summary>Counts a new stream for <paramref name="clientKey"/>; false when it already holds <paramref name="limit"/>.</summary>
    public bool TryAcquire(string clientKey, int limit)
    {
        while (true)
        {
            var current = _perClient.GetOrAdd(clientKey, 0);
            if (current >= limit) return false;
            if (_perClient.TryUpdate(clientKey, current + 1, current)) return true;
        }
    }

    public void Release(string clientKey)
    {
        while (_perClient.TryGetValue(clientKey, out var current))
        {
            if (current <= 1 ? _perClient.TryRemove(new KeyValuePair<string, int>(clientKey, current)) : _perClient.TryUpdate(clientKey, current - 1, current)) return;
        }
    }

    public void Add(IBridgeStream stream) => _streams[stream] = 0;

    public void Remove(IBridgeStream stream) => _streams.TryRemove(stream, out _);

    /// <summary>Closes every stream now and refuses new ones (the standalone bridges' own drain).</summary>
    public void Drain(TimeSpan window)
    {
        _draining = true;
        CloseAll(window);
    }

    void Tick()
    {
        if (Interlocked.Exchange(ref _ticking, 1) != 0) return;
        try
        {
            var now = _time.GetUtcNow();
            if (_broker.IsDraining && !_draining)
            {
                _draining = true;
                CloseAll(_broker.DrainWindow);
                return;
            }
            foreach (var stream in _streams.Keys) stream.Tick(now);
            _hub.StopRecordingIfIdle(_recordingGrace);
        }
        finally
        {
            Volatile.Write(ref _ticking, 0);
        }
    }

    void CloseAll(TimeSpan window)
    {
        foreach (var stream in _streams.Keys)
        {
            // each client is told to come back at its own moment in the window, so they do not return in one storm
            var retry = TimeSpan.FromMilliseconds(1000 + Random.Shared.NextDouble() * Math.Max(0, window.TotalMilliseconds));
            stream.CloseForDrain(retry);
        }
    }

    public ValueTask DisposeAsync() => _timer.DisposeAsync();
}
