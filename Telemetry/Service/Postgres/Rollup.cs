using IotRealtime.Telemetry.Sinks;
using Npgsql;
using NpgsqlTypes;

namespace IotRealtime.Telemetry.Postgres;

/// <summary>Aggregates a batch's readings per device, metric and time bucket in memory, for one upsert per roll-up table.</summary>
static class Rollup
{
    sealed class Aggregate
    {
        public double Min = double.MaxValue;
        public double Max = double.MinValue;
        public double Sum;
        public long Count;
        public double Last;
        public long LastTicks = long.MinValue;
    }

    public static NpgsqlBatchCommand Upsert(string table, List<Reading> readings, long bucketTicks)
    {
        var buckets = new Dictionary<(string Device, string Metric, long Bucket), Aggregate>();
        foreach (var r in readings)
        {
            var ticks = r.Time.UtcTicks;
            var key = (r.Device, r.Metric, ticks - ticks % bucketTicks);
            if (!buckets.TryGetValue(key, out var a)) buckets[key] = a = new Aggregate();
            if (r.Value < a.Min) a.Min = r.Value;
            if (r.Value > a.Max) a.Max = r.Value;
            a.Sum += r.Value;
            a.Count++;
            if (ticks >= a.LastTicks)
            {
                a.Last = r.Value;
                a.LastTicks = ticks;
            }
        }
        // Sorted so concurrent writers lock roll-up rows in the same order and cannot deadlock.
        var rows = buckets.OrderBy(b => b.Key.Device, StringComparer.Ordinal).ThenBy(b => b.Key.Metric, StringComparer.Ordinal).ThenBy(b => b.Key.Bucket).ToArray();
        var command = new NpgsqlBatchCommand(PostgresSchema.UpsertRollup(table));
        command.Parameters.Add(Times(rows.Select(r => r.Key.Bucket)));
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = rows.Select(r => r.Key.Device).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = rows.Select(r => r.Key.Metric).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<double[]> { TypedValue = rows.Select(r => r.Value.Min).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<double[]> { TypedValue = rows.Select(r => r.Value.Max).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<double[]> { TypedValue = rows.Select(r => r.Value.Sum).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = rows.Select(r => r.Value.Count).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<double[]> { TypedValue = rows.Select(r => r.Value.Last).ToArray() });
        command.Parameters.Add(Times(rows.Select(r => r.Value.LastTicks)));
        return command;
    }

    static NpgsqlParameter<DateTime[]> Times(IEnumerable<long> ticks) => new()
    {
        TypedValue = ticks.Select(t => new DateTime(t, DateTimeKind.Utc)).ToArray(),
        NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz,
    };
}
