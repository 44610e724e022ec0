using HdrHistogram;

namespace IotRealtime.Device.Simulator.Reports;

/// <summary>Latency percentiles in milliseconds, read from a microsecond HdrHistogram (3 significant digits).</summary>
public sealed record LatencyPercentiles(long Count, double P50Ms, double P90Ms, double P99Ms, double MaxMs)
{
    /// <summary>One hour, in microseconds: anything slower is recorded as one hour rather than thrown away.</summary>
    public const long HighestMicroseconds = 3_600_000_000;

    public static LongHistogram CreateHistogram() => new(1, HighestMicroseconds, 3);

    public static void Record(LongHistogram histogram, long microseconds) =>
        histogram.RecordValue(Math.Clamp(microseconds, 1, HighestMicroseconds));

    public static LatencyPercentiles From(LongHistogram histogram)
    {
        if (histogram.TotalCount == 0) return new LatencyPercentiles(0, 0, 0, 0, 0);
        return new LatencyPercentiles(
            histogram.TotalCount,
            Ms(histogram.GetValueAtPercentile(50)),
            Ms(histogram.GetValueAtPercentile(90)),
            Ms(histogram.GetValueAtPercentile(99)),
            Ms(histogram.GetMaxValue()));
    }

    static double Ms(long microseconds) => Math.Round(microseconds / 1000.0, 3);

    public override string ToString() =>
        Count == 0 ? "none" : $"p50 {P50Ms:F3} ms, p90 {P90Ms:F3} ms, p99 {P99Ms:F3} ms, max {MaxMs:F3} ms ({Count} samples)";
}
