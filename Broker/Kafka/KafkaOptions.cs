using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Hosting.Kafka;

namespace IotRealtime.Broker.Kafka;

/// <summary>How an MQTT publisher's acknowledgement relates to Kafka.</summary>
public enum KafkaForwardMode
{
    /// <summary>Acknowledged at once; produced in the background through a bounded buffer.</summary>
    Async,
    /// <summary>The QoS 1/2 acknowledgement waits until Kafka has persisted the record (acks=all).</summary>
    Durable,
}

/// <summary>What becomes the Kafka record key (and so picks the partition).</summary>
public enum KafkaKeySource
{
    /// <summary>The publisher's client id: one device's messages stay in order on one partition.</summary>
    ClientId,
    /// <summary>The MQTT topic: one topic's messages stay in order on one partition.</summary>
    Topic,
}

/// <summary>What async mode does when its buffer is full.</summary>
public enum KafkaOverflowPolicy
{
    /// <summary>Drop the new message (counted in <see cref="KafkaForwarder.Dropped"/>); the publisher still gets success.</summary>
    Drop,
    /// <summary>Refuse the publish: MQTT 5 0x97 quota exceeded.</summary>
    Refuse,
}

/// <summary>Maps MQTT topics matching <see cref="Filter"/> to one Kafka topic.</summary>
public sealed class KafkaRule
{
    /// <summary>An MQTT topic filter (wildcards allowed).</summary>
    public string Filter { get; set; } = "#";

    /// <summary>The Kafka topic the matching messages go to.</summary>
    public string Topic { get; set; } = string.Empty;

    public KafkaForwardMode Mode { get; set; } = KafkaForwardMode.Async;

    public KafkaKeySource Key { get; set; } = KafkaKeySource.ClientId;
}

/// <summary>Section <c>Kafka</c>: forwarding of accepted MQTT messages into Kafka.</summary>
public sealed class KafkaOptions
{
    public const string Section = "Kafka";

    /// <summary>Kafka bootstrap servers (host:port,...); empty turns forwarding off.</summary>
    public string BootstrapServers { get; set; } = string.Empty;

    /// <summary>Rules tried in order; the first whose filter matches the MQTT topic wins.</summary>
    public List<KafkaRule> Rules { get; set; } = [];

    /// <summary>The Kafka topic for messages no rule matches; empty means they are not forwarded.</summary>
    public string DefaultTopic { get; set; } = "mqtt";

    public KafkaForwardMode DefaultMode { get; set; } = KafkaForwardMode.Async;

    public KafkaKeySource DefaultKey { get; set; } = KafkaKeySource.ClientId;

    /// <summary>Messages async mode holds while Kafka is slow or down, before <see cref="AsyncOverflow"/> applies.</summary>
    public int AsyncBufferMessages { get; set; } = 100_000;

    public KafkaOverflowPolicy AsyncOverflow { get; set; } = KafkaOverflowPolicy.Drop;

    /// <summary>How long a durable publish waits for Kafka before the client is told the server is busy.</summary>
    public int DurableTimeoutMs { get; set; } = 10_000;

    /// <summary>How long the producer batches records (linger.ms): 5 ms trades a little latency for far fewer requests.</summary>
    public int LingerMs { get; set; } = 5;

    /// <summary>Producer batch size in bytes (batch.size).</summary>
    public int BatchSizeBytes { get; set; } = 1_000_000;

    /// <summary>none, gzip, snappy, lz4 or zstd; lz4 compresses device telemetry well at little CPU cost.</summary>
    public string Compression { get; set; } = "lz4";

    /// <summary>How long the producer keeps retrying a record before its delivery counts as failed (message.timeout.ms).</summary>
    public int MessageTimeoutMs { get; set; } = 300_000;

    /// <summary>How long disposal waits for buffered records to reach Kafka.</summary>
    public int ShutdownFlushMs { get; set; } = 5_000;

    /// <summary>Kafka topic for presence events (connected, disconnected, will) as JSON keyed by client id; unset: not forwarded.</summary>
    public string? PresenceTopic { get; set; }

    public bool Enabled => !string.IsNullOrWhiteSpace(BootstrapServers);

    /// <summary>
    /// The Kafka topics where messages on topics matching <paramref name="mqttFilter"/> may have been forwarded: every
    /// rule whose filter overlaps it, and the default topic. A reader still checks each record's mqtt.topic header.
    /// </summary>
    public IReadOnlyList<string> KafkaTopicsFor(string mqttFilter)
    {
        ArgumentNullException.ThrowIfNull(mqttFilter);
        var topics = new List<string>();
        foreach (var rule in Rules)
        {
            if (rule is not null && TopicFilterRelation.Overlaps(rule.Filter, mqttFilter) && !topics.Contains(rule.Topic)) topics.Add(rule.Topic);
        }
        if (DefaultTopic.Length > 0 && TopicFilterRelation.Overlaps("#", mqttFilter) && !topics.Contains(DefaultTopic)) topics.Add(DefaultTopic);
        return topics;
    }

    static readonly string[] Compressions = ["none", "gzip", "snappy", "lz4", "zstd"];

    /// <summary>Each problem names its key.</summary>
    public IEnumerable<string> Validate()
    {
        for (var i = 0; i < Rules.Count; i++)
        {
            var rule = Rules[i];
            var key = $"{Section}:Rules:{i}";
            if (rule is null) continue;
            if (string.IsNullOrEmpty(rule.Filter) || !TopicValidation.IsValidTopicFilter(rule.Filter))
            {
                yield return $"{key}:Filter: '{rule.Filter}' is not a valid MQTT topic filter.";
            }
            if (!KafkaTopicName.IsValid(rule.Topic))
            {
                yield return $"{key}:Topic: '{rule.Topic}' is not a valid Kafka topic ({KafkaTopicName.Rule}).";
            }
        }
        if (DefaultTopic.Length > 0 && !KafkaTopicName.IsValid(DefaultTopic))
        {
            yield return $"{Section}:DefaultTopic: '{DefaultTopic}' is not a valid Kafka topic ({KafkaTopicName.Rule}; empty forwards only rule matches).";
        }
        if (!string.IsNullOrEmpty(PresenceTopic) && !KafkaTopicName.IsValid(PresenceTopic))
        {
            yield return $"{Section}:PresenceTopic: '{PresenceTopic}' is not a valid Kafka topic.";
        }
        if (AsyncBufferMessages < 1) yield return $"{Section}:AsyncBufferMessages must be at least 1 (got {AsyncBufferMessages}).";
        if (DurableTimeoutMs < 1) yield return $"{Section}:DurableTimeoutMs must be at least 1 (got {DurableTimeoutMs}).";
        if (MessageTimeoutMs < 1) yield return $"{Section}:MessageTimeoutMs must be at least 1 (got {MessageTimeoutMs}).";
        if (ShutdownFlushMs < 0) yield return $"{Section}:ShutdownFlushMs must not be negative (got {ShutdownFlushMs}).";
        if (LingerMs < 0) yield return $"{Section}:LingerMs must not be negative (got {LingerMs}).";
        if (BatchSizeBytes < 1) yield return $"{Section}:BatchSizeBytes must be at least 1 (got {BatchSizeBytes}).";
        if (!Compressions.Contains(Compression, StringComparer.OrdinalIgnoreCase))
        {
            yield return $"{Section}:Compression: '{Compression}' is not valid; expected one of {string.Join(", ", Compressions)}.";
        }
    }
}
