using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Confluent.Kafka;
using IotRealtime.Broker.Engine;
using IotRealtime.Hosting.Kafka;

namespace IotRealtime.Broker.Kafka;

/// <summary>
/// The one definition of how an MQTT message is laid out in a Kafka record, shared by the forwarder (writes), the
/// replayer, bridges and telemetry (read). Value = the payload bytes; key = client id or MQTT topic (per rule);
/// timestamp = CreateTime, the moment the broker received the message; headers named in <see cref="KafkaRecordHeaders"/>;
/// every other header is an MQTT 5 user property with its own name.
/// </summary>
public static class KafkaRecordFormat
{
    static readonly byte[] True = "true"u8.ToArray();
    static readonly byte[] False = "false"u8.ToArray();
    static readonly byte[][] QosValues = ["0"u8.ToArray(), "1"u8.ToArray(), "2"u8.ToArray()];

    /// <summary>The record the forwarder produces for <paramref name="message"/>, keyed as <paramref name="key"/> says.</summary>
    public static Message<byte[]?, byte[]> Encode(MqttMessage message, KafkaKeySource key)
    {
        ArgumentNullException.ThrowIfNull(message);
        var headers = new Headers
        {
            { KafkaRecordHeaders.Topic, Encoding.UTF8.GetBytes(message.Topic) },
            { KafkaRecordHeaders.Qos, QosValues[(int)message.QoS] },
            { KafkaRecordHeaders.Retain, message.Retain ? True : False },
        };
        if (message.PublisherClientId is { } clientId) headers.Add(KafkaRecordHeaders.ClientId, Encoding.UTF8.GetBytes(clientId));
        if (message.ContentType is { } contentType) headers.Add(KafkaRecordHeaders.ContentType, Encoding.UTF8.GetBytes(contentType));
        if (message.UserProperties is { } properties)
        {
            foreach (var property in properties) headers.Add(property.Name, property.ValueBuffer.ToArray());
        }

        var keyText = key == KafkaKeySource.Topic ? message.Topic : message.PublisherClientId;
        return new Message<byte[]?, byte[]>
        {
            Key = keyText is null ? null : Encoding.UTF8.GetBytes(keyText),
            // A copy: the payload buffer belongs to the engine, and librdkafka copies again only at Produce.
            Value = message.Payload.ToArray(),
            Headers = headers,
            Timestamp = new Timestamp(message.ReceivedAt),
        };
    }

    /// <summary>Reads a consumed record back into MQTT terms. Missing or odd headers give defaults (QoS 0, not retained).</summary>
    public static KafkaRecord Decode(ConsumeResult<byte[]?, byte[]> result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var message = result.Message;
        string? topic = null, clientId = null, contentType = null;
        var qos = 0;
        var retain = false;
        List<KeyValuePair<string, byte[]>>? properties = null;
        if (message.Headers is { } headers)
        {
            foreach (var header in headers)
            {
                var value = header.GetValueBytes() ?? [];
                switch (header.Key)
                {
                    case KafkaRecordHeaders.Topic: topic = Encoding.UTF8.GetString(value); break;
                    case KafkaRecordHeaders.Qos: qos = value is [(byte)'1'] ? 1 : value is [(byte)'2'] ? 2 : 0; break;
                    case KafkaRecordHeaders.Retain: retain = value.AsSpan().SequenceEqual(True); break;
                    case KafkaRecordHeaders.ClientId: clientId = Encoding.UTF8.GetString(value); break;
                    case KafkaRecordHeaders.ContentType: contentType = Encoding.UTF8.GetString(value); break;
                    default:
                        if (!header.Key.StartsWith(KafkaRecordHeaders.Prefix, StringComparison.Ordinal)) (properties ??= []).Add(new(header.Key, value));
                        break;
                }
            }
        }
        var timestamp = message.Timestamp.Type == TimestampType.NotAvailable
            ? DateTimeOffset.UnixEpoch
            : DateTimeOffset.FromUnixTimeMilliseconds(message.Timestamp.UnixTimestampMs);
        return new KafkaRecord(new KafkaPosition(result.Topic, result.Partition.Value, result.Offset.Value), topic, message.Value ?? [], qos, retain,
            clientId, contentType, timestamp)
        {
            Key = message.Key,
            UserProperties = (IReadOnlyList<KeyValuePair<string, byte[]>>?)properties ?? [],
        };
    }

    /// <summary>
    /// The JSON object replay speaks (NDJSON lines, SSE data): position, topic, ts (ISO 8601 UTC, ms), qos, retain,
    /// clientId, payload, enc ("utf8" when the payload is valid UTF-8 text, else "base64").
    /// </summary>
    public static void WriteJson(Utf8JsonWriter json, KafkaRecord record)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(record);
        json.WriteStartObject();
        json.WriteString("position", record.Position.ToString());
        if (record.Topic is null) json.WriteNull("topic");
        else json.WriteString("topic", record.Topic);
        json.WriteString("ts", record.Timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        json.WriteNumber("qos", record.QoS);
        json.WriteBoolean("retain", record.Retain);
        if (record.ClientId is null) json.WriteNull("clientId");
        else json.WriteString("clientId", record.ClientId);
        if (Utf8.IsValid(record.Payload))
        {
            json.WriteString("payload", Encoding.UTF8.GetString(record.Payload));
            json.WriteString("enc", "utf8");
        }
        else
        {
            json.WriteBase64String("payload", record.Payload);
            json.WriteString("enc", "base64");
        }
        json.WriteEndObject();
    }

    /// <summary><see cref="WriteJson"/> as UTF-8 bytes, without a line end.</summary>
    public static byte[] ToJson(KafkaRecord record)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            WriteJson(json, record);
        }
        return buffer.WrittenSpan.ToArray();
    }
}
