using System.Collections.Concurrent;
using System.Text;
using IotRealtime.Hosting.Metrics;

namespace IotRealtime.Telemetry;

/// <summary>Counters of the ingest pipeline, exported on /metrics as Prometheus text.</summary>
public sealed class TelemetryMetrics : IMetricsSource
{
    readonly ConcurrentDictionary<string, SinkCounters> _sinks = new(StringComparer.Ordinal);
    long _recordsConsumed;
    long _parked;
    long _pauses;
    int _paused;
    IReadOnlyDictionary<string, long> _lag = new Dictionary<string, long>();

    /// <summary>Kafka records taken from the consumer.</summary>
    public long RecordsConsumed => Interlocked.Read(ref _recordsConsumed);

    /// <summary>Records that could not be decoded and were parked.</summary>
    public long Parked => Interlocked.Read(ref _parked);

    /// <summary>Whether consumption is paused because a sink is behind or down.</summary>
    public bool IsPaused => Volatile.Read(ref _paused) != 0;

    /// <summary>How often consumption was paused.</summary>
    public long Pauses => Interlocked.Read(ref _pauses);

    /// <summary>Per partition ("topic/partition"): high watermark minus the consumer's position.</summary>
    public IReadOnlyDictionary<string, long> Lag => Volatile.Read(ref _lag);

    public LatencyHistogram BatchWriteLatency { get; } = new();

    public long ReadingsWritten(string sink) => Sink(sink).Readings;

    public long BatchesWritten(string sink) => Sink(sink).Batches;

    public long WriteFailures(string sink) => Sink(sink).Failures;

    internal void RecordConsumed(long records, long parked)
    {
        Interlocked.Add(ref _recordsConsumed, records);
        Interlocked.Add(ref _parked, parked);
    }

    internal void RecordWrite(string sink, int readings, TimeSpan elapsed)
    {
        var counters = Sink(sink);
        Interlocked.Add(ref counters.Readings, readings);
        Interlocked.Increment(ref counters.Batches);
        BatchWriteLatency.Record(elapsed);
    }

    internal void RecordFailure(string sink) => Interlocked.Increment(ref Sink(sink).Failures);

    internal void SetPaused(bool paused)
    {
        if (Interlocked.Exchange(ref _paused, paused ? 1 : 0) == 0 && paused) Interlocked.Increment(ref _pauses);
    }

    internal void SetLag(IReadOnlyDictionary<string, long> lag) => Volatile.Write(ref _lag, lag);

    SinkCounters Sink(string name) => _sinks.GetOrAdd(name, static _ => new SinkCounters());

    public void WriteMetrics(StringBuilder w)
    {
        PrometheusText.Family(w, "iotrealtime_telemetry_records_consumed_total", "counter", "Kafka records taken by the telemetry consumer.", RecordsConsumed);
        PrometheusText.Family(w, "iotrealtime_telemetry_parked_total", "counter", "Kafka records parked because they held no decodable reading.", Parked);
        PrometheusText.Family(w, "iotrealtime_telemetry_paused", "gauge", "1 while consumption is paused because a sink is behind or down.", IsPaused ? 1 : 0);
        PrometheusText.Family(w, "iotrealtime_telemetry_pauses_total", "counter", "Times consumption was paused for back-pressure.", Pauses);
        var sinks = _sinks.OrderBy(s => s.Key, StringComparer.Ordinal).ToList();
        PrometheusText.Header(w, "iotrealtime_telemetry_readings_written_total", "counter", "Readings stored, per sink (rate() gives readings per second).");
        foreach (var (name, c) in sinks) PrometheusText.Sample(w, "iotrealtime_telemetry_readings_written_total", "sink", name, Interlocked.Read(ref c.Readings));
        PrometheusText.Header(w, "iotrealtime_telemetry_batches_written_total", "counter", "Batches stored, per sink.");
        foreach (var (name, c) in sinks) PrometheusText.Sample(w, "iotrealtime_telemetry_batches_written_total", "sink", name, Interlocked.Read(ref c.Batches));
        PrometheusText.Header(w, "iotrealtime_telemetry_write_failures_total", "counter", "Failed sink writes (each retried until it succeeds).");
        foreach (var (name, c) in sinks) PrometheusText.Sample(w, "iotrealtime_telemetry_write_failures_total", "sink", name, Interlocked.Read(ref c.Failures));
        PrometheusText.Histogram(w, "iotrealtime_telemetry_batch_write_seconds", "Time to store one batch in a sink.", BatchWriteLatency);
        PrometheusText.Header(w, "iotrealtime_telemetry_consumer_lag", "gauge", "Records in Kafka not yet taken by the consumer, per partition.");
        foreach (var (partition, lag) in Lag.OrderBy(l => l.Key, StringComparer.Ordinal))
        {
            var slash = partition.LastIndexOf('/');
            PrometheusText.Sample(w, "iotrealtime_telemetry_consumer_lag", [("topic", partition[..slash]), ("partition", partition[(slash + 1)..])], lag);
        }
    }

    sealed class SinkCounters
    {
        public long Readings;
        public long Batches;
        public long Failures;
    }
}
