namespace IotRealtime.Broker.Kafka;

/// <summary>
/// An MQTT message as the forwarder wrote it to Kafka, decoded by <see cref="KafkaRecordFormat.Decode"/>.
/// <see cref="Topic"/> is null for a record some other producer wrote without the mqtt.topic header.
/// </summary>
public sealed record KafkaRecord(
    KafkaPosition Position,
    string? Topic,
    byte[] Payload,
    int QoS,
    bool Retain,
    string? ClientId,
    string? ContentType,
    DateTimeOffset Timestamp)
{
    /// <summary>The record key (client id or MQTT topic, by the rule's Key).</summary>
    public byte[]? Key { get; init; }

    /// <summary>MQTT 5 user properties, in order (every header outside the mqtt. namespace).</summary>
    public IReadOnlyList<KeyValuePair<string, byte[]>> UserProperties { get; init; } = [];
}
