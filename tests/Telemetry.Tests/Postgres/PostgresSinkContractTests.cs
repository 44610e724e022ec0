using IotRealtime.Telemetry.Configuration;
using IotRealtime.Telemetry.Postgres;
using IotRealtime.Telemetry.Sinks;
using IotRealtime.Telemetry.Tests.Infrastructure;
using IotRealtime.Telemetry.Tests.Sinks;
using Npgsql;

namespace IotRealtime.Telemetry.Tests.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class PostgresSinkContractTests(PostgresFixture postgres) : TelemetrySinkContract
{
    string _connectionString = string.Empty;

    public override async Task InitializeAsync() => _connectionString = await postgres.NewDatabaseAsync();

    protected override Task<ITelemetrySink> CreateSinkAsync(string consumerGroup) =>
        Task.FromResult<ITelemetrySink>(new PostgresSink(new PostgresOptions { ConnectionString = _connectionString }, consumerGroup, TimeProvider.System));

    protected override async Task<IReadOnlyList<Reading>> ReadReadingsAsync(string device)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT time, device, metric, value FROM telemetry_readings WHERE device = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = device });
        var readings = new List<Reading>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) readings.Add(new Reading(reader.GetFieldValue<DateTimeOffset>(0), reader.GetString(1), reader.GetString(2), reader.GetDouble(3)));
        return readings;
    }

    protected override async Task<IReadOnlyList<ParkedPayload>> ReadParkedAsync()
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""SELECT topic, partition, "offset", time, device, mqtt_topic, payload, reason FROM telemetry_parked""", connection);
        var parked = new List<ParkedPayload>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            parked.Add(new ParkedPayload(reader.GetString(0), reader.GetInt32(1), reader.GetInt64(2), reader.GetFieldValue<DateTimeOffset>(3),
                reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetFieldValue<byte[]>(6), reader.GetString(7)));
        }
        return parked;
    }
}
