using Confluent.Kafka;
using IotRealtime.Hosting.Kafka;
using IotRealtime.Telemetry.Sinks;

namespace IotRealtime.Telemetry.Ingest;

/// <summary>
/// Reads one Kafka record in the broker's format (KafkaRecordFormat: value = MQTT payload, headers named in
/// <see cref="KafkaRecordHeaders"/>; timestamp = broker receive time) into readings, or a parked payload with the reason.
/// </summary>
sealed class RecordDecoder(TimeProvider time)
{
    readonly StringPool _names = new();
    readonly PayloadDecoder _payloads = new(new StringPool());

    /// <summary>Appends the record's readings to <paramref name="readings"/>; returns a parked payload instead when it has none.</summary>
    public ParkedPayload? Decode(ConsumeResult<byte[]?, byte[]?> record, List<Reading> readings)
    {
        var message = record.Message;
        var at = message.Timestamp.Type == TimestampType.NotAvailable ? time.GetUtcNow() : DateTimeOffset.FromUnixTimeMilliseconds(message.Timestamp.UnixTimestampMs);
        string? mqttTopic = null;
        string? device = null;
        if (message.Headers is { } headers)
        {
            if (headers.TryGetLastBytes(KafkaRecordHeaders.Topic, out var topic)) mqttTopic = _names.Get(topic);
            if (headers.TryGetLastBytes(KafkaRecordHeaders.ClientId, out var clientId) && clientId.Length > 0) device = _names.Get(clientId);
        }
        device ??= DeviceFromTopic(mqttTopic) ?? (message.Key is { Length: > 0 } key ? _names.Get(key) : null);

        var payload = message.Value ?? [];
        string? reason;
        if (device is null) reason = "no device: no mqtt.client_id header, MQTT topic of one level and no record key";
        else reason = _payloads.Decode(payload, at, device, readings);
        return reason is null ? null : new ParkedPayload(record.Topic, record.Partition.Value, record.Offset.Value, at, device, mqttTopic, payload, reason);
    }

    /// <summary>The second level of the MQTT topic (devices/&lt;id&gt;/...).</summary>
    string? DeviceFromTopic(string? topic)
    {
        if (topic is null) return null;
        var first = topic.IndexOf('/', StringComparison.Ordinal);
        if (first < 0) return null;
        var rest = topic.AsSpan(first + 1);
        var second = rest.IndexOf('/');
        var level = second < 0 ? rest : rest[..second];
        return level.IsEmpty ? null : _names.Get(level);
    }
}
