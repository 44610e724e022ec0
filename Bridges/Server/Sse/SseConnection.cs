using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using IotRealtime.Bridges.Configuration;
using IotRealtime.Bridges.Feed;
using IotRealtime.Bridges.Operations;
using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Engine.Security;

namespace IotRealtime.Bridges.Sse;

/// <summary>
/// One SSE stream: a feed listener with its own bounded queue, and the loop that writes it to the response. Resume is
/// gapless and duplicate-free over all its filters: it registers for live messages first (they queue), then replays
/// history after the requested position, then drops queued live messages at or below what the read covered.
/// </summary>
sealed class SseConnection : FeedListener, IBridgeStream
{
    readonly record struct Item(FeedMessage? Message, PresenceEvent? Presence, bool GapBefore, bool Heartbeat);

    const int BatchSize = 256;

    readonly SseOptions _options;
    readonly BridgeMetrics _metrics;
    readonly IMqttAuthorizer _authorizer;
    readonly ClientIdentity _identity;
    readonly bool _filtered;
    readonly SendQueue<Item> _queue;
    readonly TimeSpan _heartbeat;
    readonly StallWatch _stall;
    readonly Action _abort;
    int _closedByServer;
    bool _overflowGap;
    long _lastWriteTicks;
    int _drainRetryMs = -1;

    /// <param name="abort">Closes the connection at once (the client stopped reading: nothing more can be written to it).</param>
    public SseConnection(SseOptions options, BridgeMetrics metrics, IMqttAuthorizer authorizer, ClientIdentity identity, bool filtered, TimeProvider time, Action abort)
    {
        _options = options;
        _metrics = metrics;
        _authorizer = authorizer;
        _identity = identity;
        _filtered = filtered;
        _heartbeat = TimeSpan.FromSeconds(options.HeartbeatSeconds);
        _stall = new StallWatch(TimeSpan.FromSeconds(options.StallTimeoutSeconds), time);
        _abort = abort;
        _queue = new SendQueue<Item>(options.QueueLength, options.Overflow, _ => { _overflowGap = true; metrics.Dropped(); });
        _lastWriteTicks = time.GetUtcNow().UtcTicks;
    }

    public override bool Accepts(string topic) => !_filtered || _authorizer.CanReceive(_identity, topic);

    public override void Offer(FeedMessage message) => _queue.TryEnqueue(new Item(message, null, false, false));

    public void OfferPresence(PresenceEvent e)
    {
        if (EventJson.PresenceKind(e) is not null) _queue.TryEnqueue(new Item(null, e, false, false));
    }

    /// <summary>Whether the server ended the stream: its queue overflowed (Disconnect policy) or a write made no progress for Bridges:Sse:StallTimeoutSeconds.</summary>
    public bool ClosedByServer => Volatile.Read(ref _closedByServer) != 0;

    public void Tick(DateTimeOffset now)
    {
        if (_stall.Pending && !ClosedByServer)
        {
            // the writer is stuck in a write to a client that does not read: it cannot see an overflow, so close here
            if (_queue.Overflowed) Abort(stalled: false);
            else if (_stall.Expired) Abort(stalled: true);
            if (ClosedByServer) return;
        }
        if (now.UtcTicks - Volatile.Read(ref _lastWriteTicks) >= _heartbeat.Ticks) _queue.TryEnqueueControl(new Item(null, null, false, true));
    }

    public void CloseForDrain(TimeSpan retryAfter)
    {
        Volatile.Write(ref _drainRetryMs, (int)retryAfter.TotalMilliseconds);
        _queue.Wake();
    }

