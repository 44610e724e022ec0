using System.Globalization;
using System.Net;
using System.Text.Json;
using IotRealtime.Telemetry.History;
using IotRealtime.Telemetry.Sinks;

namespace IotRealtime.Telemetry.Tests.History;

/// <summary>GET /api/history, /devices and /metrics through a running TelemetryHost over a real PostgreSQL.</summary>
public sealed class HistoryApiTests(HistoryApiTests.Data data) : IClassFixture<HistoryApiTests.Data>
{
    // Yesterday 10:00 UTC: recent enough that the sink's retention keeps the day's partition.
    static readonly DateTimeOffset T0 = new DateTimeOffset(DateTime.UtcNow.Date, TimeSpan.Zero).AddDays(-1).AddHours(10);

    /// <summary>Known readings: a hand-checked few on "hand/temp", and about 3 h of a 7 s series on "d1/temp".</summary>
    public sealed class Data : IAsyncLifetime
    {
        public HistoryFixture Fixture { get; } = new();

        public List<Reading> Series { get; } = [];

        public async Task InitializeAsync()
        {
            await Fixture.InitializeAsync();
            // Quarter steps keep every sum exact in binary floating point, so raw and roll-up sums compare with ==.
            for (var i = 0; i < 1600; i++) Series.Add(new Reading(T0.AddSeconds(-95 + i * 7).AddMilliseconds(250), "d1", "temp", (i * 37 % 101) * 0.25 - 10));
            List<Reading> readings =
            [
                .. Series,
                new(T0.AddSeconds(5), "hand", "temp", 1),
                new(T0.AddSeconds(20), "hand", "temp", 3),
                new(T0.AddSeconds(50), "hand", "temp", 2),
                new(T0.AddSeconds(70), "hand", "temp", 10),
                new(T0.AddSeconds(119.999), "hand", "temp", -4.5),
                new(T0.AddSeconds(120), "hand", "temp", 100),
                new(T0, "hand", "hum", 50),
                new(T0, "d2", "pos.lat", 1),
                new(T0, "d 3,é", "x=y", 2),
            ];
            await Fixture.StoreAsync(readings);
        }

        public Task DisposeAsync() => Fixture.DisposeAsync();
    }

    HttpClient Http => data.Fixture.Http;

