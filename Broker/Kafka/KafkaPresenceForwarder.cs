using System.Buffers;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Hosting.Metrics;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Kafka;

/// <summary>
/// Produces the broker's presence events (connected, disconnected, will published) to <see cref="KafkaOptions.PresenceTopic"/>
/// as JSON records keyed by client id, so one client's events stay in order on one partition. Reads its own bounded
/// presence subscription (oldest events dropped when Kafka falls far behind, counted) and shares the forwarder's producer.
/// Starts on construction; dispose to stop.
/// </summary>
public sealed class KafkaPresenceForwarder : IMetricsSource, IAsyncDisposable
{
    /// <summary>Events held while the producer is slow, before the oldest are dropped.</summary>
    public const int BufferEvents = 10_000;

    /// <summary>Header naming the event kind: connected, disconnected or will.</summary>
    public const string EventHeader = "presence.event";

    readonly KafkaForwarder _forwarder;
    readonly string _topic;
    readonly ILogger _logger;
    readonly PresenceSubscription _subscription;
    readonly Task _loop;
    readonly Action<DeliveryReport<byte[]?, byte[]>> _delivered;
    long _produced;
    long _failed;
    long _pending;
    int _disposed;

    public KafkaPresenceForwarder(MqttBroker broker, KafkaForwarder forwarder, KafkaOptions options, ILogger<KafkaPresenceForwarder> logger)
    {
        ArgumentNullException.ThrowIfNull(broker);
        ArgumentNullException.ThrowIfNull(options);
        _topic = string.IsNullOrEmpty(options.PresenceTopic)
            ? throw new ArgumentException($"{KafkaOptions.Section}:PresenceTopic is empty; presence forwarding is off.", nameof(options))
            : options.PresenceTopic;
        _forwarder = forwarder;
        _logger = logger;
        _delivered = OnDelivered;
        _subscription = broker.SubscribePresence(BufferEvents);
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Events Kafka confirmed.</summary>
    public long Produced => Interlocked.Read(ref _produced);

    /// <summary>Events Kafka did not take.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Events dropped before producing because the buffer was full.</summary>
    public long Dropped => _subscription.Dropped;

    async Task RunAsync()
    {
        // Ends when disposal completes the subscription, after the events already buffered.
        await foreach (var e in _subscription.ReadAllAsync().ConfigureAwait(false))
        {
            var record = new Message<byte[]?, byte[]>
            {
                Key = Encoding.UTF8.GetBytes(e.ClientId),
                Value = ToJson(e),
                Timestamp = new Timestamp(e.At),
                Headers = new Headers { { EventHeader, Encoding.UTF8.GetBytes(EventName(e.Kind)) } },
            };
            Interlocked.Increment(ref _pending);
            try
            {
                _forwarder.ProduceRaw(_topic, record, _delivered);
            }
            catch (Exception ex) when (ex is KafkaException or ObjectDisposedException)
            {
                Interlocked.Decrement(ref _pending);
                Interlocked.Increment(ref _failed);
                KafkaLog.DeliveryFailed(_logger, _topic, ex.Message);
            }
        }
    }

    void OnDelivered(DeliveryReport<byte[]?, byte[]> report)
    {
        Interlocked.Decrement(ref _pending);
        if (report.Error.IsError)
        {
            Interlocked.Increment(ref _failed);
            KafkaLog.DeliveryFailed(_logger, _topic, report.Error.Reason);
        }
        else
        {
            Interlocked.Increment(ref _produced);
        }
    }

    static string EventName(PresenceEventKind kind) => kind switch
    {
        PresenceEventKind.Connected => "connected",
        PresenceEventKind.Disconnected => "disconnected",
        _ => "will",
    };

    /// <summary>{"clientId","event","online","at", then the fields of that kind: username, transport, remote, protocol | reason, clean, takenOver | topic}.</summary>
    public static byte[] ToJson(PresenceEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("clientId", e.ClientId);
            json.WriteString("event", EventName(e.Kind));
            json.WriteBoolean("online", e.Kind == PresenceEventKind.Connected || e.TakenOver == true);
            json.WriteString("at", e.At);
            Optional(json, "username", e.Username);
            Optional(json, "transport", e.Transport);
            Optional(json, "remote", e.RemoteEndPoint);
            Optional(json, "protocol", e.ProtocolVersion);
            Optional(json, "reason", e.Reason);
            if (e.Clean is { } clean) json.WriteBoolean("clean", clean);
            if (e.TakenOver is true) json.WriteBoolean("takenOver", true);
            Optional(json, "topic", e.Topic);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();

        static void Optional(Utf8JsonWriter json, string name, string? value)
        {
            if (value is not null) json.WriteString(name, value);
        }
    }

    public void WriteMetrics(StringBuilder w)
    {
        PrometheusText.Family(w, "iotrealtime_kafka_presence_produced_total", "counter", "Presence events Kafka confirmed.", Produced);
        PrometheusText.Family(w, "iotrealtime_kafka_presence_failed_total", "counter", "Presence events Kafka did not take.", Failed);
        PrometheusText.Family(w, "iotrealtime_kafka_presence_dropped_total", "counter", "Presence events dropped because the presence buffer was full.", Dropped);
        PrometheusText.Family(w, "iotrealtime_kafka_presence_pending", "gauge", "Presence events handed to the producer and not yet confirmed.", Interlocked.Read(ref _pending));
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _subscription.Dispose();
        await _loop.ConfigureAwait(false);
    }
}
