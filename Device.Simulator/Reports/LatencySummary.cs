namespace IotRealtime.Device.Simulator.Reports;

/// <summary>Percentiles over a sorted copy of the samples; exact, and cheap enough at tens of thousands of samples.</summary>
public sealed record LatencySummary(int Count, double P50Ms, double P99Ms, double MaxMs)
{
    public static LatencySummary From(IEnumerable<double> samplesMs)
    {
        var sorted = samplesMs.ToArray();
        if (sorted.Length == 0) return new LatencySummary(0, 0, 0, 0);
        Array.Sort(sorted);
        return new LatencySummary(sorted.Length, Percentile(sorted, 0.50), Percentile(sorted, 0.99), sorted[^1]);
    }

    // Nearest-rank: the smallest sample with at least p of the samples at or below it.
    static double Percentile(double[] sorted, double p) => sorted[Math.Max(0, (int)Math.Ceiling(p * sorted.Length) - 1)];

    public override string ToString() => $"p50 {P50Ms:F1} ms, p99 {P99Ms:F1} ms, max {MaxMs:F1} ms";
}
