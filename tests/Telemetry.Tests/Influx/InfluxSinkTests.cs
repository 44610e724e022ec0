using System.Globalization;
using System.Text.Json;
using IotRealtime.Telemetry.Influx;
using IotRealtime.Telemetry.Sinks;
using Microsoft.Extensions.Logging.Abstractions;

namespace IotRealtime.Telemetry.Tests.Influx;

/// <summary>The InfluxDB sink against a real InfluxDB 1.6 (influxd started per class).</summary>
public sealed class InfluxSinkTests(InfluxFixture influx) : IClassFixture<InfluxFixture>
{
    static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    static ReadingBatch Batch(IEnumerable<Reading> readings, params SourceOffset[] offsets)
    {
        var batch = new ReadingBatch();
        batch.Readings.AddRange(readings);
        batch.Offsets.AddRange(offsets);
        return batch;
    }

    async Task<List<(string Device, string Metric, DateTimeOffset Time, double Value)>> PointsAsync(string database)
    {
        var rows = await influx.Server.SelectAsync(database, "SELECT \"value\" FROM \"telemetry\" GROUP BY \"device\", \"metric\"");
        return rows.Select(r => (r["device"].GetString()!, r["metric"].GetString()!,
                DateTimeOffset.Parse(r["time"].GetString()!, CultureInfo.InvariantCulture), r["value"].GetDouble()))
            .OrderBy(p => p.Item1, StringComparer.Ordinal).ThenBy(p => p.Item2, StringComparer.Ordinal).ThenBy(p => p.Item3).ToList();
    }

    async Task<List<Dictionary<string, JsonElement>>> ParkedAsync(string database) =>
        [.. await influx.Server.SelectAsync(database, "SELECT * FROM \"telemetry_parked\"")];

    [Fact]
    public async Task Readings_become_points_tagged_by_device_and_metric_with_a_float_value_field()
    {
        var db = influx.NewDatabase();
        await using var sink = await influx.StartSinkAsync(db);
        await sink.WriteAsync(Batch(
        [
            new(T0, "d1", "temp", 21.5),
            new(T0.AddSeconds(1), "d1", "temp", 22),
            new(T0, "d1", "pos.lat", -33.25),
            new(T0.AddTicks(1), "d2", "temp", 1e20),
        ], new SourceOffset("mqtt", 0, 4)), CancellationToken.None);

        var points = await PointsAsync(db);
        Assert.Equal(
        [
            ("d1", "pos.lat", T0, -33.25),
            ("d1", "temp", T0, 21.5),
            ("d1", "temp", T0.AddSeconds(1), 22),
            ("d2", "temp", T0.AddTicks(1), 1e20),
        ], points);
        // The value field is a float even for whole numbers, so later fractional values never conflict with it.
        var fieldTypes = await influx.Server.SelectAsync(db, "SHOW FIELD KEYS FROM \"telemetry\"");
        Assert.Equal("float", Assert.Single(fieldTypes)["fieldType"].GetString());
        Assert.Equal(4, sink.PointsWritten);
    }

    [Fact]
    public async Task Names_with_spaces_commas_equals_quotes_backslashes_and_unicode_read_back_unchanged()
    {
        var db = influx.NewDatabase();
        await using var sink = await influx.StartSinkAsync(db, o => o.Measurement = "tele metry,x=1");
        string[] names = ["a b", "a,b", "a=b", "say \"hi\"", "it's", @"back\slash", "température °C", "дат=чик, 1", "🌡️", "#hash", "  lead"];
        await sink.WriteAsync(Batch(names.Select((n, i) => new Reading(T0.AddSeconds(i), n, "m " + n, i))), CancellationToken.None);

        var rows = await influx.Server.SelectAsync(db, "SELECT \"value\" FROM \"tele metry,x=1\" GROUP BY \"device\", \"metric\"");
        var read = rows.Select(r => (r["device"].GetString()!, r["metric"].GetString()!, r["value"].GetDouble())).OrderBy(r => r.Item3).ToList();
        Assert.Equal(names.Select((n, i) => (n, "m " + n, (double)i)).ToList(), read);
    }

