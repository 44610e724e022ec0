using Confluent.Kafka;
using IotRealtime.Telemetry.Tests.Infrastructure;

namespace IotRealtime.Telemetry.Tests.Ingest;

/// <summary>The telemetry service as its own process, killed with SIGKILL at its most delicate moment.</summary>
[Collection(PostgresCollection.Name)]
public sealed class CrashTests(PostgresFixture postgres)
{
    const string Topic = "mqtt";
    const int SigKillExitCode = 137;

    [Fact]
    public async Task Killed_between_the_database_commit_and_the_Kafka_commit_it_restarts_without_loss_or_duplicates()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic(Topic, partitions: 2);
        var connectionString = await postgres.NewDatabaseAsync();
        var records = Enumerable.Range(0, 2000).Select(i => TelemetryRecords.Numbered(i)).ToList();
        await TelemetryRecords.ProduceAsync(kafka.BootstrapServers, Topic, records.Select(r => r.Message));

        // A short session timeout so the group gives a killed member's partitions to its successor quickly.
        (string, string)[] common = [("Telemetry:BatchMaxReadings", "150"), ("Telemetry:Kafka:SessionTimeoutMs", "2000")];
        long storedBefore = 0;
        foreach (var crashAfterBatch in new[] { 3, 2, 4 })
        {
            await using var crashing = TelemetryProcess.Start(IngestEndToEndTests.Settings(kafka.BootstrapServers, connectionString,
                [.. common, ("Telemetry:Faults:ExitAfterDbCommitOnBatch", crashAfterBatch.ToString(System.Globalization.CultureInfo.InvariantCulture))]));
            var exitCode = await crashing.WaitForExitAsync(Timeouts.Default * 2);
            Assert.True(exitCode == SigKillExitCode, $"exit code {exitCode}, expected SIGKILL's {SigKillExitCode}. Output:\n{crashing.Output}");

            var stored = await TelemetryRecords.CountAsync(connectionString, "SELECT count(*) FROM telemetry_readings");
            Assert.InRange(stored, storedBefore + 1, records.Count * 3 - 1);
            storedBefore = stored;
            // The last stored batch never reached Kafka's commit: Kafka is behind what PostgreSQL holds.
            Assert.True(await KafkaCommittedAsync(kafka.BootstrapServers) < await TelemetryRecords.CountAsync(connectionString, "SELECT sum(next_offset) FROM telemetry_offsets"),
                "Kafka's committed offsets should lag the stored ones after the kill");
        }

        await using (var survivor = TelemetryProcess.Start(IngestEndToEndTests.Settings(kafka.BootstrapServers, connectionString, common)))
        {
            await TelemetryRecords.WaitForRowsAsync(connectionString, records.Count * 3, Timeouts.Default * 2, "every reading after the crashes");
        }
        await TelemetryRecords.AssertExactlyAsync(connectionString, records.SelectMany(r => r.Readings));
        Assert.Equal(records.Count * 3, await TelemetryRecords.CountAsync(connectionString, "SELECT sum(count) FROM telemetry_rollup_1m"));
    }

    static Task<long> KafkaCommittedAsync(string bootstrapServers) => Task.Run(() =>
    {
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = bootstrapServers, GroupId = "iotrealtime-telemetry" }).Build();
        var committed = consumer.Committed([new TopicPartition(Topic, 0), new TopicPartition(Topic, 1)], TimeSpan.FromSeconds(10));
        return committed.Sum(c => c.Offset.IsSpecial ? 0 : c.Offset.Value);
    });

    [Fact]
    public async Task Invalid_configuration_exits_with_code_2_naming_the_keys()
    {
        await using var process = TelemetryProcess.Start([new("Telemetry:Kafka:Topics", "bad topic"), new("Telemetry:BatchMaxReadings", "0")]);
        Assert.Equal(2, await process.WaitForExitAsync(Timeouts.Default));
        Assert.Contains("Telemetry:Kafka:BootstrapServers must be set", process.Output, StringComparison.Ordinal);
        Assert.Contains("Telemetry:Kafka:Topics: 'bad topic'", process.Output, StringComparison.Ordinal);
        Assert.Contains("Telemetry:BatchMaxReadings must be at least 1", process.Output, StringComparison.Ordinal);
    }
}
