namespace IotRealtime.Telemetry.Sinks;

/// <summary>One numeric value a device reported: <see cref="Metric"/> is the JSON path of the leaf, joined with '.'.</summary>
public readonly record struct Reading(DateTimeOffset Time, string Device, string Metric, double Value);

/// <summary>A Kafka record that could not be decoded into readings, kept with the reason instead of blocking the stream.</summary>
public sealed record ParkedPayload(string Topic, int Partition, long Offset, DateTimeOffset Time, string? Device, string? MqttTopic, byte[] Payload, string Reason);

/// <summary>The Kafka offset to resume from on <see cref="Topic"/>/<see cref="Partition"/>: one past the last record stored.</summary>
public readonly record struct SourceOffset(string Topic, int Partition, long NextOffset);

/// <summary>What one sink write stores atomically: readings, parked payloads and the offsets they advance to.</summary>
public sealed class ReadingBatch
{
    public List<Reading> Readings { get; } = [];

    public List<ParkedPayload> Parked { get; } = [];

    public List<SourceOffset> Offsets { get; } = [];
}

/// <summary>
/// Storage for telemetry. Exactly once: the consumer seeks to the offsets <see cref="LoadOffsetsAsync"/> returns (the
/// sink's own record is the truth) and commits to Kafka only after <see cref="WriteAsync"/> returned (advisory).
/// </summary>
public interface ITelemetrySink : IAsyncDisposable
{
    string Name { get; }

    /// <summary>Creates schema and partitions; idempotent.</summary>
    Task InitializeAsync(CancellationToken ct);

    /// <summary>
    /// Stores the batch atomically with the offsets it carries; durable on return. Idempotent: a batch whose offsets are
    /// at or below what the sink already stored is skipped.
    /// </summary>
    Task WriteAsync(ReadingBatch batch, CancellationToken ct);

    /// <summary>The stored next offsets of <paramref name="consumerGroup"/> for partitions of <paramref name="topics"/>.</summary>
    Task<IReadOnlyList<SourceOffset>> LoadOffsetsAsync(string consumerGroup, IReadOnlyCollection<string> topics, CancellationToken ct);
}