    [Fact]
    public async Task NaN_infinity_and_unwritable_names_are_parked_and_the_rest_of_the_batch_is_written()
    {
        var db = influx.NewDatabase();
        await using var sink = await influx.StartSinkAsync(db);
        await sink.WriteAsync(Batch(
        [
            new(T0, "d1", "ok", 1),
            new(T0, "d1", "nan", double.NaN),
            new(T0, "d1", "inf", double.PositiveInfinity),
            new(T0, "bad\\", "m", 2),
            new(T0, "d1", "line\nbreak", 3),
            new(T0.AddSeconds(1), "d1", "ok", 4),
        ], new SourceOffset("mqtt", 0, 6)), CancellationToken.None);

        Assert.Equal([("d1", "ok", T0, 1.0), ("d1", "ok", T0.AddSeconds(1), 4.0)], await PointsAsync(db));
        var parked = await ParkedAsync(db);
        Assert.Equal(4, parked.Count);
        Assert.All(parked, p => Assert.Equal("reading", p["kind"].GetString()));
        var reasons = parked.Select(p => (p["device"].GetString(), p["metric"].GetString(), p["reason"].GetString())).OrderBy(p => p.Item3, StringComparer.Ordinal).ToList();
        Assert.Contains(("d1", "nan", "value is NaN"), reasons);
        Assert.Contains(("d1", "inf", "value is infinite"), reasons);
        Assert.Contains(("bad\\", "m", "device ends with a backslash"), reasons);
        Assert.Contains(("d1", "line\nbreak", "metric contains a line break"), reasons);
        Assert.Equal(4, sink.ReadingsRejected);
        // The batch still counts as stored: its offsets moved on.
        Assert.Equal([new SourceOffset("mqtt", 0, 6)], await sink.LoadOffsetsAsync("g1", ["mqtt"], CancellationToken.None));
    }

    [Fact]
    public async Task Lines_InfluxDB_refuses_are_isolated_parked_and_the_other_lines_stored()
    {
        var db = influx.NewDatabase();
        await using var sink = await influx.StartSinkAsync(db, o => o.MaxPointsPerRequest = 8);
        // Someone else wrote "value" as a string into the 2001 shard: our float lines for 2001 are refused (400).
        var old = new DateTimeOffset(2001, 1, 1, 0, 0, 0, TimeSpan.Zero);
        using (var http = new HttpClient())
        {
            var response = await http.PostAsync(new Uri(influx.Server.Url, $"write?db={db}&precision=s"),
                new StringContent($"telemetry,device=other,metric=x value=\"text\" {old.ToUnixTimeSeconds()}"));
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        }
        var readings = Enumerable.Range(0, 20).Select(i => new Reading(T0.AddSeconds(i), "d1", "m", i)).ToList();
        readings.Insert(5, new Reading(old.AddSeconds(1), "d1", "m", -1));
        readings.Insert(13, new Reading(old.AddSeconds(2), "d2", "m", -2));
        await sink.WriteAsync(Batch(readings, new SourceOffset("mqtt", 0, 22)), CancellationToken.None);

        var stored = (await influx.Server.SelectAsync(db, $"SELECT \"value\" FROM \"telemetry\" WHERE time > '{T0.AddSeconds(-1):O}' AND \"device\" = 'd1'"))
            .Select(r => r["value"].GetDouble()).ToList();
        Assert.Equal(Enumerable.Range(0, 20).Select(i => (double)i), stored);
        var parked = await ParkedAsync(db);
        Assert.Equal(2, parked.Count);
        Assert.All(parked, p =>
        {
            Assert.Equal("refused", p["kind"].GetString());
            Assert.Contains("field type conflict", p["reason"].GetString());
        });
        Assert.Equal(
            [$"telemetry,device=d1,metric=m value=-1 {LineProtocol.ToUnixNanoseconds(old.AddSeconds(1))}", $"telemetry,device=d2,metric=m value=-2 {LineProtocol.ToUnixNanoseconds(old.AddSeconds(2))}"],
            parked.Select(p => p["line"].GetString()!).Order(StringComparer.Ordinal));
        Assert.Equal(2, sink.LinesRefused);
        Assert.Equal([new SourceOffset("mqtt", 0, 22)], await sink.LoadOffsetsAsync("g1", ["mqtt"], CancellationToken.None));
    }

