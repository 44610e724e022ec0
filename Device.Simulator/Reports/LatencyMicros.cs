using HdrHistogram;

namespace IotRealtime.Device.Simulator.Reports;

/// <summary>Latency percentiles in microseconds, read from a microsecond HdrHistogram (3 significant digits).</summary>
public sealed record LatencyMicros(long Count, long P50, long P90, long P99, long P999, long Max)
{
    public static LatencyMicros From(LongHistogram histogram) =>
        histogram.TotalCount == 0
            ? new LatencyMicros(0, 0, 0, 0, 0, 0)
            : new LatencyMicros(
                histogram.TotalCount,
                histogram.GetValueAtPercentile(50),
                histogram.GetValueAtPercentile(90),
                histogram.GetValueAtPercentile(99),
                histogram.GetValueAtPercentile(99.9),
                histogram.GetMaxValue());

    public override string ToString() =>
        Count == 0 ? "none" : $"p50 {P50} us, p90 {P90} us, p99 {P99} us, p99.9 {P999} us, max {Max} us ({Count} samples)";
}
