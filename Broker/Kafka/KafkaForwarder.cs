using System.Globalization;
using System.Text;
using Confluent.Kafka;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Hosting.Metrics;
using Microsoft.Extensions.Logging;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Kafka;

/// <summary>
/// Forwards every accepted MQTT message to the Kafka topic of the first matching rule. Durable mode completes the
/// accept stage only when Kafka has persisted the record (acks=all, idempotent producer), so a QoS 1/2 acknowledgement
/// never claims success Kafka has not given; async mode accepts at once and counts what it holds in a bounded buffer
/// (librdkafka's own queue, bounded here by <see cref="KafkaOptions.AsyncBufferMessages"/>).
/// </summary>
public sealed class KafkaForwarder : IPublishStage, IMetricsSource, IAsyncDisposable
{
    readonly KafkaOptions _options;
    readonly ILogger _logger;
    readonly TimeProvider _time;
    readonly IProducer<byte[]?, byte[]> _producer;
    // the rules by filter, first added first: the first matching rule wins
    readonly TopicFilterIndex<Route> _routes = new();
    // the same routes in rule order (a repeated filter only once), for the metrics
    readonly List<Route> _routeList = [];
    readonly Route? _defaultRoute;
    readonly TimeSpan _durableTimeout;
    readonly LatencyHistogram _latency = new();
    long _forwarded;
    long _failed;
    long _buffered;
    long _dropped;
    long _durableTimeouts;
    int _disposed;

    public KafkaForwarder(KafkaOptions options, TimeProvider time, ILogger<KafkaForwarder> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.Enabled) throw new ArgumentException($"{KafkaOptions.Section}:BootstrapServers is empty; forwarding is off.", nameof(options));
        _options = options;
        _time = time;
        _logger = logger;
        _durableTimeout = TimeSpan.FromMilliseconds(options.DurableTimeoutMs);
        foreach (var rule in options.Rules)
        {
            // a later rule with the same filter never matches first
            if (rule is null) continue;
            var route = new Route(rule);
            if (_routes.TryAdd(rule.Filter, route)) _routeList.Add(route);
        }
        _defaultRoute = options.DefaultTopic.Length == 0
            ? null
            : new Route(new KafkaRule { Filter = "#", Topic = options.DefaultTopic, Mode = options.DefaultMode, Key = options.DefaultKey });