    [Fact]
    public async Task Offsets_are_stored_per_group_and_partition_and_read_back_by_a_new_sink()
    {
        var db = influx.NewDatabase();
        await using (var sink = await influx.StartSinkAsync(db))
        {
            Assert.Empty(await sink.LoadOffsetsAsync("g1", ["mqtt"], CancellationToken.None));
            await sink.WriteAsync(Batch([new(T0, "d1", "m", 1)], new SourceOffset("mqtt", 0, 10), new SourceOffset("mqtt", 3, 7)), CancellationToken.None);
            await sink.WriteAsync(Batch([new(T0.AddSeconds(1), "d1", "m", 2)], new SourceOffset("mqtt", 0, 11), new SourceOffset("other", 0, 5)), CancellationToken.None);
        }
        await using (var other = await influx.StartSinkAsync(db, group: "g2"))
        {
            await other.WriteAsync(Batch([new(T0.AddSeconds(2), "d1", "m", 3)], new SourceOffset("mqtt", 0, 99)), CancellationToken.None);
        }

        await using var restarted = await influx.StartSinkAsync(db);
        Assert.Equal([new SourceOffset("mqtt", 0, 11), new SourceOffset("mqtt", 3, 7)], await restarted.LoadOffsetsAsync("g1", ["mqtt"], CancellationToken.None));
        Assert.Equal([new SourceOffset("mqtt", 0, 11), new SourceOffset("mqtt", 3, 7), new SourceOffset("other", 0, 5)],
            await restarted.LoadOffsetsAsync("g1", ["mqtt", "other"], CancellationToken.None));
        Assert.Equal([new SourceOffset("mqtt", 0, 99)], await restarted.LoadOffsetsAsync("g2", ["mqtt"], CancellationToken.None));
        Assert.Empty(await restarted.LoadOffsetsAsync("g3", ["mqtt"], CancellationToken.None));
    }

    [Fact]
    public async Task A_batch_written_again_after_a_crash_leaves_one_point_per_reading()
    {
        var db = influx.NewDatabase();
        var readings = Enumerable.Range(0, 100).Select(i => new Reading(T0.AddMilliseconds(i * 10), $"d{i % 3}", "m", i * 0.5)).ToList();
        await using (var first = await influx.StartSinkAsync(db))
        {
            await first.WriteAsync(Batch(readings[..60], new SourceOffset("mqtt", 0, 60)), CancellationToken.None);
        }
        // A crash after the points of the next batch but before its offsets: the consumer resumes at 60 and the
        // redelivered records arrive in differently cut batches, overlapping what is already stored.
        await using (var crashed = await influx.StartSinkAsync(db))
        {
            await crashed.WriteAsync(Batch(readings[60..90]), CancellationToken.None);
        }
        await using var resumed = await influx.StartSinkAsync(db);
        Assert.Equal([new SourceOffset("mqtt", 0, 60)], await resumed.LoadOffsetsAsync("g1", ["mqtt"], CancellationToken.None));
        await resumed.WriteAsync(Batch(readings[60..75], new SourceOffset("mqtt", 0, 75)), CancellationToken.None);
        await resumed.WriteAsync(Batch(readings[75..], new SourceOffset("mqtt", 0, 100)), CancellationToken.None);

        var points = await PointsAsync(db);
        Assert.Equal(readings.Select(r => (r.Device, r.Metric, r.Time, r.Value)).OrderBy(p => p.Device, StringComparer.Ordinal).ThenBy(p => p.Time), points);
        var count = await influx.Server.SelectAsync(db, "SELECT count(\"value\") FROM \"telemetry\"");
        Assert.Equal(100, Assert.Single(count)["count"].GetInt64());
    }

    [Fact]
    public async Task A_batch_at_or_below_the_stored_offsets_is_skipped_and_offsets_never_move_back()
    {
        var db = influx.NewDatabase();
        await using (var sink = await influx.StartSinkAsync(db))
        {
            await sink.WriteAsync(Batch([new(T0, "d1", "m", 1)], new SourceOffset("mqtt", 0, 10)), CancellationToken.None);
        }
        // A new sink that never called LoadOffsetsAsync still knows what is stored before it writes.
        await using var again = await influx.StartSinkAsync(db);
        await again.WriteAsync(Batch([new(T0, "d1", "m", 999), new(T0.AddSeconds(5), "d1", "m", 999)], new SourceOffset("mqtt", 0, 10)), CancellationToken.None);
        await again.WriteAsync(Batch([new(T0, "d1", "m", 998)], new SourceOffset("mqtt", 0, 4)), CancellationToken.None);

        Assert.Equal([("d1", "m", T0, 1.0)], await PointsAsync(db));
        Assert.Equal([new SourceOffset("mqtt", 0, 10)], await again.LoadOffsetsAsync("g1", ["mqtt"], CancellationToken.None));
        Assert.Equal(0, again.PointsWritten);
    }

