using System.Text;
using IotRealtime.Bridges.Feed;
using IotRealtime.Hosting.Metrics;

namespace IotRealtime.Bridges.Operations;

/// <summary>Counters of the bridges, written to /metrics as iotrealtime_bridges_* families.</summary>
public sealed class BridgeMetrics(FeedHub hub) : IMetricsSource
{
    static readonly string[] Reasons = [GapReason.HistoryTruncated, GapReason.UnknownPosition, GapReason.QueueOverflow];

    long _sseOpen;
    long _wsOpen;
    long _wsChannels;
    long _sseEvents;
    long _wsEvents;
    long _sseOverflowDisconnects;
    long _wsOverflowDisconnects;
    long _droppedOverflow;
    readonly long[] _gaps = new long[Reasons.Length];
    long _rejectedLimit;
    long _rejectedAuth;
    long _wsIdleClosed;
    long _sseStalled;
    long _wsStalled;

    public long SseOpen => Interlocked.Read(ref _sseOpen);
    public long WebSocketsOpen => Interlocked.Read(ref _wsOpen);
    public long WebSocketChannels => Interlocked.Read(ref _wsChannels);
    public long SseEventsSent => Interlocked.Read(ref _sseEvents);
    public long WebSocketEventsSent => Interlocked.Read(ref _wsEvents);

    internal void SseOpened() => Interlocked.Increment(ref _sseOpen);
    internal void SseClosed() => Interlocked.Decrement(ref _sseOpen);
    internal void WebSocketOpened() => Interlocked.Increment(ref _wsOpen);
    internal void WebSocketClosed() => Interlocked.Decrement(ref _wsOpen);
    internal void ChannelsChanged(int delta) => Interlocked.Add(ref _wsChannels, delta);
    internal void SseSent(int events) => Interlocked.Add(ref _sseEvents, events);
    internal void WebSocketSent(int events) => Interlocked.Add(ref _wsEvents, events);
    internal void OverflowDisconnect(bool webSocket) => Interlocked.Increment(ref webSocket ? ref _wsOverflowDisconnects : ref _sseOverflowDisconnects);
    internal void Dropped() => Interlocked.Increment(ref _droppedOverflow);
    internal void RejectedLimit() => Interlocked.Increment(ref _rejectedLimit);
    internal void RejectedAuth() => Interlocked.Increment(ref _rejectedAuth);
    internal void IdleClosed() => Interlocked.Increment(ref _wsIdleClosed);
    internal void StallDisconnect(bool webSocket) => Interlocked.Increment(ref webSocket ? ref _wsStalled : ref _sseStalled);

    /// <summary>Streams closed because their client stopped reading (a write stuck for the stall timeout).</summary>
    public long StallDisconnects(bool webSocket) => Interlocked.Read(ref webSocket ? ref _wsStalled : ref _sseStalled);

    /// <summary>Streams closed because their send queue overflowed under the Disconnect policy.</summary>
    public long OverflowDisconnects(bool webSocket) => Interlocked.Read(ref webSocket ? ref _wsOverflowDisconnects : ref _sseOverflowDisconnects);

    internal void Gap(string reason)
    {
        var i = Array.IndexOf(Reasons, reason);
        if (i >= 0) Interlocked.Increment(ref _gaps[i]);
    }

    public long Gaps(string reason) => Interlocked.Read(ref _gaps[Array.IndexOf(Reasons, reason)]);

    public void WriteMetrics(StringBuilder w)
    {
        PrometheusText.Family(w, "iotrealtime_bridges_sse_streams", "gauge", "Open SSE streams.", SseOpen);
        PrometheusText.Family(w, "iotrealtime_bridges_websockets", "gauge", "Open multiplexed WebSockets.", WebSocketsOpen);
        PrometheusText.Family(w, "iotrealtime_bridges_websocket_channels", "gauge", "Subscribed channels over all WebSockets.", WebSocketChannels);
        PrometheusText.Header(w, "iotrealtime_bridges_events_sent_total", "counter", "Message and presence events sent to browsers (rate() = events/s).");
        PrometheusText.Sample(w, "iotrealtime_bridges_events_sent_total", "transport", "sse", SseEventsSent);
        PrometheusText.Sample(w, "iotrealtime_bridges_events_sent_total", "transport", "ws", WebSocketEventsSent);
        PrometheusText.Family(w, "iotrealtime_bridges_dropped_total", "counter", "Messages dropped from full send queues under the DropOldest policy.", Interlocked.Read(ref _droppedOverflow));
        PrometheusText.Header(w, "iotrealtime_bridges_gaps_total", "counter", "Gap events sent, by reason.");
        foreach (var reason in Reasons) PrometheusText.Sample(w, "iotrealtime_bridges_gaps_total", "reason", reason, Gaps(reason));
        PrometheusText.Header(w, "iotrealtime_bridges_disconnects_total", "counter", "Streams closed by the server, by reason.");
        PrometheusText.Sample(w, "iotrealtime_bridges_disconnects_total", "reason", "sse-queue-overflow", Interlocked.Read(ref _sseOverflowDisconnects));
        PrometheusText.Sample(w, "iotrealtime_bridges_disconnects_total", "reason", "ws-queue-overflow", Interlocked.Read(ref _wsOverflowDisconnects));
        PrometheusText.Sample(w, "iotrealtime_bridges_disconnects_total", "reason", "ws-idle", Interlocked.Read(ref _wsIdleClosed));
        PrometheusText.Sample(w, "iotrealtime_bridges_disconnects_total", "reason", "sse-stalled", StallDisconnects(webSocket: false));
        PrometheusText.Sample(w, "iotrealtime_bridges_disconnects_total", "reason", "ws-stalled", StallDisconnects(webSocket: true));
        PrometheusText.Header(w, "iotrealtime_bridges_rejected_total", "counter", "Requests to open a stream that were refused, by reason.");
        PrometheusText.Sample(w, "iotrealtime_bridges_rejected_total", "reason", "limit", Interlocked.Read(ref _rejectedLimit));
        PrometheusText.Sample(w, "iotrealtime_bridges_rejected_total", "reason", "auth", Interlocked.Read(ref _rejectedAuth));
        PrometheusText.Family(w, "iotrealtime_bridges_history_messages", "gauge", "Messages held in the bridges' history.", hub.History.HeldMessages);
        PrometheusText.Family(w, "iotrealtime_bridges_history_bytes", "gauge", "Bytes held in the bridges' history.", hub.History.HeldBytes);
        PrometheusText.Family(w, "iotrealtime_bridges_history_topics", "gauge", "Topics held in the bridges' history.", hub.History.HeldTopics);
        PrometheusText.Header(w, "iotrealtime_bridges_history_evicted_total", "counter", "Messages evicted from history, by reason.");
        PrometheusText.Sample(w, "iotrealtime_bridges_history_evicted_total", "reason", "topic-length", hub.History.Evicted(HistoryEviction.TopicLength));
        PrometheusText.Sample(w, "iotrealtime_bridges_history_evicted_total", "reason", "topic-count", hub.History.Evicted(HistoryEviction.TopicCount));
        PrometheusText.Sample(w, "iotrealtime_bridges_history_evicted_total", "reason", "bytes", hub.History.Evicted(HistoryEviction.Bytes));
        PrometheusText.Family(w, "iotrealtime_bridges_feed_messages_total", "counter", "Messages the bridges' feed received.", hub.Appended);
    }
}
