using System.Globalization;
using Confluent.Kafka;
using IotRealtime.Hosting.Kafka;

namespace IotRealtime.Broker.Kafka;

/// <summary>
/// Where one record sits in Kafka: topic, partition, offset. Text form <c>topic/partition/offset</c> (Kafka topic names
/// cannot contain '/'); several positions, one per partition, are joined with ',' (see <see cref="FormatList"/>).
/// Guarantee: offsets in a partition only grow and are never reused, so a position names one record for good. A position
/// below the partition's earliest retained offset is no longer in history; <see cref="KafkaReplayer"/> reports that with
/// <see cref="KafkaHistoryGapException"/>, never as a silent gap.
/// </summary>
public readonly record struct KafkaPosition(string Topic, int Partition, long Offset)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Topic}/{Partition}/{Offset}");

    public TopicPartition TopicPartition => new(Topic, Partition);

    public static bool TryParse(string? text, out KafkaPosition position)
    {
        position = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var span = text.AsSpan().Trim();
        var last = span.LastIndexOf('/');
        if (last <= 0) return false;
        var middle = span[..last].LastIndexOf('/');
        if (middle <= 0) return false;
        var topic = span[..middle];
        if (!int.TryParse(span[(middle + 1)..last], NumberStyles.None, CultureInfo.InvariantCulture, out var partition)) return false;
        if (!long.TryParse(span[(last + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var offset) || offset < -1) return false;
        if (!KafkaTopicName.IsValid(topic.ToString())) return false;
        position = new KafkaPosition(topic.ToString(), partition, offset);
        return true;
    }

    /// <exception cref="FormatException">Naming the text and the expected form.</exception>
    public static KafkaPosition Parse(string text) => TryParse(text, out var position)
        ? position
        : throw new FormatException($"'{text}' is not a Kafka position; expected topic/partition/offset, e.g. telemetry/0/42.");

    /// <summary>Parses <c>topic/partition/offset[,topic/partition/offset...]</c>; a partition may appear only once.</summary>
    /// <exception cref="FormatException">Naming the bad part.</exception>
    public static IReadOnlyList<KafkaPosition> ParseList(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var positions = new List<KafkaPosition>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var position = Parse(part);
            if (positions.Any(p => p.Topic == position.Topic && p.Partition == position.Partition))
            {
                throw new FormatException($"'{text}' names {position.Topic}/{position.Partition} twice.");
            }
            positions.Add(position);
        }
        if (positions.Count == 0) throw new FormatException("No Kafka position given; expected topic/partition/offset[,...].");
        return positions;
    }

    public static string FormatList(IEnumerable<KafkaPosition> positions) => string.Join(',', positions.Select(p => p.ToString()));
}
