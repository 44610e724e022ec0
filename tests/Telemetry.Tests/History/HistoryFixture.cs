using IotRealtime.Telemetry.Configuration;
using IotRealtime.Telemetry.History;
using IotRealtime.Telemetry.Postgres;
using IotRealtime.Telemetry.Sinks;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace IotRealtime.Telemetry.Tests.History;

/// <summary>
/// A throwaway PostgreSQL with readings stored by the real PostgreSQL sink (raw rows plus the per-minute and per-hour
/// roll-ups), and a TelemetryHost (port 0, consuming an empty topic of librdkafka's mock cluster) serving the history
/// API from it.
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

    /// <summary>
    /// Stores readings through the PostgreSQL sink, in batches of <paramref name="batchSize"/> so roll-up rows are
    /// merged across batches as in production.
    /// </summary>
    public async Task StoreAsync(IReadOnlyList<Reading> readings, int batchSize = 250)
    {
        await using var sink = new PostgresSink(new PostgresOptions { ConnectionString = ConnectionString }, "history-tests", TimeProvider.System);
        await sink.InitializeAsync(CancellationToken.None);
        for (var i = 0; i < readings.Count; i += batchSize)
        {
            var batch = new ReadingBatch();
            batch.Readings.AddRange(readings.Skip(i).Take(batchSize));
            batch.Offsets.Add(new SourceOffset("history-tests", 0, ++_batches));
            await sink.WriteAsync(batch, CancellationToken.None);
        }
    }

    int _batches;

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
}
