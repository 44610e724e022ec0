using IotRealtime.Telemetry.Tests.Infrastructure;

namespace IotRealtime.Telemetry.Tests.Ingest;

[Collection(PostgresCollection.Name)]
public sealed class RebalanceTests(PostgresFixture postgres)
{
    const string Topic = "mqtt";

    [Fact]
    public async Task Instances_joining_and_leaving_the_group_mid_stream_store_every_record_once()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic(Topic, partitions: 4);
        var connectionString = await postgres.NewDatabaseAsync();
        var records = Enumerable.Range(0, 3000).Select(i => TelemetryRecords.Numbered(i, devices: 40)).ToList();
        var configuration = IngestEndToEndTests.Configuration(kafka.BootstrapServers, connectionString, ("Telemetry:BatchMaxReadings", "120"));

        await using var first = await TelemetryHost.StartAsync(configuration);
        await TelemetryRecords.ProduceAsync(kafka.BootstrapServers, Topic, records.Take(1000).Select(r => r.Message));
        await TelemetryRecords.WaitForRowsAsync(connectionString, 1, Timeouts.Default, "the first readings");

        // A second instance joins: the first gives up partitions mid-stream, storing what it has taken first.
        var second = await TelemetryHost.StartAsync(configuration);
        await TelemetryRecords.ProduceAsync(kafka.BootstrapServers, Topic, records.Skip(1000).Take(1000).Select(r => r.Message));
        await Wait.UntilAsync(() => second.Metrics.BatchesWritten("postgres") > 0, Timeouts.Default, "the second instance to store a batch");

        // And leaves again: the first takes its partitions back from the offsets stored.
        await second.DisposeAsync();
        await TelemetryRecords.ProduceAsync(kafka.BootstrapServers, Topic, records.Skip(2000).Select(r => r.Message));

        await TelemetryRecords.WaitForRowsAsync(connectionString, records.Count * 3, Timeouts.Default, "every reading");
        await TelemetryRecords.AssertExactlyAsync(connectionString, records.SelectMany(r => r.Readings));
        Assert.Equal(records.Count * 3, await TelemetryRecords.CountAsync(connectionString, "SELECT sum(count) FROM telemetry_rollup_1h"));
    }
}
