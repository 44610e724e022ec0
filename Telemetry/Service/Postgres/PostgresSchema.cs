using System.Globalization;

namespace IotRealtime.Telemetry.Postgres;

/// <summary>
/// The tables telemetry lives in. Grafana-friendly: one row per reading with time, device, metric, value columns;
/// readings are range-partitioned by day (telemetry_readings_YYYYMMDD), roll-ups keep 1-minute and 1-hour aggregates.
/// </summary>
static class PostgresSchema
{
    public const string Readings = "telemetry_readings";

    /// <summary>Serializes DDL between telemetry processes sharing a database (pg_advisory_xact_lock key).</summary>
    public const long DdlLock = 0x7E1E_3E7E_0001;

    public const string Create = """
        CREATE TABLE IF NOT EXISTS telemetry_readings (
          time   timestamptz      NOT NULL,
          device text             NOT NULL,
          metric text             NOT NULL,
          value  double precision NOT NULL
        ) PARTITION BY RANGE (time);
        CREATE INDEX IF NOT EXISTS telemetry_readings_device_metric_time ON telemetry_readings (device, metric, time);
        CREATE TABLE IF NOT EXISTS telemetry_rollup_1m (
          bucket timestamptz NOT NULL, device text NOT NULL, metric text NOT NULL,
          min double precision NOT NULL, max double precision NOT NULL, sum double precision NOT NULL,
          count bigint NOT NULL, last double precision NOT NULL, last_time timestamptz NOT NULL,
          PRIMARY KEY (device, metric, bucket));
        CREATE TABLE IF NOT EXISTS telemetry_rollup_1h (
          bucket timestamptz NOT NULL, device text NOT NULL, metric text NOT NULL,
          min double precision NOT NULL, max double precision NOT NULL, sum double precision NOT NULL,
          count bigint NOT NULL, last double precision NOT NULL, last_time timestamptz NOT NULL,
          PRIMARY KEY (device, metric, bucket));
        CREATE TABLE IF NOT EXISTS telemetry_offsets (consumer_group text, topic text, partition int, next_offset bigint NOT NULL,
          PRIMARY KEY (consumer_group, topic, partition));
        CREATE TABLE IF NOT EXISTS telemetry_parked (topic text, partition int, "offset" bigint, time timestamptz,
          device text, mqtt_topic text, payload bytea, reason text, PRIMARY KEY (topic, partition, "offset"));
        """;

    public static string PartitionName(DateOnly day) => Readings + "_" + day.ToString("yyyyMMdd", CultureInfo.InvariantCulture);

    public static bool TryParsePartition(string name, out DateOnly day)
    {
        day = default;
        return name.StartsWith(Readings + "_", StringComparison.Ordinal)
            && DateOnly.TryParseExact(name.AsSpan(Readings.Length + 1), "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out day);
    }

    public static string CreatePartition(DateOnly day)
    {
        static string Bound(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) + " 00:00:00+00";
        return $"CREATE TABLE IF NOT EXISTS {PartitionName(day)} PARTITION OF {Readings} FOR VALUES FROM ('{Bound(day)}') TO ('{Bound(day.AddDays(1))}')";
    }

    public const string ListPartitions = """
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'telemetry_readings'
        """;

    public static string UpsertRollup(string table) => $"""
        INSERT INTO {table} AS r (bucket, device, metric, min, max, sum, count, last, last_time)
        SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[], $7::bigint[], $8::float8[], $9::timestamptz[])
        ON CONFLICT (device, metric, bucket) DO UPDATE SET
          min = LEAST(r.min, EXCLUDED.min),
          max = GREATEST(r.max, EXCLUDED.max),
          sum = r.sum + EXCLUDED.sum,
          count = r.count + EXCLUDED.count,
          last = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
          last_time = GREATEST(r.last_time, EXCLUDED.last_time)
        """;

    public const string LockOffsets = """
        SELECT o.topic, o.partition, o.next_offset FROM telemetry_offsets o
        JOIN unnest($2::text[], $3::int[]) AS b(topic, partition) ON b.topic = o.topic AND b.partition = o.partition
        WHERE o.consumer_group = $1
        ORDER BY o.topic, o.partition
        FOR UPDATE OF o
        """;

    public const string UpsertOffsets = """
        INSERT INTO telemetry_offsets AS o (consumer_group, topic, partition, next_offset)
        SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bigint[])
        ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset)
        """;

    public const string InsertParked = """
        INSERT INTO telemetry_parked (topic, partition, "offset", time, device, mqtt_topic, payload, reason)
        SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::timestamptz[], $5::text[], $6::text[], $7::bytea[], $8::text[])
        ON CONFLICT DO NOTHING
        """;

    public const string LoadOffsets = """
        SELECT topic, partition, next_offset FROM telemetry_offsets WHERE consumer_group = $1 AND topic = ANY($2::text[])
        """;
}