    static string Iso(DateTimeOffset t) => Uri.EscapeDataString(t.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));

    async Task<JsonElement> GetJsonAsync(string url, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await Http.GetAsync(url);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{url}: {(int)response.StatusCode} {body}");
        Assert.Equal("*", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    static List<(DateTimeOffset T, double Min, double Max, double Avg, double Last, long Count)> Buckets(JsonElement answer) =>
        answer.GetProperty("buckets").EnumerateArray().Select(b => (
            DateTimeOffset.Parse(b.GetProperty("t").GetString()!, CultureInfo.InvariantCulture),
            b.GetProperty("min").GetDouble(), b.GetProperty("max").GetDouble(), b.GetProperty("avg").GetDouble(),
            b.GetProperty("last").GetDouble(), b.GetProperty("count").GetInt64())).ToList();

    /// <summary>The reference: buckets computed in memory from the readings themselves.</summary>
    static List<(DateTimeOffset T, double Min, double Max, double Avg, double Last, long Count)> Expected(IEnumerable<Reading> readings, DateTimeOffset from, DateTimeOffset to, long stepSeconds) =>
        readings.Where(r => r.Time >= from && r.Time < to)
            .GroupBy(r => r.Time.ToUnixTimeMilliseconds() / 1000 / stepSeconds * stepSeconds)
            .OrderBy(g => g.Key)
            .Select(g => (DateTimeOffset.FromUnixTimeSeconds(g.Key), g.Min(r => r.Value), g.Max(r => r.Value), g.Sum(r => r.Value) / g.Count(),
                g.MaxBy(r => r.Time).Value, (long)g.Count()))
            .ToList();

    [Fact]
    public async Task Buckets_hold_min_max_avg_last_and_count_of_their_readings()
    {
        var answer = await GetJsonAsync($"api/history?device=hand&metric=temp&from={Iso(T0)}&to={Iso(T0.AddMinutes(3))}&step=60");

        Assert.Equal("hand", answer.GetProperty("device").GetString());
        Assert.Equal("temp", answer.GetProperty("metric").GetString());
        Assert.Equal(60, answer.GetProperty("step").GetInt64());
        Assert.Equal(
        [
            (T0, 1, 3, 2, 2, 3),
            (T0.AddMinutes(1), -4.5, 10, 2.75, -4.5, 2),
            (T0.AddMinutes(2), 100, 100, 100, 100, 1),
        ], Buckets(answer));
    }

    [Fact]
    public async Task The_range_is_half_open_and_may_cut_through_buckets()
    {
        var answer = await GetJsonAsync($"api/history?device=hand&metric=temp&from={Iso(T0.AddSeconds(20))}&to={Iso(T0.AddSeconds(120))}&step=1m");
        Assert.Equal([(T0, 2, 3, 2.5, 2, 2), (T0.AddMinutes(1), -4.5, 10, 2.75, -4.5, 2)], Buckets(answer));
    }

    [Theory]
    [InlineData(0, 11_100, 60)]        // whole minutes: minute roll-up
    [InlineData(-95, 11_100, 60)]      // ragged ends: raw seconds + minute roll-up
    [InlineData(-95, 11_100, 3600)]    // hours: hour roll-up, minutes and seconds at the ends
    [InlineData(-3601, 11_117, 7200)]
    [InlineData(13, 10_999, 300)]
    [InlineData(-95, 11_100, 30)]      // not whole minutes: raw only
    [InlineData(-95, 11_100, 86400)]
    public async Task Roll_up_answers_equal_raw_answers_and_the_in_memory_reference(int fromSeconds, int toSeconds, int step)
    {
        var from = T0.AddSeconds(fromSeconds);
        var to = T0.AddSeconds(toSeconds);
        var answer = await GetJsonAsync($"api/history?device=d1&metric=temp&from={Iso(from)}&to={Iso(to)}&step={step}");
        var api = Buckets(answer);

        var expected = Expected(data.Series, from, to, step);
        Assert.Equal(expected, api);
        var raw = await data.Fixture.RawAsync(new HistoryQuery("d1", "temp", from, to, TimeSpan.FromSeconds(step)));
        Assert.Equal(expected, raw.Select(b => (b.Start, b.Min, b.Max, b.Avg, b.Last, b.Count)).ToList());
        Assert.Equal(data.Series.Count(r => r.Time >= from && r.Time < to), api.Sum(b => b.Count));
    }

    [Fact]
    public async Task Unknown_devices_and_metrics_give_no_buckets()
    {
        var answer = await GetJsonAsync($"api/history?device=nobody&metric=temp&from={Iso(T0)}&to={Iso(T0.AddHours(1))}");
        Assert.Empty(answer.GetProperty("buckets").EnumerateArray());
    }

    [Fact]
    public async Task Without_step_a_chart_sized_step_is_chosen()
    {
        var answer = await GetJsonAsync($"api/history?device=d1&metric=temp&from={Iso(T0)}&to={Iso(T0.AddHours(3))}");
        Assert.Equal(60, answer.GetProperty("step").GetInt64());
        Assert.Equal(180, Buckets(answer).Count);
    }

    [Theory]
    [InlineData("metric=temp", "device is required")]
    [InlineData("device=d1", "metric is required")]
    [InlineData("device=d1&metric=temp&from=yesterday", "from 'yesterday' is not an ISO 8601 time")]
    [InlineData("device=d1&metric=temp&to=12", "to '12' is not an ISO 8601 time")]
    [InlineData("device=d1&metric=temp&from=2026-11-30T11:00:00Z&to=2026-11-30T10:00:00%2B01:00", "must be before to")]
    [InlineData("device=d1&metric=temp&from=2026-11-30T11:00:00Z&to=2026-11-30T10:00:00+01:00", "must be before to")]
    [InlineData("device=d1&metric=temp&step=0", "step '0' is not")]
    [InlineData("device=d1&metric=temp&step=-5", "step '-5' is not")]
    [InlineData("device=d1&metric=temp&step=1.5", "step '1.5' is not")]
    [InlineData("device=d1&metric=temp&step=5w", "step '5w' is not")]
    [InlineData("device=d1&metric=temp&from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z&step=60", "at most 10000 are allowed (use a step of at least 2886 s)")]
    [InlineData("device=d1&metric=temp&limit=3", "'limit' is not a parameter here")]
    [InlineData("device=d1&device=d2&metric=temp", "device is given 2 times")]
    public async Task Bad_parameters_are_refused_with_400_naming_the_problem(string query, string message)
    {
        var answer = await GetJsonAsync("api/history?" + query, HttpStatusCode.BadRequest);
        Assert.Contains(message, answer.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Exactly_ten_thousand_buckets_are_allowed()
    {
        var answer = await GetJsonAsync($"api/history?device=d1&metric=temp&from={Iso(T0)}&to={Iso(T0.AddSeconds(10_000))}&step=1");
        Assert.Equal(1, answer.GetProperty("step").GetInt64());
        Assert.Equal(data.Series.Count(r => r.Time >= T0 && r.Time < T0.AddSeconds(10_000)), Buckets(answer).Count);
    }

    [Fact]
    public async Task Devices_and_metrics_are_listed_with_paging()
    {
        var all = await GetJsonAsync("api/history/devices");
        Assert.Equal(["d 3,é", "d1", "d2", "hand"], all.GetProperty("devices").EnumerateArray().Select(d => d.GetString()));
        Assert.False(all.GetProperty("more").GetBoolean());

        var first = await GetJsonAsync("api/history/devices?limit=2");
        Assert.Equal(["d 3,é", "d1"], first.GetProperty("devices").EnumerateArray().Select(d => d.GetString()));
        Assert.True(first.GetProperty("more").GetBoolean());
        var next = await GetJsonAsync("api/history/devices?limit=2&after=d1");
        Assert.Equal(["d2", "hand"], next.GetProperty("devices").EnumerateArray().Select(d => d.GetString()));
        Assert.False(next.GetProperty("more").GetBoolean());

        var metrics = await GetJsonAsync("api/history/metrics?device=hand");
        Assert.Equal(["hum", "temp"], metrics.GetProperty("metrics").EnumerateArray().Select(d => d.GetString()));
        var escaped = await GetJsonAsync("api/history/metrics?device=" + Uri.EscapeDataString("d 3,é"));
        Assert.Equal(["x=y"], escaped.GetProperty("metrics").EnumerateArray().Select(d => d.GetString()));
        Assert.Empty((await GetJsonAsync("api/history/metrics?device=nobody")).GetProperty("metrics").EnumerateArray());

        Assert.Contains("device is required", (await GetJsonAsync("api/history/metrics", HttpStatusCode.BadRequest)).GetProperty("error").GetString());
        Assert.Contains("limit '0' must be", (await GetJsonAsync("api/history/devices?limit=0", HttpStatusCode.BadRequest)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_dashboard_on_another_origin_passes_the_preflight()
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, "api/history?device=d1&metric=temp");
        request.Headers.Add("Origin", "http://dashboard.example");
        request.Headers.Add("Access-Control-Request-Method", "GET");
        request.Headers.Add("Access-Control-Request-Headers", "x-requested-with");
        using var response = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("*", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("GET", response.Headers.GetValues("Access-Control-Allow-Methods").Single());
        Assert.Equal("x-requested-with", response.Headers.GetValues("Access-Control-Allow-Headers").Single());
    }
}
