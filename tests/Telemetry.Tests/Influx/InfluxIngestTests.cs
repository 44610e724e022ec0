using System.Globalization;
using IotRealtime.Telemetry.Tests.Infrastructure;
using IotRealtime.Telemetry.Tests.Ingest;

namespace IotRealtime.Telemetry.Tests.Influx;

/// <summary>Kafka (librdkafka's mock cluster) → the telemetry service → a real InfluxDB 1.6, in-process and as a killed process.</summary>
[Collection(PostgresCollection.Name)]
public sealed class InfluxIngestTests(PostgresFixture postgres, InfluxFixture influx) : IClassFixture<InfluxFixture>
{
    const string Topic = "mqtt";
    const int SigKillExitCode = 137;

    static (string, string)[] InfluxSettings(InfluxServer server, string database) =>
    [
        ("Telemetry:Influx:Url", server.Url.ToString()),
        ("Telemetry:Influx:Version", "1"),
        ("Telemetry:Influx:Database", database),
    ];

    async Task<List<(long Ticks, string Device, string Metric, double Value)>> InfluxReadingsAsync(string database)
    {
        var rows = await influx.Server.SelectAsync(database, "SELECT \"value\" FROM \"telemetry\" GROUP BY \"device\", \"metric\"");
        return rows.Select(r => (DateTimeOffset.Parse(r["time"].GetString()!, CultureInfo.InvariantCulture).UtcTicks,
            r["device"].GetString()!, r["metric"].GetString()!, r["value"].GetDouble())).ToList();
    }

    async Task<long> InfluxCountAsync(string database)
    {
        try
        {
            var rows = await influx.Server.SelectAsync(database, "SELECT count(\"value\") FROM \"telemetry\"");
            return rows.Count == 0 ? 0 : rows[0]["count"].GetInt64();
        }
        catch (InvalidOperationException)
        {
            return 0; // the database does not exist yet
        }
    }

