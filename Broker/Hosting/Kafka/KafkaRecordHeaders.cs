namespace IotRealtime.Hosting.Kafka;

/// <summary>
/// The header names of a Kafka record in the broker's format (written by <c>KafkaRecordFormat</c> in Broker/Kafka),
/// here so that a reader without the broker's Kafka library (telemetry) uses the same names.
/// </summary>
public static class KafkaRecordHeaders
{
    public const string Topic = "mqtt.topic";
    public const string Qos = "mqtt.qos";
    public const string Retain = "mqtt.retain";
    public const string ClientId = "mqtt.client_id";
    public const string ContentType = "mqtt.content_type";

    /// <summary>Headers in this namespace are the forwarder's own; all others are user properties.</summary>
    public const string Prefix = "mqtt.";
}
