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

    /// <summary>
    /// Parses the text form replay's command line and HTTP API take: <c>earliest</c>, an offset for every partition
    /// (<c>120</c>), positions to start at (<c>telemetry/0/120,telemetry/1/97</c>), or an ISO 8601 time
    /// (<c>2026-03-01T12:00:00Z</c>; without an offset it is UTC).
    /// </summary>
    /// <exception cref="FormatException">Naming the text and the accepted forms.</exception>
    public static ReplayFrom Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim();
        if (trimmed.Equals("earliest", StringComparison.OrdinalIgnoreCase) || trimmed.Equals("beginning", StringComparison.OrdinalIgnoreCase)) return Earliest;
        if (long.TryParse(trimmed, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var offset)) return FromOffset(offset);
        if (trimmed.Contains('/', StringComparison.Ordinal)) return At(KafkaPosition.ParseList(trimmed));
        if (TryParseTime(trimmed, out var time)) return FromTime(time);
        throw new FormatException($"'{text}' is not a replay start; expected earliest, an offset (120), positions (topic/partition/offset[,...]) or an ISO 8601 time (2026-03-01T12:00:00Z).");
    }

    /// <summary>An ISO 8601 date and time; without an offset, UTC.</summary>
    public static bool TryParseTime(string text, out DateTimeOffset time) =>
        DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal, out time)
        && text.Length >= 10 && char.IsAsciiDigit(text[0]);

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