        var config = new ProducerConfig
        {
            BootstrapServers = options.BootstrapServers,
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = options.LingerMs,
            BatchSize = options.BatchSizeBytes,
            CompressionType = Enum.Parse<CompressionType>(options.Compression, ignoreCase: true),
            MessageTimeoutMs = options.MessageTimeoutMs,
            // Room for the whole async buffer plus durable records in flight, so librdkafka's queue never refuses first.
            QueueBufferingMaxMessages = (int)Math.Min(int.MaxValue, (long)options.AsyncBufferMessages + 100_000),
            ClientId = "iotrealtime-broker",
            // librdkafka backs off up to 10 s by default; durable publishers are refused for as long, so retry sooner.
            ReconnectBackoffMaxMs = 1_000,
            // Delivery handlers read only the outcome; copying key, value and headers back into every report costs
            // CPU on the broker's two cores for nothing.
            DeliveryReportFields = "status",
        };
        _producer = new ProducerBuilder<byte[]?, byte[]>(config)
            .SetErrorHandler((_, e) => KafkaLog.ProducerError(_logger, e.Code.ToString(), e.Reason))
            .SetLogHandler((_, m) => KafkaLog.Librdkafka(_logger, m.Facility, m.Message))
            .Build();
        KafkaLog.Started(_logger, options.BootstrapServers, options.Rules.Count, options.DefaultTopic);
    }

    /// <summary>Records Kafka confirmed.</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    /// <summary>Records Kafka did not take (delivery error, or librdkafka refused to queue them).</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Async-mode records queued and not yet confirmed or failed.</summary>
    public long Buffered => Interlocked.Read(ref _buffered);

    /// <summary>Async-mode messages dropped because the buffer was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Durable publishes refused (MQTT 5: reason 0x80; 3.1.1: connection closed) because Kafka did not confirm within DurableTimeoutMs.</summary>
    public long DurableTimeouts => Interlocked.Read(ref _durableTimeouts);

    Route? RouteFor(string mqttTopic)
    {
        if (_routes.TryFirstMatch(mqttTopic, out var route)) return route;
        // The default rule is "#", which (per MQTT) never takes $-topics such as $SYS.
        return _defaultRoute is not null && TopicFilter.Matches(_defaultRoute.Rule.Filter, mqttTopic) ? _defaultRoute : null;
    }

    /// <summary>Produces one record outside the rules (presence events); <paramref name="delivered"/> sees the report.</summary>
    internal void ProduceRaw(string topic, Message<byte[]?, byte[]> record, Action<DeliveryReport<byte[]?, byte[]>> delivered) =>
        _producer.Produce(topic, record, delivered);

    public ValueTask<AcceptResult> AcceptAsync(MqttMessage message, CancellationToken cancellationToken)
    {
        if (RouteFor(message.Topic) is not { } route) return new(AcceptResult.Accepted);
        var rule = route.Rule;
        var record = KafkaRecordFormat.Encode(message, rule.Key);

        if (rule.Mode == KafkaForwardMode.Durable && message.QoS != MqttQualityOfServiceLevel.AtMostOnce)
        {
            return ProduceDurableAsync(route, record, message.Topic, cancellationToken);
        }

        if (Interlocked.Increment(ref _buffered) > _options.AsyncBufferMessages)
        {
            Interlocked.Decrement(ref _buffered);
            return new(Overflow(route, message));
        }
        Interlocked.Increment(ref route.Buffered);
        var started = _time.GetTimestamp();
        try
        {
            _producer.Produce(rule.Topic, record, report => OnAsyncDelivered(route, started, report));
        }
        catch (ProduceException<byte[]?, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
        {
            Interlocked.Decrement(ref _buffered);
            Interlocked.Decrement(ref route.Buffered);
            return new(Overflow(route, message));
        }
        catch (Exception e) when (e is KafkaException or ObjectDisposedException)
        {
            Interlocked.Decrement(ref _buffered);
            Interlocked.Decrement(ref route.Buffered);
            CountFailed(route, e.Message);
            return new(message.QoS == MqttQualityOfServiceLevel.AtMostOnce ? AcceptResult.Accepted : AcceptResult.ServerBusy);
        }
        return new(AcceptResult.Accepted);
    }

    async ValueTask<AcceptResult> ProduceDurableAsync(Route route, Message<byte[]?, byte[]> record, string mqttTopic, CancellationToken cancellationToken)
    {
        var delivered = new TaskCompletionSource<Error>(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = _time.GetTimestamp();
        try
        {
            _producer.Produce(route.Rule.Topic, record, report =>
            {
                if (report.Error.IsError) CountFailed(route, report.Error.Reason);
                else CountForwarded(route, started);
                delivered.TrySetResult(report.Error);
            });
        }
        catch (Exception e) when (e is KafkaException or ObjectDisposedException)
        {
            CountFailed(route, e.Message);
            return AcceptResult.ServerBusy;
        }

        try
        {
            var error = await delivered.Task.WaitAsync(_durableTimeout, _time, cancellationToken).ConfigureAwait(false);
            return error.IsError ? AcceptResult.ServerBusy : AcceptResult.Accepted;
        }
        catch (TimeoutException)
        {
            // The record may still reach Kafka later; the publisher's retry then makes a duplicate, never a loss.
            Interlocked.Increment(ref _durableTimeouts);
            Interlocked.Increment(ref route.DurableTimeouts);
            KafkaLog.DurableTimeout(_logger, mqttTopic, _options.DurableTimeoutMs);
            return AcceptResult.ServerBusy;
        }
    }

    AcceptResult Overflow(Route route, MqttMessage message)
    {
        KafkaLog.BufferFull(_logger, _options.AsyncBufferMessages, _options.AsyncOverflow, message.Topic);
        if (_options.AsyncOverflow == KafkaOverflowPolicy.Refuse && message.QoS != MqttQualityOfServiceLevel.AtMostOnce)
        {
            return AcceptResult.QuotaExceeded;
        }
        Interlocked.Increment(ref _dropped);
        Interlocked.Increment(ref route.Dropped);
        return AcceptResult.Accepted;
    }

    void OnAsyncDelivered(Route route, long started, DeliveryReport<byte[]?, byte[]> report)
    {
        Interlocked.Decrement(ref _buffered);
        Interlocked.Decrement(ref route.Buffered);
        if (report.Error.IsError) CountFailed(route, report.Error.Reason);
        else CountForwarded(route, started);
    }

    void CountForwarded(Route route, long started)
    {
        Interlocked.Increment(ref _forwarded);
        Interlocked.Increment(ref route.Forwarded);
        _latency.Record(_time.GetElapsedTime(started));
    }

    void CountFailed(Route route, string reason)
    {
        Interlocked.Increment(ref _failed);
        Interlocked.Increment(ref route.Failed);
        KafkaLog.DeliveryFailed(_logger, route.Rule.Topic, reason);
    }

    /// <summary>
    /// Families iotrealtime_kafka_*: per rule (labels rule = its MQTT filter, topic = its Kafka topic; the default topic
    /// is rule "#") forwarded, failed, dropped, durable timeouts and buffered, and the produce→delivery-report latency.
    /// </summary>
    public void WriteMetrics(StringBuilder w)
    {
        ArgumentNullException.ThrowIfNull(w);
        // A rule whose filter repeats an earlier one never matches; leaving it out keeps every series unique.
        var routes = _routeList.Append(_defaultRoute).OfType<Route>().DistinctBy(r => r.Rule.Filter).ToArray();
        PerRule(w, routes, "iotrealtime_kafka_forwarded_total", "counter", "Records Kafka confirmed, by forwarding rule.", r => r.Forwarded);
        PerRule(w, routes, "iotrealtime_kafka_failed_total", "counter", "Records Kafka did not take (delivery error or refused by the producer), by rule.", r => r.Failed);
        PerRule(w, routes, "iotrealtime_kafka_dropped_total", "counter", "Async messages dropped because the buffer was full (AsyncOverflow=Drop), by rule.", r => r.Dropped);
        PerRule(w, routes, "iotrealtime_kafka_durable_timeouts_total", "counter", "Durable publishes refused because Kafka did not confirm in time, by rule.", r => r.DurableTimeouts);
        PerRule(w, routes, "iotrealtime_kafka_buffered", "gauge", "Async records queued and not yet confirmed, by rule.", r => r.Buffered);
        PrometheusText.Family(w, "iotrealtime_kafka_buffer_capacity", "gauge", "Kafka:AsyncBufferMessages, the async buffer's bound.", _options.AsyncBufferMessages);
        PrometheusText.Histogram(w, "iotrealtime_kafka_produce_latency_seconds", "Time from handing a record to the producer to Kafka's delivery report.", _latency);
    }

    static void PerRule(StringBuilder w, Route[] routes, string name, string type, string help, Func<Route, long> value)
    {
        PrometheusText.Header(w, name, type, help);
        foreach (var route in routes)
        {
            PrometheusText.Sample(w, name, [("rule", route.Rule.Filter), ("topic", route.Rule.Topic)], value(route));
        }
    }

    /// <summary>One rule and its counters.</summary>
    sealed class Route(KafkaRule rule)
    {
        public readonly KafkaRule Rule = rule;
        public long Forwarded;
        public long Failed;
        public long Buffered;
        public long Dropped;
        public long DurableTimeouts;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        var left = await Task.Run(() => _producer.Flush(TimeSpan.FromMilliseconds(_options.ShutdownFlushMs))).ConfigureAwait(false);
        if (left > 0) KafkaLog.UnflushedAtShutdown(_logger, left, _options.ShutdownFlushMs);
        _producer.Dispose();
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"Kafka forwarder: {Forwarded} forwarded, {Failed} failed, {Buffered} buffered, {Dropped} dropped");
}
