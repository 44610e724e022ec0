namespace IotRealtime.Hosting.Metrics;

/// <summary>A fixed-bucket latency histogram (seconds), lock-free to record, read as cumulative buckets for Prometheus.</summary>
public sealed class LatencyHistogram
{
    /// <summary>Upper bounds in seconds: 0.5 ms to 10 s, covering an in-memory store through a slow Kafka acknowledgement.</summary>
    public static IReadOnlyList<double> Bounds { get; } = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    readonly long[] _counts = new long[Bounds.Count + 1];
    long _sumTicks;

    public void Record(TimeSpan elapsed)
    {
        var seconds = elapsed.TotalSeconds;
        var i = 0;
        while (i < Bounds.Count && seconds > Bounds[i])
        {
            i++;
        }
        Interlocked.Increment(ref _counts[i]);
        Interlocked.Add(ref _sumTicks, elapsed.Ticks);
    }

    /// <summary>Cumulative counts per bound (the last entry is +Inf, i.e. the total count) and the sum in seconds.</summary>
    public (long[] Cumulative, double SumSeconds) Snapshot()
    {
        var cumulative = new long[_counts.Length];
        long running = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            running += Interlocked.Read(ref _counts[i]);
            cumulative[i] = running;
        }
        return (cumulative, TimeSpan.FromTicks(Interlocked.Read(ref _sumTicks)).TotalSeconds);
    }
}