    async Task WaitForPointsAsync(string database, long expected, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        long last;
        while ((last = await InfluxCountAsync(database)) < expected)
        {
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"Timed out waiting for {what}: {last} of {expected} points in InfluxDB.");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Records_from_Kafka_land_in_InfluxDB_and_PostgreSQL_alike_with_offsets_at_the_end_of_each_partition()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic(Topic, partitions: 2);
        var connectionString = await postgres.NewDatabaseAsync();
        var database = influx.NewDatabase();
        var records = Enumerable.Range(0, 400).Select(i => TelemetryRecords.Numbered(i)).ToList();
        var messages = records.Select(r => r.Message).ToList();
        messages.Insert(100, TelemetryRecords.Publish("dev-bad", "not json", TelemetryRecords.Epoch));
        var expected = records.SelectMany(r => r.Readings).ToList();

        await TelemetryRecords.ProduceAsync(kafka.BootstrapServers, Topic, messages.Take(200));
        await using (var host = await TelemetryHost.StartAsync(IngestEndToEndTests.Configuration(kafka.BootstrapServers, connectionString,
            [("Telemetry:Sinks", "postgres,influxdb"), .. InfluxSettings(influx.Server, database)])))
        {
            await TelemetryRecords.ProduceAsync(kafka.BootstrapServers, Topic, messages.Skip(200));
            await WaitForPointsAsync(database, expected.Count, Timeouts.Default, "every reading in InfluxDB");
            await TelemetryRecords.WaitForRowsAsync(connectionString, expected.Count, Timeouts.Default, "every reading in PostgreSQL");
            await Wait.UntilAsync(() => InfluxOffsetSum(database).Result == messages.Count, Timeouts.Default, "InfluxDB offsets at the end of both partitions");

            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{host.HttpPort}") };
            var metrics = await http.GetStringAsync("/metrics");
            Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"iotrealtime_telemetry_readings_written_total{{sink=\"influxdb\"}} {expected.Count}\n"), metrics, StringComparison.Ordinal);
            Assert.Contains("iotrealtime_telemetry_influx_payloads_parked_total 1\n", metrics, StringComparison.Ordinal);
        }

        Assert.Equal(TelemetryRecords.Sorted(expected), TelemetryRecords.Sorted(await InfluxReadingsAsync(database)));
        await TelemetryRecords.AssertExactlyAsync(connectionString, expected);
        var parked = await influx.Server.SelectAsync(database, "SELECT \"reason\", \"device\" FROM \"telemetry_parked\" WHERE \"kind\" = 'payload'");
        Assert.Equal("dev-bad", Assert.Single(parked)["device"].GetString());
    }

    [Fact]
    public async Task With_InfluxDB_as_the_only_sink_the_history_API_answers_from_it()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic(Topic, partitions: 2);
        var database = influx.NewDatabase();
        var records = Enumerable.Range(0, 300).Select(i => TelemetryRecords.Numbered(i)).ToList();
        await TelemetryRecords.ProduceAsync(kafka.BootstrapServers, Topic, records.Select(r => r.Message));
        await using var host = await TelemetryHost.StartAsync(IngestEndToEndTests.Configuration(kafka.BootstrapServers, "",
            [("Telemetry:Sinks", "influxdb"), .. InfluxSettings(influx.Server, database)]));
        await WaitForPointsAsync(database, records.Count * 3, Timeouts.Default, "every reading in InfluxDB");

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{host.HttpPort}") };
        var from = TelemetryRecords.Epoch;
        var answer = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(
            $"/api/history?device=dev-1&metric=seq&from={from:yyyy-MM-ddTHH:mm:ssZ}&to={from.AddSeconds(10):yyyy-MM-ddTHH:mm:ssZ}&step=1")).RootElement;
        // dev-1 sends seq 1, 11, 21, ... every 100 ms: ten readings per second.
        var buckets = answer.GetProperty("buckets").EnumerateArray().Select(b => (
            b.GetProperty("t").GetDateTimeOffset(), b.GetProperty("min").GetDouble(), b.GetProperty("max").GetDouble(),
            b.GetProperty("avg").GetDouble(), b.GetProperty("last").GetDouble(), b.GetProperty("count").GetInt64())).ToList();
        Assert.Equal(Enumerable.Range(0, 3).Select(s => (from.AddSeconds(s), s * 100 + 1.0, s * 100 + 91.0, s * 100 + 46.0, s * 100 + 91.0, 10L)), buckets);
        var devices = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/history/devices")).RootElement;
        Assert.Equal(Enumerable.Range(0, 10).Select(d => $"dev-{d}"), devices.GetProperty("devices").EnumerateArray().Select(d => d.GetString()));
        var metrics = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/history/metrics?device=dev-1")).RootElement;
        Assert.Equal(["env.ok", "env.temp", "seq"], metrics.GetProperty("metrics").EnumerateArray().Select(d => d.GetString()));
    }

    async Task<long> InfluxOffsetSum(string database)
    {
        var rows = await influx.Server.SelectAsync(database,
            "SELECT last(\"next_offset\") FROM \"telemetry_offsets\" WHERE \"consumer_group\" = 'iotrealtime-telemetry' AND \"topic\" = 'mqtt' GROUP BY \"partition\"");
        return rows.Sum(r => r["last"].GetInt64());
    }

    [Fact]
    public async Task Killed_after_an_InfluxDB_write_before_the_Kafka_commit_it_restarts_without_loss_or_duplicates()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic(Topic, partitions: 2);
        var database = influx.NewDatabase();
        var records = Enumerable.Range(0, 1500).Select(i => TelemetryRecords.Numbered(i)).ToList();
        await TelemetryRecords.ProduceAsync(kafka.BootstrapServers, Topic, records.Select(r => r.Message));

        (string, string)[] common = [("Telemetry:Sinks", "influxdb"), ("Telemetry:BatchMaxReadings", "150"), ("Telemetry:Kafka:SessionTimeoutMs", "2000"), .. InfluxSettings(influx.Server, database)];
        long storedBefore = 0;
        foreach (var crashAfterBatch in new[] { 3, 2 })
        {
            await using var crashing = TelemetryProcess.Start(IngestEndToEndTests.Settings(kafka.BootstrapServers, "", [.. common,
                ("Telemetry:Faults:ExitAfterDbCommitOnBatch", crashAfterBatch.ToString(CultureInfo.InvariantCulture))]));
            var exitCode = await crashing.WaitForExitAsync(Timeouts.Default * 2);
            Assert.True(exitCode == SigKillExitCode, $"exit code {exitCode}, expected SIGKILL's {SigKillExitCode}. Output:\n{crashing.Output}");
            var stored = await InfluxCountAsync(database);
            Assert.InRange(stored, storedBefore + 1, records.Count * 3 - 1);
            storedBefore = stored;
        }

        await using (var survivor = TelemetryProcess.Start(IngestEndToEndTests.Settings(kafka.BootstrapServers, "", common)))
        {
            await WaitForPointsAsync(database, records.Count * 3, Timeouts.Default * 2, "every reading after the crashes");
            await Wait.UntilAsync(() => InfluxOffsetSum(database).Result == records.Count, Timeouts.Default, "InfluxDB offsets at the end of both partitions");
        }
        Assert.Equal(TelemetryRecords.Sorted(records.SelectMany(r => r.Readings)), TelemetryRecords.Sorted(await InfluxReadingsAsync(database)));
    }
}
