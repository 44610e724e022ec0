using System.Text;
using Npgsql;
using NpgsqlTypes;

namespace IotRealtime.Telemetry.History;

/// <summary>
/// History from the PostgreSQL sink's tables: telemetry_readings (raw), telemetry_rollup_1m and telemetry_rollup_1h,
/// combined per <see cref="HistoryPlan"/> in one statement. Each part is read through its (device, metric, time)
/// index and reduced to partial aggregates per bucket (min, max, sum, count, last with its time), which the outer
/// query merges, so a bucket that straddles two sources is still exact.
/// </summary>
/// <remarks>Disposing the store disposes <paramref name="dataSource"/>.</remarks>
public sealed class PostgresHistoryStore(NpgsqlDataSource dataSource, TimeProvider time) : IHistoryStore, IAsyncDisposable
{
    static readonly TimeSpan HourlyRecheck = TimeSpan.FromMinutes(1);

    // Null until looked up; the ingest side may create the hourly roll-up after this service started.
    bool? _hourly;
    long _hourlyCheckedAt;

    /// <summary>Statement timeout for one history query: a request that would take longer fails instead of piling up.</summary>
    public int CommandTimeoutSeconds { get; init; } = 10;

    public async Task<IReadOnlyList<HistoryBucket>> QueryAsync(HistoryQuery query, CancellationToken ct)
    {
        var hourly = await HourlyAvailableAsync(ct).ConfigureAwait(false);
        return await QueryAsync(query, HistoryPlan.For(query.From, query.To, query.Step, hourly), ct).ConfigureAwait(false);
    }

    /// <summary>Answers <paramref name="query"/> from the given segments (tests compare plans against each other).</summary>
    public async Task<IReadOnlyList<HistoryBucket>> QueryAsync(HistoryQuery query, IReadOnlyList<HistorySegment> segments, CancellationToken ct)
    {
        var sql = new StringBuilder("SELECT b, min(mn), max(mx), sum(s) / sum(c), (array_agg(lv ORDER BY lt DESC))[1], sum(c)::bigint FROM (");
        await using var command = dataSource.CreateCommand();
        command.CommandTimeout = CommandTimeoutSeconds;
        command.Parameters.Add(new NpgsqlParameter("device", NpgsqlDbType.Text) { Value = query.Device });
        command.Parameters.Add(new NpgsqlParameter("metric", NpgsqlDbType.Text) { Value = query.Metric });
        command.Parameters.Add(new NpgsqlParameter("step", NpgsqlDbType.Interval) { Value = query.Step });
        command.Parameters.Add(new NpgsqlParameter("origin", NpgsqlDbType.TimestampTz) { Value = DateTime.UnixEpoch });
        for (var i = 0; i < segments.Count; i++)
        {
            var (source, from, to) = segments[i];
            if (i > 0) sql.Append(" UNION ALL ");
            sql.Append(source switch
            {
                HistorySource.Raw =>
                    "SELECT date_bin(@step, time, @origin) AS b, min(value) AS mn, max(value) AS mx, sum(value) AS s, count(*) AS c, "
                    + "max(time) AS lt, (array_agg(value ORDER BY time DESC))[1] AS lv FROM telemetry_readings "
                    + $"WHERE device = @device AND metric = @metric AND time >= @f{i} AND time < @t{i} GROUP BY 1",
                _ =>
                    "SELECT date_bin(@step, bucket, @origin) AS b, min(min) AS mn, max(max) AS mx, sum(sum) AS s, sum(count) AS c, "
                    + $"max(last_time) AS lt, (array_agg(last ORDER BY last_time DESC))[1] AS lv FROM {(source == HistorySource.Hour ? "telemetry_rollup_1h" : "telemetry_rollup_1m")} "
                    + $"WHERE device = @device AND metric = @metric AND bucket >= @f{i} AND bucket < @t{i} GROUP BY 1",
            });
            command.Parameters.Add(new NpgsqlParameter($"f{i}", NpgsqlDbType.TimestampTz) { Value = from.UtcDateTime });
            command.Parameters.Add(new NpgsqlParameter($"t{i}", NpgsqlDbType.TimestampTz) { Value = to.UtcDateTime });
        }
        sql.Append(") p GROUP BY b ORDER BY b");
        command.CommandText = sql.ToString();

        var buckets = new List<HistoryBucket>();
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            buckets.Add(new HistoryBucket(
                new DateTimeOffset(reader.GetDateTime(0), TimeSpan.Zero),
                reader.GetDouble(1), reader.GetDouble(2), reader.GetDouble(3), reader.GetDouble(4), reader.GetInt64(5)));
        }
        return buckets;
    }

    public async Task<IReadOnlyList<string>> DevicesAsync(string? after, int limit, CancellationToken ct)
    {
        // A loose index scan over the roll-up's primary key (device, metric, bucket): one index probe per device
        // instead of reading every row, which SELECT DISTINCT would.
        await using var command = dataSource.CreateCommand("""
            WITH RECURSIVE d(device) AS (
              (SELECT device FROM telemetry_rollup_1m WHERE device > @after ORDER BY device LIMIT 1)
              UNION ALL
              SELECT (SELECT r.device FROM telemetry_rollup_1m r WHERE r.device > d.device ORDER BY r.device LIMIT 1)
              FROM d WHERE d.device IS NOT NULL)
            SELECT device FROM d WHERE device IS NOT NULL LIMIT @limit
            """);
        command.CommandTimeout = CommandTimeoutSeconds;
        command.Parameters.Add(new NpgsqlParameter("after", NpgsqlDbType.Text) { Value = after ?? string.Empty });
        command.Parameters.Add(new NpgsqlParameter("limit", NpgsqlDbType.Integer) { Value = limit });
        return await ReadStringsAsync(command, ct).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<string>> MetricsAsync(string device, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            WITH RECURSIVE m(metric) AS (
              (SELECT metric FROM telemetry_rollup_1m WHERE device = @device ORDER BY metric LIMIT 1)
              UNION ALL
              SELECT (SELECT r.metric FROM telemetry_rollup_1m r WHERE r.device = @device AND r.metric > m.metric ORDER BY r.metric LIMIT 1)
              FROM m WHERE m.metric IS NOT NULL)
            SELECT metric FROM m WHERE metric IS NOT NULL
            """);
        command.CommandTimeout = CommandTimeoutSeconds;
        command.Parameters.Add(new NpgsqlParameter("device", NpgsqlDbType.Text) { Value = device });
        return await ReadStringsAsync(command, ct).ConfigureAwait(false);
    }

    static async Task<IReadOnlyList<string>> ReadStringsAsync(NpgsqlCommand command, CancellationToken ct)
    {
        var result = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false)) result.Add(reader.GetString(0));
        return result;
    }

    async Task<bool> HourlyAvailableAsync(CancellationToken ct)
    {
        if (_hourly == true) return true;
        if (_hourly == false && time.GetElapsedTime(Volatile.Read(ref _hourlyCheckedAt)) < HourlyRecheck) return false;
        await using var command = dataSource.CreateCommand("SELECT to_regclass('telemetry_rollup_1h') IS NOT NULL");
        var exists = (bool)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        Volatile.Write(ref _hourlyCheckedAt, time.GetTimestamp());
        _hourly = exists;
        return exists;
    }

    public ValueTask DisposeAsync() => dataSource.DisposeAsync();
}
