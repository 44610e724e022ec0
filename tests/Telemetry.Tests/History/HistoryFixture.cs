using IotRealtime.Telemetry.History;
using IotRealtime.Telemetry.Sinks;
using Microsoft.Extensions.Configuration;
using Npgsql;
using NpgsqlTypes;

namespace IotRealtime.Telemetry.Tests.History;

/// <summary>
/// A throwaway PostgreSQL with the telemetry schema and known readings, and a TelemetryHost (port 0) serving the
/// history API from it. Readings are stored the way the PostgreSQL sink stores them: raw rows plus the per-minute and
/// per-hour roll-ups.
/// </summary>
public sealed class HistoryFixture : IAsyncLifetime
{
    PostgresServer? _postgres;
    KafkaMockCluster? _kafka;
    TelemetryHost? _host;

    public string ConnectionString { get; private set; } = string.Empty;

    public TelemetryHost Host => _host ?? throw new InvalidOperationException("not started");

    public HttpClient Http { get; private set; } = new();

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _postgres = await PostgresServer.StartAsync();
        ConnectionString = await _postgres.CreateDatabaseAsync("history");
        DataSource = NpgsqlDataSource.Create(ConnectionString);
        await using (var schema = DataSource.CreateCommand(Schema)) await schema.ExecuteNonQueryAsync();

        _kafka = KafkaMockCluster.Start();
        _kafka.CreateTopic("mqtt");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Telemetry:Kafka:BootstrapServers"] = _kafka.BootstrapServers,
            ["Telemetry:Kafka:Topics"] = "mqtt",
            ["Telemetry:Sinks"] = "postgres",
            ["Telemetry:Postgres:ConnectionString"] = ConnectionString,
            ["Telemetry:Http:Port"] = "0",
            ["Telemetry:Http:BindAddress"] = "127.0.0.1",
        }).Build();
        _host = await TelemetryHost.StartAsync(configuration);
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_host.HttpPort}/"), Timeout = Timeouts.Default };
    }

    /// <summary>Stores readings as raw rows and folds them into both roll-ups (what the sink does per batch).</summary>
    public async Task StoreAsync(IReadOnlyList<Reading> readings)
    {
        await using var connection = await DataSource.OpenConnectionAsync();
        await using var tx = await connection.BeginTransactionAsync();
        await using (var copy = await connection.BeginBinaryImportAsync("COPY telemetry_readings (time, device, metric, value) FROM STDIN (FORMAT BINARY)"))
        {
            foreach (var r in readings)
            {
                await copy.StartRowAsync();
                await copy.WriteAsync(r.Time.UtcDateTime, NpgsqlDbType.TimestampTz);
                await copy.WriteAsync(r.Device, NpgsqlDbType.Text);
                await copy.WriteAsync(r.Metric, NpgsqlDbType.Text);
                await copy.WriteAsync(r.Value, NpgsqlDbType.Double);
            }
            await copy.CompleteAsync();
        }
        await using (var rollup = new NpgsqlCommand(Rollups, connection, tx)) await rollup.ExecuteNonQueryAsync();
        await tx.CommitAsync();
    }

    /// <summary>The same query read from raw readings only.</summary>
    public Task<IReadOnlyList<HistoryBucket>> RawAsync(HistoryQuery query) =>
        new PostgresHistoryStore(DataSource, TimeProvider.System).QueryAsync(query, [new HistorySegment(HistorySource.Raw, query.From, query.To)], CancellationToken.None);

    public async Task DisposeAsync()
    {
        Http.Dispose();
        if (_host is not null) await _host.DisposeAsync();
        if (_kafka is not null) await _kafka.DisposeAsync();
        await DataSource.DisposeAsync();
        if (_postgres is not null) await _postgres.DisposeAsync();
    }

    const string Schema = """
        CREATE TABLE telemetry_readings (time timestamptz NOT NULL, device text NOT NULL, metric text NOT NULL, value double precision NOT NULL) PARTITION BY RANGE (time);
        CREATE TABLE telemetry_readings_default PARTITION OF telemetry_readings DEFAULT;
        CREATE INDEX ON telemetry_readings (device, metric, time);
        CREATE TABLE telemetry_rollup_1m (bucket timestamptz NOT NULL, device text NOT NULL, metric text NOT NULL,
          min double precision NOT NULL, max double precision NOT NULL, sum double precision NOT NULL,
          count bigint NOT NULL, last double precision NOT NULL, last_time timestamptz NOT NULL, PRIMARY KEY (device, metric, bucket));
        CREATE TABLE telemetry_rollup_1h (LIKE telemetry_rollup_1m INCLUDING ALL);
        """;

    // Rebuilt from the raw rows rather than merged per batch: exact, and simple enough for test data.
    const string Rollups = """
        TRUNCATE telemetry_rollup_1m, telemetry_rollup_1h;
        INSERT INTO telemetry_rollup_1m SELECT date_bin('1 minute', time, timestamptz 'epoch'), device, metric, min(value), max(value), sum(value), count(*),
          (array_agg(value ORDER BY time DESC))[1], max(time) FROM telemetry_readings GROUP BY 1, 2, 3;
        INSERT INTO telemetry_rollup_1h SELECT date_bin('1 hour', time, timestamptz 'epoch'), device, metric, min(value), max(value), sum(value), count(*),
          (array_agg(value ORDER BY time DESC))[1], max(time) FROM telemetry_readings GROUP BY 1, 2, 3;
        """;
}
