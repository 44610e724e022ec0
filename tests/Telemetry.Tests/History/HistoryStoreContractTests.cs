using IotRealtime.Telemetry.Configuration;
using IotRealtime.Telemetry.History;
using IotRealtime.Telemetry.Influx;
using IotRealtime.Telemetry.Postgres;
using IotRealtime.Telemetry.Sinks;
using IotRealtime.Telemetry.Tests.Influx;
using IotRealtime.Telemetry.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace IotRealtime.Telemetry.Tests.History;

static class HistoryBatches
{
    public static async Task WriteAsync(ITelemetrySink sink, IReadOnlyList<Reading> readings)
    {
        await sink.InitializeAsync(CancellationToken.None);
        var offset = 0;
        foreach (var chunk in readings.Chunk(200))
        {
            var batch = new ReadingBatch();
            batch.Readings.AddRange(chunk);
            batch.Offsets.Add(new SourceOffset("history", 0, ++offset));
            await sink.WriteAsync(batch, CancellationToken.None);
        }
    }
}

/// <summary>The history store contract over PostgreSQL, readings written by the PostgreSQL sink (raw rows and roll-ups).</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresHistoryStoreTests(PostgresFixture postgres) : HistoryStoreContract, IAsyncLifetime
{
    NpgsqlDataSource? _dataSource;

    protected override async Task<IHistoryStore> StoreAsync(IReadOnlyList<Reading> readings)
    {
        var connectionString = await postgres.NewDatabaseAsync();
        await using (var sink = new PostgresSink(new PostgresOptions { ConnectionString = connectionString }, "history", TimeProvider.System))
        {
            await HistoryBatches.WriteAsync(sink, readings);
        }
        _dataSource = NpgsqlDataSource.Create(connectionString);
        return new PostgresHistoryStore(_dataSource, TimeProvider.System);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_dataSource is not null) await _dataSource.DisposeAsync();
    }
}

/// <summary>The history store contract over InfluxDB 1.6, readings written by the InfluxDB sink.</summary>
public sealed class InfluxHistoryStoreTests(InfluxFixture influx) : HistoryStoreContract, IClassFixture<InfluxFixture>, IDisposable
{
    InfluxHistoryStore? _store;

    protected override async Task<IHistoryStore> StoreAsync(IReadOnlyList<Reading> readings)
    {
        var options = influx.Options(influx.NewDatabase());
        await using (var sink = new InfluxSink(options, "history", TimeProvider.System, NullLogger<InfluxSink>.Instance))
        {
            await HistoryBatches.WriteAsync(sink, readings);
        }
        _store = new InfluxHistoryStore(options, new InfluxClient(options, TimeProvider.System, NullLogger.Instance));
        return _store;
    }

    public void Dispose() => _store?.Dispose();
}
