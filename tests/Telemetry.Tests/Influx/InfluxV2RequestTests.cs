using IotRealtime.Telemetry.Influx;
using IotRealtime.Telemetry.Sinks;
using Microsoft.Extensions.Logging.Abstractions;

namespace IotRealtime.Telemetry.Tests.Influx;

/// <summary>
/// The shape of InfluxDB 2.x requests (paths, query parameters, Token authorization, Flux) and the handling of 5xx/401
/// answers, against a recording loopback server: InfluxDB 2 is not installed here. The real round trip is
/// <see cref="InfluxSinkTests"/> and <see cref="InfluxSinkContractTests"/> against InfluxDB 1.6.
/// </summary>
public sealed class InfluxV2RequestTests : IAsyncLifetime
{
    static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
    RecordingHttpServer _server = null!;

    public async Task InitializeAsync() => _server = await RecordingHttpServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    InfluxSink Sink(Action<InfluxSinkOptions>? configure = null)
    {
        var options = new InfluxSinkOptions
        {
            Url = _server.Url.ToString(), Version = 2, Org = "my org", Bucket = "tele/metry", Token = "s3cr3t",
            RetryForMs = 5_000, InitialBackoffMs = 10, MaxBackoffMs = 20,
        };
        configure?.Invoke(options);
        return new InfluxSink(options, "g1", TimeProvider.System, NullLogger<InfluxSink>.Instance);
    }

    const string OffsetsCsv = ",result,table,_start,_stop,_time,_value,_field,_measurement,consumer_group,partition,topic\r\n"
        + ",_result,0,1970-01-01T00:00:00Z,2026-12-01T00:00:00Z,2026-11-30T12:00:00.5Z,42,next_offset,telemetry_offsets,g1,0,mqtt\r\n"
        + ",_result,1,1970-01-01T00:00:00Z,2026-12-01T00:00:00Z,2026-11-30T12:00:00.5Z,7,next_offset,telemetry_offsets,g1,3,mqtt\r\n\r\n";

    [Fact]
    public async Task Initialize_looks_the_bucket_up_in_the_organisation_with_the_token()
    {
        _server.Enqueue(200, """{"buckets":[{"id":"1","name":"tele/metry"}]}""");
        await using var sink = Sink();
        await sink.InitializeAsync(CancellationToken.None);

        var request = Assert.Single(_server.Requests);
        Assert.Equal(("GET", "/api/v2/buckets?org=my%20org&name=tele%2Fmetry"), (request.Method, request.PathAndQuery));
        Assert.Equal("Token s3cr3t", request.Headers["Authorization"]);
    }

    [Fact]
    public async Task A_missing_bucket_or_a_bad_token_is_an_error_naming_the_setting()
    {
        _server.Enqueue(200, """{"buckets":[]}""");
        await using var sink = Sink();
        var missing = await Assert.ThrowsAsync<InfluxException>(() => sink.InitializeAsync(CancellationToken.None));
        Assert.Contains("Telemetry:Influx:Bucket", missing.Message);

        _server.Enqueue(401, """{"code":"unauthorized","message":"unauthorized access"}""");
        var unauthorized = await Assert.ThrowsAsync<InfluxException>(() => sink.InitializeAsync(CancellationToken.None));
        Assert.Contains("Telemetry:Influx:Token", unauthorized.Message);
        Assert.Contains("unauthorized access", unauthorized.Message);
        Assert.Equal(401, unauthorized.StatusCode);
        Assert.False(unauthorized.Transient);
    }

