using IotRealtime.Telemetry.Configuration;
using IotRealtime.Telemetry.Postgres;
using IotRealtime.Telemetry.Sinks;
using IotRealtime.Telemetry.Tests.Infrastructure;
using Npgsql;

namespace IotRealtime.Telemetry.Tests.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class PostgresPartitionTests(PostgresFixture postgres)
{
    sealed class SettableTime(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    static async Task<List<string>> PartitionsAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = 'telemetry_readings' ORDER BY 1
            """, connection);
        var names = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) names.Add(reader.GetString(0));
        return names;
    }

    [Fact]
    public async Task Partitions_are_made_ahead_and_for_any_day_written_and_dropped_past_retention()
    {
        var connectionString = await postgres.NewDatabaseAsync();
        var time = new SettableTime(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero));
        await using var sink = new PostgresSink(new PostgresOptions { ConnectionString = connectionString, RetentionDays = 10, PartitionsAhead = 2 }, "g", time);
        await sink.InitializeAsync(CancellationToken.None);
        Assert.Equal(["telemetry_readings_20261201", "telemetry_readings_20261202", "telemetry_readings_20261203"], await PartitionsAsync(connectionString));

        var batch = new ReadingBatch();
        batch.Readings.Add(new Reading(new DateTimeOffset(2026, 11, 25, 23, 59, 59, TimeSpan.Zero), "d1", "temp", 1));
        batch.Readings.Add(new Reading(new DateTimeOffset(2027, 1, 2, 0, 0, 0, TimeSpan.FromHours(1)), "d1", "temp", 2)); // 2027-01-01 23:00 UTC
        await sink.WriteAsync(batch, CancellationToken.None);
        Assert.Equal(["telemetry_readings_20261125", "telemetry_readings_20261201", "telemetry_readings_20261202", "telemetry_readings_20261203", "telemetry_readings_20270101"],
            await PartitionsAsync(connectionString));

        time.Now = time.Now.AddDays(6); // 2026-12-07: 2026-11-25 is 12 days old
        var (created, dropped) = await sink.MaintainAsync(CancellationToken.None);
        Assert.Equal((3, 1), (created, dropped));
        Assert.Equal(["telemetry_readings_20261201", "telemetry_readings_20261202", "telemetry_readings_20261203", "telemetry_readings_20261207",
            "telemetry_readings_20261208", "telemetry_readings_20261209", "telemetry_readings_20270101"], await PartitionsAsync(connectionString));
        Assert.Equal(1, await TelemetryRecords.CountAsync(connectionString, "SELECT count(*) FROM telemetry_readings"));
    }
}
