using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Tests;

public sealed class PercentileTests
{
    [Fact]
    public void Histogram_percentiles_of_1_to_1000_microseconds_are_within_its_precision()
    {
        var histogram = LatencyPercentiles.CreateHistogram();
        for (var us = 1; us <= 1000; us++) LatencyPercentiles.Record(histogram, us);

        var p = LatencyPercentiles.From(histogram);

        Assert.Equal(1000, p.Count);
        Assert.Equal(0.500, p.P50Ms, 0.001);
        Assert.Equal(0.900, p.P90Ms, 0.001);
        Assert.Equal(0.990, p.P99Ms, 0.001);
        Assert.Equal(1.000, p.MaxMs, 0.001);
    }

    [Fact]
    public void An_empty_histogram_reports_zeros()
    {
        var p = LatencyPercentiles.From(LatencyPercentiles.CreateHistogram());
        Assert.Equal(new LatencyPercentiles(0, 0, 0, 0, 0), p);
    }

    [Fact]
    public void Values_outside_the_range_are_clamped_rather_than_thrown()
    {
        var histogram = LatencyPercentiles.CreateHistogram();
        LatencyPercentiles.Record(histogram, -5);
        LatencyPercentiles.Record(histogram, long.MaxValue);

        var p = LatencyPercentiles.From(histogram);

        Assert.Equal(2, p.Count);
        Assert.True(p.MaxMs >= LatencyPercentiles.HighestMicroseconds / 1000.0 * 0.999);
    }

    [Fact]
    public void Sorted_sample_summary_uses_nearest_rank()
    {
        var s = LatencySummary.From(Enumerable.Range(1, 100).Select(i => (double)i));
        Assert.Equal(new LatencySummary(100, 50, 99, 100), s);
    }

    [Fact]
    public void Steady_rate_leaves_out_a_slow_ramp_and_a_slow_tail()
    {
        // 0..100 s: ramp of 100 messages/s for 10 s, then 1,000/s for 80 s, then a 100/s tail.
        var marks = new List<(long, long)>();
        long received = 0;
        for (var second = 0; second <= 100; second++)
        {
            marks.Add((received, second * 1000L));
            received += second is < 10 or >= 90 ? 100 : 1000;
        }

        var total = marks[^1].Item1;
        var rate = SteadyStateRate.PerSecond(marks, total, timestampFrequency: 1000);

        Assert.Equal(1000, rate, 1e-9);
    }

    [Fact]
    public void Steady_rate_of_a_tiny_run_falls_back_to_first_to_last()
    {
        var rate = SteadyStateRate.PerSecond([(1, 0), (11, 2000)], 11, timestampFrequency: 1000);
        Assert.Equal(5, rate, 1e-9);
    }
}