    [Fact]
    public async Task Parked_payloads_are_recorded_with_their_reason_and_position()
    {
        var db = influx.NewDatabase();
        await using var sink = await influx.StartSinkAsync(db);
        var batch = Batch([new(T0, "d1", "m", 1)], new SourceOffset("mqtt", 2, 42));
        // Two records within one Kafka millisecond stay two points.
        batch.Parked.Add(new ParkedPayload("mqtt", 2, 40, T0, "d1", "devices/d1/x", "not json"u8.ToArray(), "payload is not JSON"));
        batch.Parked.Add(new ParkedPayload("mqtt", 2, 41, T0, null, "devices/d1/y", [0xff, 0x00], "payload is not JSON"));
        await sink.WriteAsync(batch, CancellationToken.None);

        var parked = (await ParkedAsync(db)).OrderBy(p => p["offset"].GetInt64()).ToList();
        Assert.Equal(2, parked.Count);
        Assert.Equal(("payload", "mqtt", "2", 40L, "d1", "devices/d1/x", "not json", "payload is not JSON"),
            (parked[0]["kind"].GetString(), parked[0]["topic"].GetString(), parked[0]["partition"].GetString(), parked[0]["offset"].GetInt64(),
             parked[0]["device"].GetString(), parked[0]["mqtt_topic"].GetString(),
             System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(parked[0]["payload_base64"].GetString()!)), parked[0]["reason"].GetString()));
        Assert.Equal([0xff, 0x00], Convert.FromBase64String(parked[1]["payload_base64"].GetString()!));
        Assert.Equal(2, sink.PayloadsParked);
    }

    [Fact]
    public async Task Large_batches_go_in_several_requests_gzip_compressed_when_asked()
    {
        var db = influx.NewDatabase();
        await using var sink = await influx.StartSinkAsync(db, o =>
        {
            o.Gzip = true;
            o.MaxPointsPerRequest = 1_000;
            o.MaxConcurrentRequests = 3;
        });
        var before = sink.Requests;
        var readings = Enumerable.Range(0, 10_500).Select(i => new Reading(T0.AddMilliseconds(i), $"d{i % 10}", $"m{i % 7}", i)).ToList();
        await sink.WriteAsync(Batch(readings, new SourceOffset("mqtt", 0, 10_500)), CancellationToken.None);

        var count = await influx.Server.SelectAsync(db, "SELECT count(\"value\"), sum(\"value\") FROM \"telemetry\"");
        Assert.Equal(10_500, Assert.Single(count)["count"].GetInt64());
        Assert.Equal(readings.Sum(r => r.Value), count[0]["sum"].GetDouble());
        // 11 point requests, one for the offsets, one offsets lookup before the first write.
        Assert.Equal(13, sink.Requests - before);
    }

    [Fact]
    public async Task A_missing_database_is_an_error_naming_the_setting_when_creating_it_is_off()
    {
        var options = influx.Options("nosuchdb", o => o.CreateDatabase = false);
        await using var sink = new InfluxSink(options, "g1", TimeProvider.System, NullLogger<InfluxSink>.Instance);
        var error = await Assert.ThrowsAsync<InfluxException>(() => sink.InitializeAsync(CancellationToken.None));
        Assert.False(error.Transient);
        Assert.Contains("Telemetry:Influx:Database", error.Message);

        var write = await Assert.ThrowsAsync<InfluxException>(() => sink.WriteAsync(Batch([new(T0, "d", "m", 1)]), CancellationToken.None));
        Assert.Contains("database not found", write.Message);
        Assert.Equal(404, write.StatusCode);
    }

    [Fact]
    public async Task An_unreachable_server_is_retried_then_reported_as_transient()
    {
        // A port that was free a moment ago: nothing listens there.
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        var port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var options = new InfluxSinkOptions { Url = $"http://127.0.0.1:{port}", Database = "x", RetryForMs = 300, InitialBackoffMs = 20, MaxBackoffMs = 50 };
        await using var sink = new InfluxSink(options, "g1", TimeProvider.System, NullLogger<InfluxSink>.Instance);

        var error = await Assert.ThrowsAsync<InfluxException>(() => sink.WriteAsync(Batch([new(T0, "d", "m", 1)]), CancellationToken.None));
        Assert.True(error.Transient);
        Assert.Contains("RetryForMs", error.Message);
        Assert.True(sink.Retries >= 2, $"retried {sink.Retries} times");
    }

    [Fact]
    public void Bad_options_are_refused_naming_each_key()
    {
        var options = new InfluxSinkOptions { Url = "ftp://x", Version = 3, Measurement = "#m", MaxPointsPerRequest = 0, Username = "u" };
        var error = Assert.Throws<ArgumentException>(() => new InfluxSink(options, "g", TimeProvider.System, NullLogger<InfluxSink>.Instance));
        foreach (var key in new[] { "Telemetry:Influx:Url", "Telemetry:Influx:Version", "Telemetry:Influx:Measurement", "Telemetry:Influx:MaxPointsPerRequest", "Telemetry:Influx:Username" })
        {
            Assert.Contains(key, error.Message);
        }
    }
}
