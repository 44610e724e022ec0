using System.Globalization;
using System.Text;
using Confluent.Kafka;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Routing;
using Microsoft.Extensions.Logging;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Kafka;

/// <summary>
/// Forwards every accepted MQTT message to the Kafka topic of the first matching rule. Durable mode completes the
/// accept stage only when Kafka has persisted the record (acks=all, idempotent producer), so a QoS 1/2 acknowledgement
/// never claims success Kafka has not given; async mode accepts at once and counts what it holds in a bounded buffer
/// (librdkafka's own queue, bounded here by <see cref="KafkaOptions.AsyncBufferMessages"/>).
/// </summary>
public sealed class KafkaForwarder : IPublishSink, IAsyncDisposable
{
    static readonly byte[] True = "true"u8.ToArray();
    static readonly byte[] False = "false"u8.ToArray();
    static readonly byte[][] QosValues = ["0"u8.ToArray(), "1"u8.ToArray(), "2"u8.ToArray()];

    readonly KafkaOptions _options;
    readonly ILogger _logger;
    readonly TimeProvider _time;
    readonly IProducer<byte[]?, byte[]> _producer;
    readonly KafkaRule? _defaultRule;
    readonly Action<DeliveryReport<byte[]?, byte[]>> _asyncDelivered;
    readonly TimeSpan _durableTimeout;
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
        _defaultRule = options.DefaultTopic.Length == 0
            ? null
            : new KafkaRule { Filter = "#", Topic = options.DefaultTopic, Mode = options.DefaultMode, Key = options.DefaultKey };
        _asyncDelivered = OnAsyncDelivered;

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

    /// <summary>Durable publishes answered "server busy" because Kafka did not confirm within DurableTimeoutMs.</summary>
    public long DurableTimeouts => Interlocked.Read(ref _durableTimeouts);

    /// <summary>The rule that applies to <paramref name="mqttTopic"/>, or null when it is not forwarded.</summary>
    public KafkaRule? RuleFor(string mqttTopic)
    {
        foreach (var rule in _options.Rules)
        {
            if (TopicValidation.Matches(rule.Filter, mqttTopic)) return rule;
        }
        // The default rule is "#", which (per MQTT) never takes $-topics such as $SYS.
        return _defaultRule is not null && TopicValidation.Matches(_defaultRule.Filter, mqttTopic) ? _defaultRule : null;
    }

    public ValueTask<AcceptResult> AcceptAsync(MqttMessage message, CancellationToken cancellationToken)
    {
        if (RuleFor(message.Topic) is not { } rule) return new(AcceptResult.Accepted);
        var record = ToRecord(message, rule);

        if (rule.Mode == KafkaForwardMode.Durable && message.QoS != MqttQualityOfServiceLevel.AtMostOnce)
        {
            return ProduceDurableAsync(rule, record, message.Topic, cancellationToken);
        }

        if (Interlocked.Increment(ref _buffered) > _options.AsyncBufferMessages)
        {
            Interlocked.Decrement(ref _buffered);
            return new(Overflow(message));
        }
        try
        {
            _producer.Produce(rule.Topic, record, _asyncDelivered);
        }
        catch (ProduceException<byte[]?, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
        {
            Interlocked.Decrement(ref _buffered);
            return new(Overflow(message));
        }
        catch (Exception e) when (e is KafkaException or ObjectDisposedException)
        {
            Interlocked.Decrement(ref _buffered);
            Interlocked.Increment(ref _failed);
            KafkaLog.DeliveryFailed(_logger, rule.Topic, e.Message);
            return new(message.QoS == MqttQualityOfServiceLevel.AtMostOnce ? AcceptResult.Accepted : AcceptResult.ServerBusy);
        }
        return new(AcceptResult.Accepted);
    }

    async ValueTask<AcceptResult> ProduceDurableAsync(KafkaRule rule, Message<byte[]?, byte[]> record, string mqttTopic, CancellationToken cancellationToken)
    {
        var delivered = new TaskCompletionSource<Error>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            _producer.Produce(rule.Topic, record, report =>
            {
                if (report.Error.IsError)
                {
                    Interlocked.Increment(ref _failed);
                    KafkaLog.DeliveryFailed(_logger, rule.Topic, report.Error.Reason);
                }
                else
                {
                    Interlocked.Increment(ref _forwarded);
                }
                delivered.TrySetResult(report.Error);
            });
        }
        catch (Exception e) when (e is KafkaException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _failed);
            KafkaLog.DeliveryFailed(_logger, rule.Topic, e.Message);
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
            KafkaLog.DurableTimeout(_logger, mqttTopic, _options.DurableTimeoutMs);
            return AcceptResult.ServerBusy;
        }
    }

    AcceptResult Overflow(MqttMessage message)
    {
        KafkaLog.BufferFull(_logger, _options.AsyncBufferMessages, _options.AsyncOverflow, message.Topic);
        if (_options.AsyncOverflow == KafkaOverflowPolicy.Refuse && message.QoS != MqttQualityOfServiceLevel.AtMostOnce)
        {
            return AcceptResult.QuotaExceeded;
        }
        Interlocked.Increment(ref _dropped);
        return AcceptResult.Accepted;
    }

    void OnAsyncDelivered(DeliveryReport<byte[]?, byte[]> report)
    {
        Interlocked.Decrement(ref _buffered);
        if (report.Error.IsError)
        {
            Interlocked.Increment(ref _failed);
            KafkaLog.DeliveryFailed(_logger, report.Topic, report.Error.Reason);
        }
        else
        {
            Interlocked.Increment(ref _forwarded);
        }
    }

    static Message<byte[]?, byte[]> ToRecord(MqttMessage message, KafkaRule rule)
    {
        var headers = new Headers
        {
            { "mqtt.topic", Encoding.UTF8.GetBytes(message.Topic) },
            { "mqtt.qos", QosValues[(int)message.QoS] },
            { "mqtt.retain", message.Retain ? True : False },
        };
        if (message.PublisherClientId is { } clientId) headers.Add("mqtt.client_id", Encoding.UTF8.GetBytes(clientId));
        if (message.ContentType is { } contentType) headers.Add("mqtt.content_type", Encoding.UTF8.GetBytes(contentType));
        if (message.UserProperties is { } properties)
        {
            foreach (var property in properties) headers.Add(property.Name, property.ValueBuffer.ToArray());
        }

        var key = rule.Key == KafkaKeySource.Topic ? message.Topic : message.PublisherClientId;
        return new Message<byte[]?, byte[]>
        {
            Key = key is null ? null : Encoding.UTF8.GetBytes(key),
            // A copy: the payload buffer belongs to the engine, and librdkafka copies again only at Produce.
            Value = message.Payload.ToArray(),
            Headers = headers,
            Timestamp = new Timestamp(message.ReceivedAt),
        };
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
