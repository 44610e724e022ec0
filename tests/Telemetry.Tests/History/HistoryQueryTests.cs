using IotRealtime.Telemetry.History;

namespace IotRealtime.Telemetry.Tests.History;

public sealed class HistoryQueryTests
{
    static readonly DateTimeOffset T = new(2026, 11, 30, 10, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("60", 60)]
    [InlineData("45s", 45)]
    [InlineData("5m", 300)]
    [InlineData("1h", 3600)]
    [InlineData("1d", 86400)]
    public void Steps_are_seconds_or_durations_with_a_unit(string text, int seconds)
    {
        Assert.True(HistoryQuery.TryParseStep(text, out var step));
        Assert.Equal(TimeSpan.FromSeconds(seconds), step);
    }

    [Fact]
    public void A_range_is_split_into_raw_ends_minute_edges_and_whole_hours()
    {
        var from = T.AddMinutes(-70).AddSeconds(-5);   // 08:49:55
        var to = T.AddHours(3).AddMinutes(2).AddSeconds(30); // 13:02:30
        Assert.Equal(
        [
            new(HistorySource.Raw, from, T.AddMinutes(-70)),
            new(HistorySource.Minute, T.AddMinutes(-70), T.AddHours(-1)),
            new(HistorySource.Hour, T.AddHours(-1), T.AddHours(3)),
            new(HistorySource.Minute, T.AddHours(3), T.AddHours(3).AddMinutes(2)),
            new(HistorySource.Raw, T.AddHours(3).AddMinutes(2), to),
        ], HistoryPlan.For(from, to, TimeSpan.FromHours(1), hourlyAvailable: true));
        Assert.Equal(
        [
            new(HistorySource.Raw, from, T.AddMinutes(-70)),
            new(HistorySource.Minute, T.AddMinutes(-70), T.AddHours(3).AddMinutes(2)),
            new(HistorySource.Raw, T.AddHours(3).AddMinutes(2), to),
        ], HistoryPlan.For(from, to, TimeSpan.FromHours(1), hourlyAvailable: false));
        Assert.Equal([new HistorySegment(HistorySource.Raw, from, to)], HistoryPlan.For(from, to, TimeSpan.FromSeconds(90), hourlyAvailable: true));
        Assert.Equal([new HistorySegment(HistorySource.Raw, T.AddSeconds(5), T.AddSeconds(65))], HistoryPlan.For(T.AddSeconds(5), T.AddSeconds(65), TimeSpan.FromMinutes(1), hourlyAvailable: true));
    }

    [Theory]
    [InlineData(3600, 15)]          // 1 h → 15 s
    [InlineData(86400, 300)]        // 1 day → 5 min
    [InlineData(7 * 86400, 3600)]   // 7 days → 1 h
    [InlineData(30 * 86400, 10800)] // 30 days → 3 h
    public void The_automatic_step_keeps_charts_at_a_few_hundred_buckets(int rangeSeconds, int stepSeconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(stepSeconds), HistoryQuery.AutoStep(TimeSpan.FromSeconds(rangeSeconds)));
    }
}
