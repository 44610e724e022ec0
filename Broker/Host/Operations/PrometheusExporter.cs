using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Hosting.Metrics;
using MQTTnet.Protocol;
using static IotRealtime.Hosting.Metrics.PrometheusText;

namespace IotRealtime.Broker.Host.Operations;

/// <summary>
/// Writes the engine's metrics in the Prometheus text exposition format 0.0.4 (HELP and TYPE per family, then samples).
/// Reads <see cref="MqttBroker"/> and <see cref="BrokerMetrics"/> directly: the same numbers the Meter publishes. On
/// <c>/metrics</c> (<see cref="IotRealtime.Hosting.Web.MetricsEndpoint"/>) every registered <see cref="IMetricsSource"/>
/// (Kafka forwarder, bridges) adds its own families after these.
/// </summary>
public static class PrometheusExporter

{
    public static void WriteEngine(StringBuilder w, MqttBroker broker, TimeProvider time)
    {
        var m = broker.Metrics;
        Family(w, "iotrealtime_up", "gauge", "1 while the broker runs.", 1);
        Family(w, "iotrealtime_uptime_seconds", "gauge", "Seconds since the engine started.", (long)(time.GetUtcNow() - broker.StartedAt).TotalSeconds);
        Family(w, "iotrealtime_connections", "gauge", "Open MQTT connections (including ones that have not sent CONNECT yet).", broker.ConnectedClients);
        Family(w, "iotrealtime_connects_total", "counter", "CONNECTs accepted; rate() gives connects per second.", m.Connects);
        Header(w, "iotrealtime_connections_refused_total", "counter", "CONNECTs refused by a drain or overload protection, by reason.");
        foreach (var reason in Enum.GetValues<ConnectRefusal>()) Sample(w, "iotrealtime_connections_refused_total", "reason", BrokerMetrics.Label(reason), m.ConnectsRefused(reason));
        Header(w, "iotrealtime_messages_received_total", "counter", "PUBLISH packets received from clients, by QoS.");
        for (var q = 0; q <= 2; q++) Sample(w, "iotrealtime_messages_received_total", "qos", Num(q), broker.MessagesReceivedAt((MqttQualityOfServiceLevel)q));
        Header(w, "iotrealtime_messages_sent_total", "counter", "PUBLISH packets sent to clients, by QoS.");
        for (var q = 0; q <= 2; q++) Sample(w, "iotrealtime_messages_sent_total", "qos", Num(q), broker.MessagesSentAt((MqttQualityOfServiceLevel)q));
        Family(w, "iotrealtime_bytes_received_total", "counter", "MQTT bytes received.", broker.BytesReceived);
        Family(w, "iotrealtime_bytes_sent_total", "counter", "MQTT bytes sent.", broker.BytesSent);
        Header(w, "iotrealtime_messages_dropped_total", "counter", "Messages not delivered to a subscriber, by reason (queue_full counts the overflow policy).");
        foreach (var reason in Enum.GetValues<DropReason>()) Sample(w, "iotrealtime_messages_dropped_total", "reason", BrokerMetrics.Label(reason), broker.Dropped(reason));
        Header(w, "iotrealtime_publishes_refused_total", "counter", "Inbound publishes refused by per-client limits, by reason.");
        foreach (var reason in Enum.GetValues<PublishRefusal>()) Sample(w, "iotrealtime_publishes_refused_total", "reason", BrokerMetrics.Label(reason), m.PublishesRefused(reason));
        Family(w, "iotrealtime_publish_limit_disconnects_total", "counter", "Clients disconnected (0x97) for staying over their publish limits.", m.PublishLimitDisconnects);
        Family(w, "iotrealtime_write_stall_disconnects_total", "counter", "Clients disconnected for not reading what they were sent (Broker:WriteStallTimeoutSeconds).", m.WriteStallDisconnects);
        Family(w, "iotrealtime_backpressure_waits_total", "counter", "Times a publisher was not read while a subscriber it feeds drained (Broker:QueueOverflowPolicy=Backpressure).", m.BackpressureWaits);
        Family(w, "iotrealtime_backpressure_held_connections", "gauge", "Publishers' connections not being read right now, waiting for a subscriber to drain.", m.BackpressureHeld);
        Family(w, "iotrealtime_backpressure_timeouts_total", "counter", "Backpressure waits ended by Broker:BackpressureTimeoutSeconds instead of the drain.", m.BackpressureTimeouts);
        Family(w, "iotrealtime_queued_messages", "gauge", "Messages queued for delivery across all sessions.", broker.QueueDepthTotal());
        Family(w, "iotrealtime_queued_bytes", "gauge", "Bytes queued for delivery across all sessions (what Broker:MaxQueuedBytes bounds per session).", broker.QueuedBytesTotal());
        Family(w, "iotrealtime_inflight_messages", "gauge", "QoS 1/2 deliveries awaiting acknowledgement across all sessions.", broker.InflightTotal());
        Family(w, "iotrealtime_sessions", "gauge", "Sessions, online and offline.", broker.SessionCount);
        Family(w, "iotrealtime_subscriptions", "gauge", "Subscriptions across all sessions.", broker.SubscriptionCount);
        Family(w, "iotrealtime_retained_messages", "gauge", "Retained messages.", broker.Retained.Count);
        Family(w, "iotrealtime_draining", "gauge", "1 while the broker drains (refuses CONNECTs).", broker.IsDraining ? 1 : 0);
        Histogram(w, "iotrealtime_accept_latency_seconds", "Time publishes spent in an asynchronous accept stage (store, forwarders).", m.AcceptLatency);
        Histogram(w, "iotrealtime_store_write_latency_seconds", "Durable store write latency.", m.StoreWriteLatency);
    }
}
