namespace IotRealtime.Broker.Kafka;

/// <summary>Where a replay starts in each partition.</summary>
public sealed class ReplayFrom
{
    ReplayFrom(ReplayFromKind kind, long offset = 0, IReadOnlyList<KafkaPosition>? positions = null, DateTimeOffset time = default)
    {
        Kind = kind;
        Offset = offset;
        Positions = positions ?? [];
        Time = time;
    }

    public ReplayFromKind Kind { get; }

    /// <summary><see cref="ReplayFromKind.Offset"/>: the offset every partition starts at.</summary>
    public long Offset { get; }

    /// <summary><see cref="ReplayFromKind.At"/> and <see cref="ReplayFromKind.After"/>: one position per partition.</summary>
    public IReadOnlyList<KafkaPosition> Positions { get; }

    /// <summary><see cref="ReplayFromKind.Time"/>: the first record at or after this timestamp.</summary>
    public DateTimeOffset Time { get; }

    /// <summary>The oldest record each partition still holds.</summary>
    public static ReplayFrom Earliest { get; } = new(ReplayFromKind.Earliest);

    public static ReplayFrom FromOffset(long offset) => new(ReplayFromKind.Offset, offset: offset >= 0 ? offset : throw new ArgumentOutOfRangeException(nameof(offset), offset, "An offset is 0 or more."));

    /// <summary>Starting with the records at <paramref name="positions"/>; partitions not listed start at their earliest record.</summary>
    public static ReplayFrom At(IReadOnlyList<KafkaPosition> positions) => new(ReplayFromKind.At, positions: NonEmpty(positions));

    /// <summary>
    /// Resuming: starting just after the records at <paramref name="positions"/> (the last ones a reader saw), so nothing
    /// is read twice; partitions not listed start at their earliest record, so nothing is skipped.
    /// </summary>
    public static ReplayFrom After(IReadOnlyList<KafkaPosition> positions) => new(ReplayFromKind.After, positions: NonEmpty(positions));

    public static ReplayFrom FromTime(DateTimeOffset time) => new(ReplayFromKind.Time, time: time);

    static IReadOnlyList<KafkaPosition> NonEmpty(IReadOnlyList<KafkaPosition> positions) =>
        positions is { Count: > 0 } ? positions : throw new ArgumentException("At least one position is needed.", nameof(positions));

    public override string ToString() => Kind switch
    {
        ReplayFromKind.Offset => $"offset {Offset}",
        ReplayFromKind.At => "at " + KafkaPosition.FormatList(Positions),
        ReplayFromKind.After => "after " + KafkaPosition.FormatList(Positions),
        ReplayFromKind.Time => "time " + Time.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
        _ => "earliest",
    };
}

public enum ReplayFromKind
{
    Earliest,
    Offset,
    At,
    After,
    Time,
}

/// <summary>What to replay: Kafka topics (or the positions' topics), an optional MQTT filter on the mqtt.topic header, a start and an end.</summary>
public sealed class ReplayRequest
{
    /// <summary>Kafka topics to read; when empty, the topics of <see cref="ReplayFrom.Positions"/>.</summary>
    public IReadOnlyList<string> Topics { get; init; } = [];

    /// <summary>When set, only records whose mqtt.topic header this MQTT topic filter matches are returned.</summary>
    public string? MqttFilter { get; init; }

    public ReplayFrom From { get; init; } = ReplayFrom.Earliest;

    /// <summary>When set, a partition ends at its first record stamped after this time.</summary>
    public DateTimeOffset? To { get; init; }

    /// <summary>When set, the replay ends after this many records.</summary>
    public long? Limit { get; init; }
}