    [Fact]
    public async Task Writes_go_to_api_v2_write_with_org_bucket_precision_and_token_and_offsets_after_the_points()
    {
        _server.Enqueue(200, "", "text/csv"); // the offsets lookup: nothing stored yet
        await using var sink = Sink(o => o.Gzip = true);
        var batch = new ReadingBatch();
        batch.Readings.Add(new Reading(T0, "d 1", "temp", 21.5));
        batch.Offsets.Add(new SourceOffset("mqtt", 0, 1));
        await sink.WriteAsync(batch, CancellationToken.None);

        var requests = _server.Requests.ToArray();
        Assert.Equal(3, requests.Length);
        Assert.Equal(("POST", "/api/v2/query?org=my%20org"), (requests[0].Method, requests[0].PathAndQuery));
        Assert.Contains("application/json", requests[0].Headers["Content-Type"]);
        using (var query = System.Text.Json.JsonDocument.Parse(requests[0].Body))
        {
            Assert.Equal("flux", query.RootElement.GetProperty("type").GetString());
            Assert.Equal("from(bucket: \"tele/metry\") |> range(start: 0) |> filter(fn: (r) => r._measurement == \"telemetry_offsets\" and "
                + "r._field == \"next_offset\" and r.consumer_group == \"g1\") |> group(columns: [\"topic\", \"partition\"]) |> last()",
                query.RootElement.GetProperty("query").GetString());
        }

        Assert.Equal(("POST", "/api/v2/write?org=my%20org&bucket=tele%2Fmetry&precision=ns"), (requests[1].Method, requests[1].PathAndQuery));
        Assert.Equal("Token s3cr3t", requests[1].Headers["Authorization"]);
        Assert.Equal("gzip", requests[1].Headers["Content-Encoding"]);
        Assert.Equal($"telemetry,device=d\\ 1,metric=temp value=21.5 {LineProtocol.ToUnixNanoseconds(T0)}\n", requests[1].Body);
        Assert.StartsWith("telemetry_offsets,consumer_group=g1,partition=0,topic=mqtt next_offset=1i ", requests[2].Body);
    }

    [Fact]
    public async Task Offsets_are_read_from_the_flux_answer()
    {
        _server.Enqueue(200, OffsetsCsv, "text/csv");
        await using var sink = Sink();
        var offsets = await sink.LoadOffsetsAsync("g1", ["mqtt"], CancellationToken.None);
        Assert.Equal([new SourceOffset("mqtt", 0, 42), new SourceOffset("mqtt", 3, 7)], offsets);
    }

    [Fact]
    public async Task Server_errors_are_retried_with_backoff_until_the_write_is_taken()
    {
        _server.Enqueue(200, OffsetsCsv, "text/csv");
        _server.Enqueue(503, """{"message":"overloaded"}""");
        _server.Enqueue(500, """{"message":"internal"}""");
        await using var sink = Sink();
        var batch = new ReadingBatch();
        batch.Readings.Add(new Reading(T0, "d1", "temp", 1));
        batch.Offsets.Add(new SourceOffset("mqtt", 0, 43));
        await sink.WriteAsync(batch, CancellationToken.None);

        var writes = _server.Requests.Where(r => r.PathAndQuery.StartsWith("/api/v2/write", StringComparison.Ordinal)).ToArray();
        Assert.Equal(4, writes.Length); // 503, 500, 204 for the points, then the offsets
        Assert.Equal(writes[0].Body, writes[2].Body);
        Assert.Contains("next_offset=43i", writes[3].Body);
        Assert.Equal(2, sink.Retries);
    }

    [Fact]
    public async Task A_server_that_keeps_failing_leaves_the_offsets_unwritten()
    {
        _server.Enqueue(200, "", "text/csv");
        _server.Default = _ => (503, """{"message":"down"}""", "application/json");
        await using var sink = Sink(o => o.RetryForMs = 200);
        var batch = new ReadingBatch();
        batch.Readings.Add(new Reading(T0, "d1", "temp", 1));
        batch.Offsets.Add(new SourceOffset("mqtt", 0, 1));
        var error = await Assert.ThrowsAsync<InfluxException>(() => sink.WriteAsync(batch, CancellationToken.None));
        Assert.True(error.Transient);
        Assert.Contains("503 down", error.Message);
        Assert.DoesNotContain(_server.Requests, r => r.Body.Contains("telemetry_offsets,", StringComparison.Ordinal));
    }
}
