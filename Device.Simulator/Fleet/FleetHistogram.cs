using HdrHistogram;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>
/// A latency histogram as it travels in a JSON report: (microseconds, count) pairs of its recorded buckets, so a parent
/// merges its children's histograms exactly instead of averaging their percentiles.
/// </summary>
public sealed record FleetHistogram(IReadOnlyList<long[]> Buckets)
{
    public static FleetHistogram From(LongHistogram histogram) =>
        new(histogram.RecordedValues().Select(v => new[] { v.ValueIteratedTo, v.CountAddedInThisIterationStep }).ToArray());

    public LongHistogram ToHistogram()
    {
        var histogram = LatencyPercentiles.CreateHistogram();
        AddTo(histogram);
        return histogram;
    }

    public void AddTo(LongHistogram histogram)
    {
        foreach (var bucket in Buckets)
        {
            if (bucket.Length == 2 && bucket[1] > 0)
                histogram.RecordValueWithCount(Math.Clamp(bucket[0], 1, LatencyPercentiles.HighestMicroseconds), bucket[1]);
        }
    }
}
