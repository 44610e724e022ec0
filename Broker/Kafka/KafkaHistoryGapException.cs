namespace IotRealtime.Broker.Kafka;

/// <summary>A requested start position is older than what Kafka still retains: the records in between are gone.</summary>
public sealed class KafkaHistoryGapException(KafkaPosition requested, long earliestAvailable)
    : Exception($"History no longer reaches {requested}: the earliest record still in {requested.Topic}/{requested.Partition} is at offset {earliestAvailable}.")
{
    public KafkaPosition Requested { get; } = requested;

    public long EarliestAvailable { get; } = earliestAvailable;
}
