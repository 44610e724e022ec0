using System.Globalization;
using Confluent.Kafka;
using IotRealtime.Telemetry.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace IotRealtime.Telemetry.Tests.Ingest;

[Collection(PostgresCollection.Name)]
public sealed class IngestEndToEndTests(PostgresFixture postgres) : IAsyncLifetime
{
    const string Topic = "mqtt";

    KafkaMockCluster _kafka = null!;

    public Task InitializeAsync()
    {
        _kafka = KafkaMockCluster.Start();
        _kafka.CreateTopic(Topic, partitions: 3);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _kafka.DisposeAsync();

    internal static IConfiguration Configuration(string bootstrapServers, string connectionString, params (string Key, string Value)[] extra) =>
        new ConfigurationBuilder().AddInMemoryCollection(Settings(bootstrapServers, connectionString, extra)).Build();

    /// <summary>Test defaults, then <paramref name="extra"/> overriding them.</summary>
    internal static Dictionary<string, string?> Settings(string bootstrapServers, string connectionString, params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Telemetry:Kafka:BootstrapServers"] = bootstrapServers,
            ["Telemetry:Kafka:Topics:0"] = Topic,
            ["Telemetry:Kafka:SessionTimeoutMs"] = "6000",
            ["Telemetry:Postgres:ConnectionString"] = connectionString,
            ["Telemetry:Http:Port"] = "0",
            ["Telemetry:Http:BindAddress"] = "127.0.0.1",
            ["Telemetry:BatchMaxReadings"] = "300",
            ["Telemetry:BatchMaxDelayMs"] = "50",
        };
        foreach (var (key, value) in extra) settings[key] = value;
        return settings;
    }

    [Fact]
    public async Task Records_from_Kafka_land_in_PostgreSQL_exactly_as_produced_and_bad_payloads_are_parked_without_blocking()
    {
        var connectionString = await postgres.NewDatabaseAsync();
        var records = Enumerable.Range(0, 500).Select(i => TelemetryRecords.Numbered(i)).ToList();
        string[] bad = ["not json", "[1,2,3]", """{"fw":"1.2"}""", "", """{"temp":""", "42"];
        var messages = records.Select(r => r.Message).ToList();
        for (var i = 0; i < bad.Length; i++) messages.Insert(i * 70, TelemetryRecords.Publish("dev-bad", bad[i], TelemetryRecords.Epoch.AddSeconds(i)));
        // No client id header and no key: the device comes from the MQTT topic's second level.
        messages.Add(TelemetryRecords.Publish("dev-topic", """{"v":7}""", TelemetryRecords.Epoch, withClientIdHeader: false));
        var expected = records.SelectMany(r => r.Readings).Append((TelemetryRecords.Epoch.UtcTicks, "dev-topic", "v", 7.0)).ToList();

        // Half before the service starts (a backlog), half while it runs.
        await TelemetryRecords.ProduceAsync(_kafka.BootstrapServers, Topic, messages.Take(250));
        await using var host = await TelemetryHost.StartAsync(Configuration(_kafka.BootstrapServers, connectionString));
        await TelemetryRecords.ProduceAsync(_kafka.BootstrapServers, Topic, messages.Skip(250));

        await TelemetryRecords.WaitForRowsAsync(connectionString, expected.Count, Timeouts.Default, "every reading");
        await Wait.UntilAsync(() => TelemetryRecords.TryCountAsync(connectionString, "SELECT count(*) FROM telemetry_parked").Result == bad.Length, Timeouts.Default, "parked payloads");
        await TelemetryRecords.AssertExactlyAsync(connectionString, expected);

        Assert.Equal(0, await TelemetryRecords.CountAsync(connectionString, "SELECT count(*) FROM telemetry_parked WHERE device <> 'dev-bad' OR reason = ''"));
        Assert.Equal(1, await TelemetryRecords.CountAsync(connectionString, "SELECT count(*) FROM telemetry_parked WHERE reason = 'not a JSON object' AND payload = '\\x5b312c322c335d'"));
        // Roll-ups account for every reading, in the same transactions.
        Assert.Equal(expected.Count, await TelemetryRecords.CountAsync(connectionString, "SELECT sum(count) FROM telemetry_rollup_1m"));
        Assert.Equal(expected.Count, await TelemetryRecords.CountAsync(connectionString, "SELECT sum(count) FROM telemetry_rollup_1h"));
        Assert.Equal(0, await TelemetryRecords.CountAsync(connectionString, """
            SELECT count(*) FROM telemetry_rollup_1m r FULL JOIN (
              SELECT date_trunc('minute', time) AS bucket, device, metric, min(value) AS min, max(value) AS max, sum(value) AS sum, count(*) AS count
              FROM telemetry_readings GROUP BY 1, 2, 3) a USING (bucket, device, metric)
            WHERE r.count IS DISTINCT FROM a.count OR r.min IS DISTINCT FROM a.min OR r.max IS DISTINCT FROM a.max OR abs(r.sum - a.sum) > 1e-6
            """));
        // The stored offsets are the end of each partition: everything consumed is accounted for.
        var ends = await HighWatermarksAsync();
        Assert.Equal(ends.Sum(), await TelemetryRecords.CountAsync(connectionString, "SELECT sum(next_offset) FROM telemetry_offsets WHERE consumer_group = 'iotrealtime-telemetry' AND topic = 'mqtt'"));

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{host.HttpPort}") };
        Assert.Equal("running", await http.GetStringAsync("/healthz"));
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"iotrealtime_telemetry_readings_written_total{{sink=\"postgres\"}} {expected.Count}\n"), metrics, StringComparison.Ordinal);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"iotrealtime_telemetry_parked_total {bad.Length}\n"), metrics, StringComparison.Ordinal);
        Assert.Contains("iotrealtime_telemetry_batch_write_seconds_count", metrics, StringComparison.Ordinal);
        Assert.Contains("iotrealtime_telemetry_paused 0\n", metrics, StringComparison.Ordinal);
        await Wait.UntilAsync(() => host.Metrics.Lag.Count == 3 && host.Metrics.Lag.Values.All(l => l == 0), Timeouts.Default, "zero lag on all three partitions");
    }

    async Task<long[]> HighWatermarksAsync()
    {
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = _kafka.BootstrapServers, GroupId = "probe" }).Build();
        return await Task.Run(() => Enumerable.Range(0, 3)
            .Select(p => consumer.QueryWatermarkOffsets(new TopicPartition(Topic, p), TimeSpan.FromSeconds(10)).High.Value).ToArray());
    }
}
