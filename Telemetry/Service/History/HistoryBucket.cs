namespace IotRealtime.Telemetry.History;

/// <summary>One bucket of a history answer: the readings with Start &lt;= time &lt; Start + step.</summary>
public readonly record struct HistoryBucket(DateTimeOffset Start, double Min, double Max, double Avg, double Last, long Count);

/// <summary>What answers history requests: <see cref="PostgresHistoryStore"/> or <see cref="InfluxHistoryStore"/>.</summary>
public interface IHistoryStore
{
    /// <summary>Non-empty buckets in time order; buckets without readings are left out.</summary>
    Task<IReadOnlyList<HistoryBucket>> QueryAsync(HistoryQuery query, CancellationToken ct);

    /// <summary>Devices with stored readings, in the database's text order, after <paramref name="after"/> (paging), at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<string>> DevicesAsync(string? after, int limit, CancellationToken ct);

    /// <summary>The metrics stored for <paramref name="device"/>, in the database's text order.</summary>
    Task<IReadOnlyList<string>> MetricsAsync(string device, CancellationToken ct);
}