    /// <summary>Writes the stream until the client goes, the queue overflows (Disconnect policy) or the server drains.</summary>
    /// <exception cref="Confluent.Kafka.KafkaException">The Kafka history could not be read (before anything was flushed).</exception>
    public async Task RunAsync(PipeWriter writer, FeedHub hub, IHistorySource history, IReadOnlyList<string> filters, HistoryStart start, int retryMs, TimeProvider time, CancellationToken cancellationToken)
    {
        // nothing is flushed (not even the headers) until the stream is registered: a client that has the response
        // knows that everything published from then on reaches it
        EventJson.WriteUtf8(writer, $"retry: {retryMs}\n\n");

        StreamCursor? cursor = null;
        string? lastId = start.Position;
        if (filters.Count > 0)
        {
            // live first (it queues), then history: nothing between the read and the registration can be missed
            hub.Subscribe(this, filters);
            var read = await history.ReadAsync(filters, start, cancellationToken).ConfigureAwait(false);
            if (read.Gap is { } gap)
            {
                WriteGap(writer, gap);
            }
            var replayed = 0;
            foreach (var message in read.Messages)
            {
                if (!Accepts(message.Topic)) continue;
                writer.Write(message.SseFrame.Span);
                lastId = message.Id;
                if (++replayed % BatchSize == 0) await Flush(writer, time, cancellationToken).ConfigureAwait(false);
            }
            _metrics.SseSent(replayed);
            // an id-only event is not dispatched, but sets EventSource's last event id: a reconnect before the first
            // live message resumes from here instead of "now", so nothing published in between is missed
            if (read.Messages.Count == 0 || read.Messages[^1].Id != read.LastPosition)
            {
                EventJson.WriteUtf8(writer, $"id: {read.LastPosition}\n\n");
                lastId = read.LastPosition;
            }
            cursor = history.Follow(read);
        }
        await Flush(writer, time, cancellationToken).ConfigureAwait(false);

        var batch = new List<Item>();
        while (true)
        {
            await _queue.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (ClosedByServer) return;
            if (Volatile.Read(ref _drainRetryMs) is var drainRetry and >= 0)
            {
                EventJson.WriteUtf8(writer, $"retry: {drainRetry}\n\n");
                await Flush(writer, time, cancellationToken).ConfigureAwait(false);
                return;
            }
            if (_queue.Overflowed)
            {
                if (Interlocked.Exchange(ref _closedByServer, 1) == 0) _metrics.OverflowDisconnect(webSocket: false);
                return;
            }
            batch.Clear();
            _queue.TakeBatch(batch, BatchSize, MarkGap);
            var sent = 0;
            foreach (var item in batch)
            {
                if (item.Heartbeat)
                {
                    writer.Write(": hb\n\n"u8);
                }
                else if (item.Message is { } message)
                {
                    if (cursor is null || !cursor.Take(message, out var ownId)) continue;
                    var id = ownId ?? message.Id;
                    if (item.GapBefore) WriteGap(writer, EventJson.OverflowGap(lastId, id));
                    if (ownId is null)
                    {
                        writer.Write(message.SseFrame.Span);
                    }
                    else
                    {
                        EventJson.WriteUtf8(writer, $"id: {ownId}\n");
                        writer.Write(message.SseFrameWithoutId.Span);
                    }
                    lastId = id;
                    sent++;
                }
                else if (item.Presence is { } presence)
                {
                    if (item.GapBefore) WriteGap(writer, EventJson.OverflowGap(lastId, null));
                    WritePresence(writer, presence);
                    sent++;
                }
            }
            _metrics.SseSent(sent);
            await Flush(writer, time, cancellationToken).ConfigureAwait(false);
        }
    }

    void Abort(bool stalled)
    {
        if (Interlocked.Exchange(ref _closedByServer, 1) != 0) return;
        if (stalled) _metrics.StallDisconnect(webSocket: false);
        else _metrics.OverflowDisconnect(webSocket: false);
        _queue.Wake();
        _abort();
    }

    Item MarkGap(Item item)
    {
        // runs under the queue's lock: a drop recorded now happened before this item
        if (!_overflowGap) return item;
        _overflowGap = false;
        return item with { GapBefore = true };
    }

    async ValueTask Flush(PipeWriter writer, TimeProvider time, CancellationToken cancellationToken)
    {
        // a flush waits while the response buffer is full: the stall watch sees how long
        _stall.Begin();
        try
        {
            await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _stall.End();
        }
        Volatile.Write(ref _lastWriteTicks, time.GetUtcNow().UtcTicks);
    }

    void WriteGap(PipeWriter writer, HistoryGap gap)
    {
        _metrics.Gap(gap.Reason);
        writer.Write("event: gap\ndata: "u8);
        using (var json = new Utf8JsonWriter(writer))
        {
            json.WriteStartObject();
            EventJson.WriteGapFields(json, gap);
            json.WriteEndObject();
        }
        writer.Write("\n\n"u8);
    }

    static void WritePresence(PipeWriter writer, PresenceEvent e)
    {
        writer.Write("event: presence\ndata: "u8);
        using (var json = new Utf8JsonWriter(writer))
        {
            EventJson.WritePresenceObject(json, e);
        }
        writer.Write("\n\n"u8);
    }

    public void Complete() => _queue.Close();
}
