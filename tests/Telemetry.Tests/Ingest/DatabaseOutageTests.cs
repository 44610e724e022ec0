using IotRealtime.Telemetry.Tests.Infrastructure;

namespace IotRealtime.Telemetry.Tests.Ingest;

public sealed class DatabaseOutageTests
{
    const string Topic = "mqtt";

    [Fact]
    public async Task A_database_outage_pauses_consumption_and_every_record_arrives_once_after_it()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic(Topic, partitions: 2);
        await using var server = await PostgresServer.StartAsync();
        var connectionString = await server.CreateDatabaseAsync("outage");
        var records = Enumerable.Range(0, 1500).Select(i => TelemetryRecords.Numbered(i)).ToList();
        var first = records.Take(300).ToList();

        await using var host = await TelemetryHost.StartAsync(IngestEndToEndTests.Configuration(kafka.BootstrapServers, connectionString,
            ("Telemetry:BatchMaxReadings", "150"), ("Telemetry:RetryMaxDelayMs", "200")));
        await TelemetryRecords.ProduceAsync(kafka.BootstrapServers, Topic, first.Select(r => r.Message));
        await TelemetryRecords.WaitForRowsAsync(connectionString, first.Count * 3, Timeouts.Default, "readings before the outage");

        await server.StopAsync();
        await TelemetryRecords.ProduceAsync(kafka.BootstrapServers, Topic, records.Skip(300).Select(r => r.Message));
        // Many batches' worth arrive while the sink is down: its queue fills and the partitions are paused.
        // (Pauses also happen in normal operation when the writer is merely behind; after a failed write, the writer
        // retries the same batch until the database is back, so the pause holds until then.)
        await Wait.UntilAsync(() => host.Metrics.WriteFailures("postgres") > 0 && host.Metrics.IsPaused, Timeouts.Default, "failed writes and paused consumption");
        Assert.Equal("paused", host.State);
        var consumedWhilePaused = host.Metrics.RecordsConsumed;
        Assert.True(consumedWhilePaused < records.Count, $"consumed {consumedWhilePaused} of {records.Count} records while the database was down");

        await server.StartAsync();
        await TelemetryRecords.WaitForRowsAsync(connectionString, records.Count * 3, Timeouts.Default, "every reading after the outage");
        await Wait.UntilAsync(() => !host.Metrics.IsPaused, Timeouts.Default, "consumption to resume");
        await TelemetryRecords.AssertExactlyAsync(connectionString, records.SelectMany(r => r.Readings));
        Assert.True(host.Metrics.Pauses >= 1);
        Assert.Equal(records.Count * 3, await TelemetryRecords.CountAsync(connectionString, "SELECT sum(count) FROM telemetry_rollup_1m"));
    }
}
