using IotRealtime.Telemetry.History;
using IotRealtime.Telemetry.Sinks;

namespace IotRealtime.Telemetry.Tests.History;

/// <summary>
/// What every <see cref="IHistoryStore"/> must answer for readings its sink stored, run against each store: a derived
/// class stores the readings through the real sink into fresh storage and returns the store over it.
/// </summary>
public abstract class HistoryStoreContract
{
    protected static readonly DateTimeOffset T0 = new DateTimeOffset(DateTime.UtcNow.Date, TimeSpan.Zero).AddDays(-1).AddHours(10);

    /// <summary>Stores <paramref name="readings"/> through the sink (in several batches) and returns the store over them.</summary>
    protected abstract Task<IHistoryStore> StoreAsync(IReadOnlyList<Reading> readings);

    static List<Reading> Series() =>
        Enumerable.Range(0, 900).Select(i => new Reading(T0.AddSeconds(-95 + i * 13).AddMilliseconds(500), "d1", "temp", (i * 37 % 101) * 0.25 - 10)).ToList();

    static readonly Reading[] Hand =
    [
        new(T0.AddSeconds(5), "hand", "temp", 1),
        new(T0.AddSeconds(20), "hand", "temp", 3),
        new(T0.AddSeconds(50), "hand", "temp", 2),
        new(T0.AddSeconds(70), "hand", "temp", 10),
        new(T0.AddSeconds(119.999), "hand", "temp", -4.5),
        new(T0.AddSeconds(120), "hand", "temp", 100),
        new(T0, "hand", "hum", 50),
        new(T0, "d 3,é", "x=y", 2),
    ];

    static List<(DateTimeOffset, double, double, double, double, long)> Expected(IEnumerable<Reading> readings, DateTimeOffset from, DateTimeOffset to, long step) =>
        readings.Where(r => r.Time >= from && r.Time < to)
            .GroupBy(r => r.Time.ToUnixTimeMilliseconds() / 1000 / step * step)
            .OrderBy(g => g.Key)
            .Select(g => (DateTimeOffset.FromUnixTimeSeconds(g.Key), g.Min(r => r.Value), g.Max(r => r.Value), g.Sum(r => r.Value) / g.Count(), g.MaxBy(r => r.Time).Value, (long)g.Count()))
            .ToList();

    static List<(DateTimeOffset, double, double, double, double, long)> Tuples(IEnumerable<HistoryBucket> buckets) =>
        buckets.Select(b => (b.Start, b.Min, b.Max, b.Avg, b.Last, b.Count)).ToList();

    [Fact]
    public async Task Buckets_hold_min_max_avg_last_and_count()
    {
        var store = await StoreAsync(Hand);
        var buckets = await store.QueryAsync(new HistoryQuery("hand", "temp", T0, T0.AddMinutes(3), TimeSpan.FromMinutes(1)), CancellationToken.None);
        Assert.Equal([(T0, 1, 3, 2, 2, 3), (T0.AddMinutes(1), -4.5, 10, 2.75, -4.5, 2), (T0.AddMinutes(2), 100, 100, 100, 100, 1)], Tuples(buckets));
        var cut = await store.QueryAsync(new HistoryQuery("hand", "temp", T0.AddSeconds(20), T0.AddSeconds(120), TimeSpan.FromMinutes(1)), CancellationToken.None);
        Assert.Equal([(T0, 2, 3, 2.5, 2, 2), (T0.AddMinutes(1), -4.5, 10, 2.75, -4.5, 2)], Tuples(cut));
        Assert.Empty(await store.QueryAsync(new HistoryQuery("nobody", "temp", T0, T0.AddHours(1), TimeSpan.FromMinutes(1)), CancellationToken.None));
    }

    [Fact]
    public async Task Every_step_gives_the_buckets_of_the_reference()
    {
        var series = Series();
        var store = await StoreAsync(series);
        foreach (var (from, to, step) in new[] { (-95, 11_700, 60), (-3601, 11_717, 3600), (13, 10_999, 300), (-95, 11_700, 30), (-95, 11_700, 86400), (7, 4000, 7) })
        {
            var query = new HistoryQuery("d1", "temp", T0.AddSeconds(from), T0.AddSeconds(to), TimeSpan.FromSeconds(step));
            Assert.Equal(Expected(series, query.From, query.To, step), Tuples(await store.QueryAsync(query, CancellationToken.None)));
        }
    }

    [Fact]
    public async Task Devices_and_metrics_are_listed_in_order_with_paging()
    {
        var store = await StoreAsync([.. Hand, new(T0, "d1", "temp", 1), new(T0, "d2", "pos.lat", 1)]);
        Assert.Equal(["d 3,é", "d1", "d2", "hand"], await store.DevicesAsync(null, 100, CancellationToken.None));
        Assert.Equal(["d 3,é", "d1"], await store.DevicesAsync(null, 2, CancellationToken.None));
        Assert.Equal(["d2", "hand"], await store.DevicesAsync("d1", 100, CancellationToken.None));
        Assert.Equal(["hum", "temp"], await store.MetricsAsync("hand", CancellationToken.None));
        Assert.Equal(["x=y"], await store.MetricsAsync("d 3,é", CancellationToken.None));
        Assert.Empty(await store.MetricsAsync("nobody", CancellationToken.None));
    }
}
