using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Kafka;

static partial class KafkaLog
{
    [LoggerMessage(5000, LogLevel.Information, "Forwarding to Kafka at {BootstrapServers}: {RuleCount} rules, default topic '{DefaultTopic}'")]
    public static partial void Started(ILogger logger, string bootstrapServers, int ruleCount, string defaultTopic);

    [LoggerMessage(5001, LogLevel.Warning, "Kafka producer error {Code}: {Reason}")]
    public static partial void ProducerError(ILogger logger, string code, string reason);

    [LoggerMessage(5002, LogLevel.Warning, "Kafka delivery to {KafkaTopic} failed: {Reason}")]
    public static partial void DeliveryFailed(ILogger logger, string kafkaTopic, string reason);

    [LoggerMessage(5003, LogLevel.Warning, "Kafka async buffer full ({Limit} messages): {Policy} applied to a message on {MqttTopic}")]
    public static partial void BufferFull(ILogger logger, int limit, KafkaOverflowPolicy policy, string mqttTopic);

    [LoggerMessage(5004, LogLevel.Warning, "Kafka did not confirm a durable message on {MqttTopic} within {TimeoutMs} ms; the publisher is told the server is busy")]
    public static partial void DurableTimeout(ILogger logger, string mqttTopic, int timeoutMs);

    [LoggerMessage(5005, LogLevel.Warning, "{Count} Kafka records were still unconfirmed after waiting {TimeoutMs} ms at shutdown")]
    public static partial void UnflushedAtShutdown(ILogger logger, int count, int timeoutMs);

    [LoggerMessage(5006, LogLevel.Debug, "librdkafka {Facility}: {Message}")]
    public static partial void Librdkafka(ILogger logger, string facility, string message);
}
