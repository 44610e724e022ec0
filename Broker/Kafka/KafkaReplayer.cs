using Confluent.Kafka;

namespace IotRealtime.Broker.Kafka;

/// <summary>
/// Reads MQTT messages back out of Kafka with their positions: a bounded range of one or more topics, from a start
/// (<see cref="ReplayFrom"/>) to the high watermarks taken when the replay opens, a time, or a count. Uses assign()
/// (no consumer group, nothing committed), so replays never disturb each other or the telemetry consumers.
/// </summary>
public sealed class KafkaReplayer(string bootstrapServers)
{
    /// <summary>How long a metadata or watermark request, or a wait for the next record, may take before the replay fails.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public string BootstrapServers { get; } = string.IsNullOrWhiteSpace(bootstrapServers)
        ? throw new ArgumentException("Kafka bootstrap servers are empty.", nameof(bootstrapServers))
        : bootstrapServers;

    /// <summary>Resolves topics, partitions, start and end offsets; the returned replay reads the records.</summary>
    /// <exception cref="ArgumentException">A topic does not exist, or the request names no topic.</exception>
    /// <exception cref="KafkaHistoryGapException">A start position is older than what Kafka still retains.</exception>
    /// <exception cref="KafkaException">Kafka could not be reached within <see cref="RequestTimeout"/>.</exception>
    public Task<KafkaReplay> OpenAsync(ReplayRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Task.Run(() => KafkaReplay.Open(this, request, cancellationToken), cancellationToken);
    }

    /// <summary><see cref="OpenAsync"/> and <see cref="KafkaReplay.ReadAllAsync"/> in one.</summary>
    public async IAsyncEnumerable<KafkaRecord> ReadAsync(ReplayRequest request, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var replay = await OpenAsync(request, cancellationToken).ConfigureAwait(false);
        await using (replay.ConfigureAwait(false))
        {
            await foreach (var record in replay.ReadAllAsync(cancellationToken).ConfigureAwait(false)) yield return record;
        }
    }

    internal IConsumer<byte[]?, byte[]> CreateConsumer() => new ConsumerBuilder<byte[]?, byte[]>(new ConsumerConfig
    {
        BootstrapServers = BootstrapServers,
        // Confluent.Kafka refuses a consumer without group.id; with assign() it never joins the group or commits.
        GroupId = "iotrealtime-replay",
        EnableAutoCommit = false,
        EnableAutoOffsetStore = false,
        ClientId = "iotrealtime-replay",
        ReconnectBackoffMaxMs = 1_000,
    }).SetLogHandler((_, _) => { }).SetErrorHandler((_, _) => { }).Build();
}
